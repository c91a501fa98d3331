"""Figures from result rows, for papers: mAP vs code length, precision-recall over Hamming radius and
precision@K at one code length, per dataset (table). Curves and points are averaged over seeds; error bars
are the sample standard deviation over seeds; a dotted grey line marks chance (a random ranking). Each method
has one colour in every figure, legends sit outside the axes, and every figure is written as PDF (vector)
and PNG."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.config import ConfigError  # noqa: E402
from benchmarks.results import read_rows  # noqa: E402
from benchmarks.tables import label, load, selected, summarize, table_names  # noqa: E402
from common.files import atomic_write_bytes  # noqa: E402
from methods import METHODS  # noqa: E402

DATASET_NAMES = {"mirflickr25k_mini": "MIRFlickr-25K, embedded 730-pair subset", "mirflickr25k": "MIRFlickr-25K",
                 "wikipedia": "Wikipedia", "toy": "Toy (synthetic)", "nuswide": "NUS-WIDE (21 concepts)",
                 "nuswide_tc10": "NUS-WIDE TC-10", "coco": "MS-COCO 2014"}
DIRECTION_TITLES = {"i2t": "image \u2192 text", "t2i": "text \u2192 image"}
RECALL_FLOOR = 0.01  # radii retrieving under 1% of the relevant items average a handful of queries: not drawn


def title(table: str) -> str:
    dataset, _, rest = table.partition(" ")
    return DATASET_NAMES.get(dataset, dataset) + (f" {rest}" if rest else "")


def color(method_label: str) -> str:
    """One colour per method in every figure, whatever else is plotted (variants share their method's)."""
    base = method_label.split(" ")[0]
    return f"C{list(METHODS).index(base) % 10}" if base in METHODS else "C9"


def style(method_label: str) -> dict:
    return {"color": color(method_label), "linestyle": "--" if "real-valued" in method_label else "-",
            "marker": "s" if "(" in method_label.split("[")[0] else "o"}


def save(figure, stem: Path) -> list[Path]:
    """The figure as PDF and PNG, legend outside the axes on the right."""
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    written = []
    for kind in ("pdf", "png"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=kind, dpi=150, bbox_inches="tight")
        atomic_write_bytes(stem.with_suffix(f".{kind}"), buffer.getvalue())
        written.append(stem.with_suffix(f".{kind}"))
    plt.close(figure)
    return written


def chance_line(ax, value: float) -> None:
    ax.axhline(value, color="0.5", linestyle=":", linewidth=1, label="chance (random ranking)")


def map_vs_bits(frame, summary, table: str, stem: Path) -> list[Path]:
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    part = summary[summary.table == table]
    seeds = int(part.seeds.max())
    for ax, direction in zip(axes, DIRECTION_TITLES):
        for method, curve in part[part.direction == direction].groupby("method"):
            curve = curve.sort_values("bits")
            ax.errorbar(curve.bits, curve["mean"], yerr=curve["std"].fillna(0), capsize=3, label=method,
                        **style(method))
        chance_line(ax, frame[(frame.table == table) & (frame.direction == direction)].chance.mean())
        bits = sorted(part.bits.unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(bits, [str(b) for b in bits])
        ax.set(title=DIRECTION_TITLES[direction], xlabel="code length (bits)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{part.metric.iloc[0]}" + (f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""))
    figure.suptitle(title(table), y=1.03)
    return save(figure, stem)


def curves(rows: list[dict], table: str, bits: int, stem: Path) -> list[Path]:
    """Precision-recall over Hamming radii and precision@K, one line per method (seed-averaged)."""
    names = table_names(rows)
    by_method: dict[str, list[dict]] = {}
    for i, row in enumerate(rows):
        if names[i] == table and row["bits"] == bits:
            by_method.setdefault(label(row), []).append(row)
    if not by_method:
        return []
    pr, pr_axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    pk, pk_axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    n_database = min(r["n_database"] for runs in by_method.values() for r in runs)
    for i, direction in enumerate(DIRECTION_TITLES):
        for method, runs in sorted(by_method.items()):
            c = [r[f"curves_{direction}"] for r in runs]
            recall = np.mean([x["pr_recall"] for x in c], 0)
            precision = np.mean([x["pr_precision"] for x in c], 0)
            drawn = recall >= RECALL_FLOOR
            pr_axes[i].plot(recall[drawn], precision[drawn], label=method, markersize=3, **style(method))
            ks = sorted(k for k in map(int, c[0]["precision_at"]) if k <= n_database)
            pk_axes[i].plot(ks, np.mean([[x["precision_at"][str(k)] for k in ks] for x in c], 0), label=method,
                            markersize=3, **style(method))
        chance = np.mean([r.get(f"chance_{direction}", np.nan) for runs in by_method.values() for r in runs])
        for ax in (pr_axes[i], pk_axes[i]):
            chance_line(ax, chance)
            ax.set_title(DIRECTION_TITLES[direction])
            ax.grid(alpha=0.3)
        pr_axes[i].set(xlabel="recall (Hamming radius 0 to bits)", xlim=(0, 1.02))
        pk_axes[i].set(xlabel="K (top-K retrieved)", xscale="log", xlim=(1, n_database))
    pr_axes[0].set_ylabel("precision")
    pk_axes[0].set_ylabel("precision@K")
    pr.suptitle(f"{title(table)}, {bits} bits: precision-recall over Hamming radius", y=1.03)
    pk.suptitle(f"{title(table)}, {bits} bits: precision of the top K", y=1.03)
    return save(pr, stem.with_name(stem.name + f"_pr_{bits}b")) + \
        save(pk, stem.with_name(stem.name + f"_precision_at_k_{bits}b"))


def build(results: Path, out_dir: Path, bits: int, selection: dict | None = None) -> list[Path]:
    rows = selected(read_rows(results), **(selection or {}))
    if not rows:
        raise ConfigError(f"{results}: no result rows to plot (for the chosen datasets and methods)")
    frame = load(rows)
    summary = summarize(frame)
    written = []
    for table in sorted(summary.table.unique()):
        stem = out_dir / "".join(c if c.isalnum() or c == "_" else "-" for c in table).strip("-")
        written += map_vs_bits(frame, summary, table, stem.with_name(stem.name + "_map_vs_bits"))
        written += curves(rows, table, bits, stem)
    return written
