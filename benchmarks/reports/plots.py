"""Figures from result records, for papers: mAP vs code length, precision-recall over Hamming radius and
precision@K at one code length, per dataset (table). Curves and points are averaged over seeds; error bars
are the sample standard deviation over seeds; a dotted grey line marks chance (a random ranking). Each method
has one colour in every figure (variants share their method's; real-valued scores are dashed), legends sit
outside the axes, and every figure is written as PDF (vector) and PNG."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.execution.results import read_records  # noqa: E402
from benchmarks.reports.tables import frame_of, selected, summarize, table_names  # noqa: E402
from benchmarks.spec.registry import names  # noqa: E402
from common.errors import ConfigError  # noqa: E402
from common.files import atomic_write_bytes  # noqa: E402

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
    methods = names("methods")
    return f"C{methods.index(base) % 10}" if base in methods else "C9"


def style(method_label: str, kind: str) -> dict:
    return {"color": color(method_label), "linestyle": "--" if kind != "hamming" else "-",
            "marker": "s" if "(" in method_label.split("[")[0] else "o"}


def legend(figure) -> None:
    """One legend for the figure's panels, outside them on the right (methods in name order, chance last)."""
    handles, labels = figure.axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: (labels[i].startswith("chance"), labels[i]))
    figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside right center", fontsize=8,
                  frameon=False)


def save(figure, stem: Path) -> list[Path]:
    """The figure as PDF and PNG."""
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


def panels():
    """A figure of two panels (one per direction) with room on the right for the legend."""
    return plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, layout="constrained")


def map_vs_bits(frame, summary, table: str):
    """mAP against code length, one line per method, error bars over seeds."""
    figure, axes = panels()
    part = summary[summary.table == table]
    kinds = dict(zip(frame.method, frame.kind))
    seeds = int(part.seeds.max())
    for ax, direction in zip(axes, DIRECTION_TITLES):
        for method, curve in part[part.direction == direction].groupby("method"):
            curve = curve.sort_values("bits")
            ax.errorbar(curve.bits, curve["mean"], yerr=curve["std"].fillna(0), capsize=3, label=method,
                        **style(method, kinds[method]))
        chance_line(ax, frame[(frame.table == table) & (frame.direction == direction)].chance.mean())
        bits = sorted(part.bits.unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(bits, [str(b) for b in bits])
        ax.set(title=DIRECTION_TITLES[direction], xlabel="code length (bits)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{part.metric.iloc[0]}" + (f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""))
    figure.suptitle(f"{title(table)} ({seeds} seed{'s' if seeds > 1 else ''} per point)")
    legend(figure)
    return figure


def curves(labelled: list, table: str, bits: int) -> dict[str, object]:
    """Precision-recall over Hamming radii and precision@K, one line per method (seed-averaged):
    {"pr_<bits>b": figure, "precision_at_k_<bits>b": figure}, or nothing without runs at `bits`."""
    by_method: dict[str, list] = {}
    for (record, name), table_name in zip(labelled, table_names([r for r, _ in labelled])):
        if table_name == table and record.bits == bits:
            by_method.setdefault(name, []).append(record)
    if not by_method:
        return {}
    (pr, pr_axes), (pk, pk_axes) = panels(), panels()
    seeds = max(len(runs) for runs in by_method.values())
    n_database = min(r.n_database for runs in by_method.values() for r in runs)
    for i, direction in enumerate(DIRECTION_TITLES):
        for method, runs in sorted(by_method.items()):
            scores = [r.score("hamming", direction) for r in runs]
            recall = np.mean([s.pr_recall for s in scores], 0)
            precision = np.mean([s.pr_precision for s in scores], 0)
            drawn = recall >= RECALL_FLOOR
            pr_axes[i].plot(recall[drawn], precision[drawn], label=method, markersize=3, **style(method, "hamming"))
            ks = sorted(k for k in map(int, scores[0].precision_at) if k <= n_database)
            pk_axes[i].plot(ks, np.mean([[s.precision_at[str(k)] for k in ks] for s in scores], 0), label=method,
                            markersize=3, **style(method, "hamming"))
        chance = np.mean([r.chance.get(direction, np.nan) for runs in by_method.values() for r in runs])
        for ax in (pr_axes[i], pk_axes[i]):
            chance_line(ax, chance)
            ax.set_title(DIRECTION_TITLES[direction])
            ax.grid(alpha=0.3)
        pr_axes[i].set(xlabel="recall (Hamming radius 0 to bits)", xlim=(0, 1.02))
        pk_axes[i].set(xlabel="K (top-K retrieved)", xscale="log", xlim=(1, n_database))
    pr_axes[0].set_ylabel("precision")
    pk_axes[0].set_ylabel("precision@K")
    runs = f"mean of {seeds} seeds" if seeds > 1 else "one seed"
    pr.suptitle(f"{title(table)}, {bits} bits: precision-recall over Hamming radius ({runs})")
    pk.suptitle(f"{title(table)}, {bits} bits: precision of the top K ({runs})")
    for figure in (pr, pk):
        legend(figure)
    return {f"pr_{bits}b": pr, f"precision_at_k_{bits}b": pk}


def figures(labelled: list, bits: int | None) -> tuple[dict[str, object], list[str]]:
    """({file stem: figure} of every table of the labelled records, notes on what could not be drawn): mAP vs
    code length, and the curves at `bits` (or at every code length the table has)."""
    frame = frame_of(labelled)
    summary = summarize(frame)
    drawn, notes = {}, []
    tables = table_names([record for record, _ in labelled])
    for table in sorted(summary.table.unique()):
        stem = "".join(c if c.isalnum() or c == "_" else "-" for c in table).strip("-")
        drawn[f"{stem}_map_vs_bits"] = map_vs_bits(frame, summary, table)
        runs = [(record, name) for (record, name), t in zip(labelled, tables) if t == table]
        present = sorted({record.bits for record, _ in runs})
        for length in [bits] if bits else present:
            drawn.update({f"{stem}_{name}": figure for name, figure in curves(labelled, table, length).items()})
        lacking = sorted({name for _, name in runs} - {name for record, name in runs if record.bits == bits})
        if bits and lacking:
            notes.append(f"{table}: no {bits}-bit run of {', '.join(lacking)} (code lengths there: "
                         f"{', '.join(map(str, present))}); their curves are not drawn")
    return drawn, notes


def build(results: Path, out_dir: Path, bits: int | None, selection: dict | None = None) -> list[str]:
    """Write every figure of the selected records (PDF and PNG); return lines saying what was written, and which
    methods had no run at the code length asked for."""
    chosen = selected(read_records(results), **(selection or {}))
    if not chosen.records:
        raise ConfigError(f"{results}: no result rows to plot (for the chosen datasets and methods)"
                          + (f"; {chosen.note()}" if chosen.note() else ""))
    drawn, notes = figures(chosen.labelled, bits)
    written = [path for stem, figure in drawn.items() for path in save(figure, out_dir / stem)]
    return [f"wrote {path}" for path in written] + ([chosen.note()] if chosen.note() else []) + notes
