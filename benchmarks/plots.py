"""PNG plots from result rows: mAP vs code length per dataset, and precision-recall (over Hamming radii)
and precision@K curves per method at one code length. Curves are averaged over seeds."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.config import ConfigError  # noqa: E402
from benchmarks.results import DIRECTION_NAMES, read_rows  # noqa: E402
from benchmarks.tables import dataset_names, label, load, selected, summarize  # noqa: E402
from common.files import atomic_write_bytes  # noqa: E402
from methods import METHODS  # noqa: E402


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def map_vs_bits(summary, dataset: str, path: Path, colors: dict) -> Path:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    part = summary[summary.dataset == dataset]
    for ax, direction in zip(axes, DIRECTION_NAMES):
        for method, curve in part[part.direction == direction].groupby("method"):
            curve = curve.sort_values("bits")
            style = "--" if "real-valued" in method else "-"
            ax.errorbar(curve.bits, curve["mean"], yerr=curve["std"].fillna(0), marker="o", capsize=3,
                        linestyle=style, label=method, color=colors[method])
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(part.bits.unique()), [str(b) for b in sorted(part.bits.unique())])
        ax.set(title=f"{dataset} {DIRECTION_NAMES[direction]}", xlabel="code length (bits)", ylabel="mAP@all")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    return _save(figure, path)


def curves(rows: list[dict], dataset: str, bits: int, out_dir: Path, colors: dict) -> list[Path]:
    """Precision-recall over Hamming radii and precision@K, one line per method (seed-averaged)."""
    by_method: dict[str, list[dict]] = {}
    names = dataset_names(rows)
    for i, row in enumerate(rows):
        if names[i] == dataset and row["bits"] == bits:
            by_method.setdefault(label(row), []).append(row)
    if not by_method:
        return []
    pr_figure, pr_axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    pk_figure, pk_axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, direction in enumerate(DIRECTION_NAMES):
        for method, runs in sorted(by_method.items()):
            c = [r[f"curves_{direction}"] for r in runs]
            recall = np.mean([x["pr_recall"] for x in c], 0)
            precision = np.mean([x["pr_precision"] for x in c], 0)
            reached = recall > 0  # radii that retrieve nothing have no precision
            pr_axes[i].plot(recall[reached], precision[reached], marker=".", label=method, color=colors[method])
            ks = sorted(int(k) for k in c[0]["precision_at"])
            pk_axes[i].plot(ks, np.mean([[x["precision_at"][str(k)] for k in ks] for x in c], 0), marker=".",
                            label=method, color=colors[method])
        name = f"{dataset} {DIRECTION_NAMES[direction]} {bits} bits"
        pr_axes[i].set(title=name, xlabel="recall (Hamming radius 0..bits)", ylabel="precision")
        pk_axes[i].set(title=name, xlabel="K (top-K retrieved)", ylabel="precision@K", xscale="log")
    for ax in (*pr_axes, *pk_axes):
        ax.grid(alpha=0.3)
    pr_axes[1].legend(fontsize=7)
    pk_axes[1].legend(fontsize=7)
    return [_save(pr_figure, out_dir / f"{dataset}_pr_{bits}b.png"),
            _save(pk_figure, out_dir / f"{dataset}_precision_at_k_{bits}b.png")]


def color(method_label: str) -> str:
    """One colour per method in every figure, whatever else is plotted (variants share their method's)."""
    base = method_label.split(" ")[0]
    return f"C{list(METHODS).index(base) % 10}" if base in METHODS else "C9"


def build(results: Path, out_dir: Path, bits: int, selection: dict | None = None) -> list[Path]:
    rows = selected(read_rows(results), **(selection or {}))
    if not rows:
        raise ConfigError(f"{results}: no result rows to plot (for the chosen datasets and methods)")
    summary = summarize(load(rows))
    colors = {method: color(method) for method in summary.method.unique()}
    written = []
    for dataset in sorted(summary.dataset.unique()):
        written.append(map_vs_bits(summary, dataset, out_dir / f"{dataset}_map_vs_bits.png", colors))
        written += curves(rows, dataset, bits, out_dir, colors)
    return written
