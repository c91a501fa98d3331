"""What choosing the epoch on the test queries adds, over many `cmhb oracle` folders (the oracle reference).

Each folder holds one method on one dataset at one preset (oracle.csv: one line per run and direction;
oracle_epochs.csv: one line per run and epoch). Per method, dataset, preset and direction this gives the mean
gaps `test_selected - last` (what the field's selection adds to what the suite reports) and `test_selected -
validation_selected` (what it adds to an honest selection of the epoch), each with a 95% percentile bootstrap
interval over the runs; whether the methods' ranking changes when every method gets the field's selection
(Kendall's tau between the two orders, and the methods that move); and, per dataset, a figure of the mean
validation and test mAP per epoch, one panel per method.
"""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.reports.significance import bootstrap_interval
from common.errors import DataError

CSV_NAME, EPOCHS_NAME, SUMMARY_NAME = "oracle.csv", "oracle_epochs.csv", "oracle.md"  # an oracle folder's files
GAPS = {"test - last": ("test_selected", "last"), "test - validation": ("test_selected", "validation_selected")}


def read(folders: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the runs' rows, their per-epoch scores) of every oracle folder that has finished (both files).

    Raises:
        DataError: no folder holds both files.
    """
    done = [Path(f) for f in folders if (Path(f) / CSV_NAME).is_file() and (Path(f) / EPOCHS_NAME).is_file()]
    if not done:
        raise DataError(f"no finished oracle folder (with {CSV_NAME} and {EPOCHS_NAME}) among {len(folders)}")
    return (pd.concat([pd.read_csv(f / CSV_NAME) for f in done], ignore_index=True),
            pd.concat([pd.read_csv(f / EPOCHS_NAME) for f in done], ignore_index=True))


def interval(values: np.ndarray) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of the runs' `values` (significance.bootstrap_interval); one
    run: no interval (NaN, NaN)."""
    return bootstrap_interval(values) if len(values) > 1 else (float("nan"), float("nan"))


def gaps(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per dataset, preset, direction and method: runs, epochs, the three mean test mAPs, and each gap's
    mean with its bootstrap interval over the runs."""
    lines = []
    for key, group in rows.groupby(["dataset", "preset", "direction", "method"], sort=True):
        line = dict(zip(("dataset", "preset", "direction", "method"), key), runs=len(group),
                    epochs=int(group.epochs.max()),
                    **{c: group[c].mean() for c in ("last", "validation_selected", "test_selected")})
        for name, (high, low) in GAPS.items():
            values = (group[high] - group[low]).to_numpy()
            line[name], (line[f"{name} low"], line[f"{name} high"]) = values.mean(), interval(values)
        lines.append(line)
    return pd.DataFrame(lines)


def agreement(rows: pd.DataFrame, results: Path) -> str:
    """How the oracle's `last` compares with the result rows of the same runs in `results` (method, dataset,
    preset, code length, run seed and split seed, neither a variant; the newest row of each): the oracle should
    have measured the runs the suite reports, up to what changed in the code since those rows were written."""
    from benchmarks.execution.results import read_records
    from benchmarks.spec.config import under_label_protocol

    key = ("method", "dataset", "preset", "bits", "seed", "split_seed")
    rows_of = {(r.method, under_label_protocol(r.dataset_config, r.config), r.preset, r.bits, r.seed, r.split_seed): r
               for r in read_records(results) if not r.variant}
    matched = [abs(line["last"] - rows_of[run].map(line.direction)) for _, line in rows.iterrows()
               if not line.get("variant", True) and (run := tuple(line[k] for k in key)) in rows_of]
    if not matched:
        return f"No row of {results} is one of these runs."
    return (f"{len(matched)} of the {len(rows)} last-epoch numbers have a row of the same run in {results}; they "
            f"differ from it by at most {max(matched):.2g} (mean {np.mean(matched):.2g}).")


def kendall_tau(first: list, second: list) -> float:
    """Kendall's tau between two orders of the same items (1: the same order, -1: reversed)."""
    position = {item: i for i, item in enumerate(second)}
    pairs = list(itertools.combinations(first, 2))
    if not pairs:
        return 1.0
    return sum(1 if position[a] < position[b] else -1 for a, b in pairs) / len(pairs)


def rankings(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, preset and direction: the methods in order of their mean `last` (what the suite reports) and
    of their mean `test_selected` (every method given the field's selection), Kendall's tau between the two
    orders, and the methods whose place changes."""
    lines = []
    for key, group in table.groupby(["dataset", "preset", "direction"], sort=True):
        by_last = list(group.sort_values("last", ascending=False).method)
        by_test = list(group.sort_values("test_selected", ascending=False).method)
        moved = [f"{m} {by_last.index(m) + 1}->{by_test.index(m) + 1}" for m in by_last
                 if by_last.index(m) != by_test.index(m)]
        lines.append(dict(zip(("dataset", "preset", "direction"), key), methods=len(by_last),
                          order_last=", ".join(by_last), order_test_selected=", ".join(by_test),
                          kendall_tau=kendall_tau(by_last, by_test), moved=", ".join(moved) or "none"))
    return pd.DataFrame(lines)


def figure(epochs: pd.DataFrame, dataset: str):
    """Mean validation and test mAP (the mean of both directions) per epoch, one panel per method, solid lines at
    the common preset and dashed at the tuned one; the last epoch is what the suite reports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = epochs[epochs.dataset == dataset].copy()
    data["val"] = data[["val_i2t", "val_t2i"]].mean(1)
    data["test"] = data[["test_i2t", "test_t2i"]].mean(1)
    longest = data.groupby("method").epoch.max()
    methods = sorted(longest.index[longest > 1])  # a closed form has one epoch: nothing to draw or choose
    columns = min(4, len(methods))
    rows = -(-len(methods) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(10.0, 3.4 * columns), 2.6 * rows + 1.4), squeeze=False,
                             layout="constrained")
    for ax, method in zip(axes.flat, methods):
        for preset, style in (("common", "-"), ("tuned", "--")):
            mean = data[(data.method == method) & (data.preset == preset)].groupby("epoch")[["val", "test"]].mean()
            if mean.empty:
                continue
            ax.plot(mean.index, mean.test, style, color="#D55E00", label=f"test ({preset})")
            ax.plot(mean.index, mean.val, style, color="#0072B2", label=f"validation ({preset})")
        ax.set_title(method, fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch", fontsize=9)
    for ax in axes.flat[len(methods):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(f"{dataset}: validation and test mAP after every epoch; the suite reports the last\n(`cmhb "
                 "oracle`, means over runs; closed forms, one epoch, left out)", fontsize=11)
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=9, frameon=False)
    fig.supylabel("mAP@all, mean of both directions", fontsize=10)
    return fig


def markdown(table: pd.DataFrame, ranks: pd.DataFrame) -> str:
    """The report's tables: gaps with their intervals, and the rankings."""
    shown = table.copy()
    for name in GAPS:
        shown[name] = [f"{m:+.4f}" + ("" if np.isnan(lo) else f" [{lo:+.4f}, {hi:+.4f}]")
                       for m, lo, hi in zip(shown[name], shown[f"{name} low"], shown[f"{name} high"])]
    shown = shown.drop(columns=[f"{n} {end}" for n in GAPS for end in ("low", "high")])
    return ("## Gaps per method (means over runs; 95% bootstrap interval over runs where there are several)\n\n"
            + shown.to_markdown(index=False, floatfmt=".4f")
            + "\n\n## Rankings: by the last epoch (the suite's number) and by the test-selected epoch (the field's)\n\n"
            + ranks.to_markdown(index=False, floatfmt=".3f") + "\n")


def write(folders: list[Path], out: Path, plots: Path, results: Path | None = None) -> list[Path]:
    """out/epoch_selection.md, out/epoch_selection.csv, and per dataset plots/epoch_selection_<dataset>.png;
    with `results`, the report says how the last epochs compare with those runs' result rows (`agreement`).

    Returns:
        The paths written.
    """
    from common.files import atomic_write_bytes

    rows, epochs = read(folders)
    table, written = gaps(rows), []
    ranks = rankings(table)
    out.mkdir(parents=True, exist_ok=True)
    plots.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "epoch_selection.csv", table.to_csv(index=False).encode())
    revisions = sorted(set(rows.get("revision", pd.Series(dtype=str)).fillna("").astype(str)) - {""})
    atomic_write_bytes(out / "epoch_selection.md", (
        "# What choosing the epoch on the test queries adds (`cmhb oracle`; a diagnostic, never a result)\n\n"
        f"{len(rows) // 2} runs of {rows.method.nunique()} methods, at revision {', '.join(revisions) or 'unknown'}"
        "." + (f" {agreement(rows, results)}" if results else "") + "\n\n" + markdown(table, ranks)).encode())
    written += [out / "epoch_selection.csv", out / "epoch_selection.md"]
    for dataset in sorted(epochs.dataset.unique()):
        fig = figure(epochs, dataset)
        path = plots / f"epoch_selection_{dataset}.png"
        fig.savefig(path, dpi=120)
        written.append(path)
    return written
