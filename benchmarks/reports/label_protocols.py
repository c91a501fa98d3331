"""What the label protocols find (results/README.md, "Unseen classes" and "Noisy labels"), from result rows.

Each method at one code length, at its tuned preset where it has one, else its common one. Unseen classes: per
dataset, method and direction, the mean test mAP of each query group (docs/protocol.md) over runs, the gap
seen@all - unseen@all (also above each group's chance), and how much of each supervised method's advantage over
the best unsupervised method survives on unseen@all (paired test). Noisy labels: per dataset, direction,
supervised method and noise rate, the mean test mAP over runs against the best unsupervised method of the closed
set on the same queries (split seed 0), with the paired sign-flip test over queries (run seeds averaged); the
lowest rate at which the method falls significantly below it. A figure: mAP against noise rate, the best
unsupervised one as a line.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from benchmarks.execution.record import DIRECTIONS
from benchmarks.execution.results import read_records
from benchmarks.reports.plots import DIRECTION_TITLES, colour
from benchmarks.reports.significance import LEVEL, sign_flip_p_value
from benchmarks.reports.tables import frame_of, seed_averaged_ap, selected
from common.errors import DataError
from common.files import atomic_write_bytes

GROUPS = ("seen@all", "unseen@all", "seen@seen", "unseen@unseen")
NOISE_SPLIT = 0  # the noisy-label runs' split seed: the closed set's runs of the same queries are compared


def runs(results: Path, bits: int, selection: dict | None = None) -> pd.DataFrame:
    """One line per run, direction and query group ("" for every query) of the mAP@all of the codes at `bits`,
    each method at its tuned preset where it has rows of one, else its common one (`selection`: datasets, methods
    and variants, as benchmarks.reports.tables.selected takes them).

    Raises:
        DataError: no such row.
    """
    frame = frame_of(selected(read_records(results), **(selection or {})).labelled)
    frame = frame[(frame.kind == "hamming") & (frame.metric == "mAP@all") & (frame.bits == bits)
                  & frame.preset.isin(["common", "tuned"])]
    tuned = set(frame.base[frame.preset == "tuned"])
    frame = frame[(frame.preset == "tuned") == frame.base.isin(tuned)]
    if frame.empty:
        raise DataError(f"{results}: no {bits}-bit row of the codes at the common or tuned preset")
    return frame


def unseen_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, method and direction under unseen classes: the mean mAP of every query and of each group over
    runs, the closed set's mean (same preset and code length), the gap seen@all - unseen@all, and that gap above
    chance ((seen@all - its chance) - (unseen@all - its chance): the groups' chances differ, as multi-label
    items that carry a held-out label tend to carry more labels)."""
    lines = []
    held_out = frame[frame.unseen_labels > 0]
    closed = frame[(frame.unseen_labels == 0) & (frame.label_noise == 0) & (frame.query_group == "")]
    for (dataset, base, direction), part in held_out.groupby(["dataset", "base", "direction"], sort=True):
        mean = part.groupby("query_group").value.mean()
        lift = mean - part.groupby("query_group").chance.mean()
        same = closed[(closed.dataset == dataset) & (closed.base == base) & (closed.direction == direction)]
        lines.append({"dataset": dataset, "method": base, "supervised": bool(part.supervised.iloc[0]),
                      "direction": direction, "runs": len(part[["seed", "split_seed"]].drop_duplicates()),
                      "closed set": same.value.mean() if len(same) else np.nan, "all queries": mean.get("", np.nan),
                      **{g: mean.get(g, np.nan) for g in GROUPS},
                      "seen - unseen": mean.get("seen@all", np.nan) - mean.get("unseen@all", np.nan),
                      "above chance": lift.get("seen@all", np.nan) - lift.get("unseen@all", np.nan)})
    return pd.DataFrame(lines)


def chances(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset under unseen classes: each query group's chance mAP (the share of relevant database items,
    averaged over its queries), the mean over split seeds, and its queries per split."""
    held_out = frame[(frame.unseen_labels > 0) & (frame.query_group != "")]
    runs = held_out.drop_duplicates(["dataset", "split_seed", "query_group"])
    return runs.groupby(["dataset", "query_group"], sort=True).agg(
        chance=("chance", "mean"), queries=("n_query", "mean")).reset_index().rename(columns={"query_group": "group"})


def against_best_unsupervised(cell: pd.DataFrame, reference: pd.DataFrame, by: str):
    """Compare each supervised method of `cell` (the runs of one dataset and direction), per value of its column
    `by`, with the best unsupervised method of `reference` (by mean) on the same queries.

    Yields:
        (method, value of `by`, its runs, {"mean", "best unsupervised", "its mean", "difference", "p"}), p being
        the paired sign-flip p-value over queries; nothing when `reference` has no unsupervised run.
    """
    floor = reference[~reference.supervised]
    if floor.empty:
        return
    best = floor.groupby("base").value.mean().idxmax()
    best_runs = floor[floor.base == best]
    best_ap = seed_averaged_ap(best_runs)
    for (base, value), runs in cell[cell.supervised].groupby(["base", by], sort=True):
        ap = seed_averaged_ap(runs)
        paired = ap is not None and best_ap is not None and len(ap) == len(best_ap)
        yield base, value, runs, {"mean": runs.value.mean(), "best unsupervised": best,
                                  "its mean": best_runs.value.mean(),
                                  "difference": runs.value.mean() - best_runs.value.mean(),
                                  "p": sign_flip_p_value(ap - best_ap) if paired else np.nan}


def surviving_advantage(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, direction and supervised method under unseen classes, for seen@all and for unseen@all: its
    advantage over the best unsupervised method of the group (the same runs' queries) and the paired test: how
    much of what labels give survives labels the method has not seen."""
    held_out = frame[(frame.unseen_labels > 0) & frame.query_group.isin(["seen@all", "unseen@all"])]
    lines: dict = {}
    for (dataset, direction), cell in held_out.groupby(["dataset", "direction"], sort=True):
        for group, part in cell.groupby("query_group", sort=True):
            for base, _, runs, found in against_best_unsupervised(part, part, "query_group"):
                line = lines.setdefault((dataset, direction, base), {"dataset": dataset, "direction": direction,
                                                                     "method": base, "runs": len(runs)})
                line.update({group: found["mean"], f"best unsupervised on {group}": found["best unsupervised"],
                             f"advantage {group}": found["difference"], f"p {group}": found["p"]})
    return pd.DataFrame(list(lines.values()))


def noise_effects(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, direction, supervised method and noise rate (split seed NOISE_SPLIT, every query): the mean
    and std of mAP over runs, the best unsupervised method of the closed set and its mean, the difference and its
    paired sign-flip p-value over the queries, and how many of its runs collapsed in that direction."""
    lines = []
    part = frame[(frame.split_seed == NOISE_SPLIT) & (frame.unseen_labels == 0) & (frame.query_group == "")]
    for (dataset, direction), cell in part.groupby(["dataset", "direction"], sort=True):
        if not (cell.supervised & (cell.label_noise > 0)).any():
            continue
        for base, rate, runs, found in against_best_unsupervised(cell, cell[cell.label_noise == 0], "label_noise"):
            lines.append({"dataset": dataset, "direction": direction, "method": base, "noise": rate,
                          "runs": len(runs), "mean": found["mean"], "std": runs.value.std(),
                          **{k: found[k] for k in ("best unsupervised", "its mean", "difference", "p")},
                          "chance": runs.chance.mean(), "collapsed": int(runs.collapsed.sum())})
    return pd.DataFrame(lines)


def crossings(effects: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, direction and supervised method: the lowest noise rate at which it is below the best
    unsupervised method with p < LEVEL (NaN: at no measured rate), and the lowest at which its mean is below."""
    lines = []
    for (dataset, direction, method), part in effects.groupby(["dataset", "direction", "method"], sort=True):
        below = part[part.difference < 0]
        significant = below[below.p < LEVEL]
        lines.append({"dataset": dataset, "direction": direction, "method": method,
                      "rates measured": ", ".join(f"{r:g}" for r in part.noise),
                      "below from": below.noise.min() if len(below) else np.nan,
                      "significantly below from": significant.noise.min() if len(significant) else np.nan})
    return pd.DataFrame(lines)


def figure(effects: pd.DataFrame):
    """mAP against noise rate per supervised method, one row of panels per dataset (a panel per direction), the
    best unsupervised method of the closed set as a dashed line and chance as a dotted one."""
    datasets = sorted(effects.dataset.unique())
    fig, axes = plt.subplots(len(datasets), 2, figsize=(11, 0.8 + 3.3 * len(datasets)), squeeze=False,
                             sharey="row", layout="constrained")
    for row, dataset in zip(axes, datasets):
        for ax, direction in zip(row, DIRECTIONS):
            cell = effects[(effects.dataset == dataset) & (effects.direction == direction)]
            for method, line in cell.groupby("method", sort=True):
                ax.errorbar(line.noise, line["mean"], yerr=line["std"].fillna(0), marker="o", markersize=4,
                            capsize=3, color=colour(method), label=method)
                collapsed = line[line.collapsed > 0]  # ringed: a run's codes collapsed (docs/protocol.md)
                ax.plot(collapsed.noise, collapsed["mean"], "o", markersize=10, markerfacecolor="none",
                        color=colour(method))
            if len(cell):
                ax.axhline(cell["its mean"].iloc[0], color="0.45", linestyle="--", linewidth=1.6,  # grey: DCMH is black
                           label=f"best unsupervised: {cell['best unsupervised'].iloc[0]} (clean)")
                ax.axhline(cell.chance.mean(), color="0.6", linestyle=":", linewidth=1, label="chance")
            ax.set_title(f"{dataset}, {DIRECTION_TITLES[direction]}", fontsize=10)
            ax.set_xticks(sorted(effects.noise.unique()))
            ax.grid(alpha=0.3)
        row[0].set_ylabel("mAP@all")
        row[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    for ax in axes[-1]:
        ax.set_xlabel("label noise rate (training and validation labels)")
    fig.suptitle("Supervised methods under noisy labels (mean ± std over run seeds; each at its tuned preset where "
                 "it has one;\nat noise 0 the closed set's runs; tuned on clean labels; ringed: a run's codes "
                 "collapsed)")
    return fig


def write(results: Path, out: Path, plots: Path, bits: int, selection: dict | None = None) -> list[Path]:
    """`out` (markdown: the unseen-class gaps, the noise effects and where each method falls below) and
    plots/label_noise.png.

    Returns:
        The paths written.

    Raises:
        DataError: no row under either protocol.
    """
    frame = runs(results, bits, selection)
    gaps, effects = unseen_gaps(frame), noise_effects(frame)
    if gaps.empty and effects.empty:
        raise DataError(f"{results}: no {bits}-bit row under unseen classes or noisy labels")
    sections = [f"# The label protocols at {bits} bits (from {results}; benchmarks.reports.label_protocols)\n"]
    if len(gaps):
        sections.append("## Unseen classes: mAP@all per query group (means over runs)\n\n"
                        + gaps.to_markdown(index=False, floatfmt=".4f") + "\n\n"
                        + "## Each group's chance (the queries of every method's runs are the same)\n\n"
                        + chances(frame).to_markdown(index=False, floatfmt=".4f") + "\n\n"
                        + "## What survives: each supervised method against the best unsupervised method of the "
                        "same queries (p: paired sign-flip test over queries)\n\n"
                        + surviving_advantage(frame).to_markdown(index=False, floatfmt=".4f") + "\n")
    if len(effects):
        sections.append("## Noisy labels: each supervised method against the best unsupervised method of the "
                        f"closed set (split seed {NOISE_SPLIT}; p: paired sign-flip test over queries)\n\n"
                        + effects.to_markdown(index=False, floatfmt=".4f") + "\n\n"
                        + "## Where each falls below it\n\n"
                        + crossings(effects).to_markdown(index=False, floatfmt="g") + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, "\n".join(sections).encode())
    written = [out]
    if len(effects):
        plots.mkdir(parents=True, exist_ok=True)
        fig = figure(effects)
        fig.savefig(plots / "label_noise.png", dpi=130)
        plt.close(fig)
        written.append(plots / "label_noise.png")
    return written
