"""Figures from result records, for papers: mAP vs code length, precision-recall over Hamming radius and
precision@K at one code length, per dataset (table), each written as PDF, PNG and the CSV of its points.

What a reader decodes without the legend: colour and marker shape are the method (one colour per declared
method in every figure, never repeated: Okabe and Ito's colour-blind-safe set first, then Tol's muted scheme;
the shape repeats the method for readers who cannot tell two colours apart); line style is the preset (solid
common, dashed tuned, dash-dot paper); a cross marker is a real-valued method's features ranked by cosine
similarity, not codes; a hollow marker is a point where a run's codes collapsed (marked † in the tables); a
dotted grey line is chance. Unsupervised and supervised methods get a row of panels each (one panel per
direction, the row's own y scale), so that no panel holds more than one group's methods. By default each
method is drawn once, at its tuned preset where the rows have one (`presets` asks for more). Points are seed
means; error bars the sample standard deviation over seeds. Each figure's `<stem>.csv` holds one line per
drawn point with its series' style, for replotting in another style.
"""

import csv
import io
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from benchmarks.execution.results import read_records  # noqa: E402
from benchmarks.reports.tables import (  # noqa: E402
    COLLAPSED, file_stem, frame_of, selected, summarize, table_names)
from benchmarks.spec.registry import names  # noqa: E402
from common.errors import DataError  # noqa: E402
from common.files import atomic_write_bytes  # noqa: E402

DATASET_NAMES = {"mirflickr25k_mini": "MIRFlickr-25K, embedded 730-pair subset", "mirflickr25k": "MIRFlickr-25K",
                 "wikipedia": "Wikipedia", "toy": "Toy (synthetic)", "nuswide": "NUS-WIDE (21 concepts)",
                 "nuswide_tc10": "NUS-WIDE TC-10", "coco": "MS-COCO 2014"}
DIRECTION_TITLES = {"i2t": "image \u2192 text", "t2i": "text \u2192 image"}
GROUPS = ("unsupervised", "supervised")
RECALL_FLOOR = 0.01  # radii retrieving under 1% of the relevant items average a handful of queries: not drawn
# Okabe & Ito (2008), colour-blind safe, without its yellow (faint on white); then Paul Tol's muted scheme.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#332288", "#999933", "#882255", "#44AA99", "#DDCC77", "#CC6677", "#117733", "#AA4499", "#88CCEE")
MARKERS = ("o", "s", "D", "^", "v", "<", ">", "P", "X", "*", "p", "d", "h", "8", "H")  # the most distinct first

LINESTYLES = {"common": "-", "tuned": "--", "paper": "-."}
COSINE_MARKER = "x"  # a real-valued method's features (an unfilled cross: no code behind it)
SPARE_MARKERS = ("1", "2", "3", "4", "+", "|", "_")  # for series that would otherwise look the same (variants)
UNKNOWN = "#999999"  # a method the suite no longer declares
LEGEND_ROWS = 14  # legend entries a row of panels holds in one column

COLUMNS = ("panel", "series", "method", "preset", "kind", "x", "y", "error", "colour", "linestyle", "marker",
           "collapsed")


def palette(count: int) -> list[str]:
    """`count` distinct colours: PALETTE, then matplotlib's tab20 colours for methods beyond it."""
    extra = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    colours = list(dict.fromkeys([*PALETTE, *(c.upper() for c in extra)]))
    return colours[:count] if count <= len(colours) else colours + [UNKNOWN] * (count - len(colours))


def colour(method: str) -> str:
    """A method's colour in every figure: its place among the declared methods (variants share their method's)."""
    methods = names("methods")
    return palette(len(methods))[methods.index(method)] if method in methods else UNKNOWN


def marker(method: str, kind: str) -> str:
    """A method's marker shape for its codes (its place among the declared methods), a cross for features."""
    if kind != "hamming":
        return COSINE_MARKER
    methods = names("methods")
    return MARKERS[methods.index(method) % len(MARKERS)] if method in methods else MARKERS[0]


@dataclass(frozen=True)
class Series:
    """One line of a panel: its label, what it shows, and how it is drawn."""

    label: str
    method: str
    preset: str
    kind: str
    colour: str
    linestyle: str
    marker: str

    @classmethod
    def of(cls, label: str, method: str, preset: str, kind: str) -> "Series":
        return cls(label, method, preset, kind, colour(method), LINESTYLES.get(preset, ":"), marker(method, kind))


def distinct(series: list[Series]) -> list[Series]:
    """The series of one panel with pairwise distinct (colour, line style, marker): a series that would look like
    an earlier one (a variant of the same method, preset and kind) takes the next spare marker."""
    seen, out = set(), []
    for one in series:
        spares = iter(SPARE_MARKERS)
        while (one.colour, one.linestyle, one.marker) in seen:
            one = replace(one, marker=next(spares))
        seen.add((one.colour, one.linestyle, one.marker))
        out.append(one)
    return out


@dataclass(frozen=True)
class Point:
    """One drawn point, as the figure's CSV holds it."""

    panel: str
    series: str
    method: str
    preset: str
    kind: str
    x: float
    y: float
    error: float
    colour: str
    linestyle: str
    marker: str
    collapsed: bool


def panel_name(group: str, direction: str) -> str:
    return f"{group}, {DIRECTION_TITLES[direction]}"


def title(table: str) -> str:
    dataset, _, rest = table.partition(" ")
    return DATASET_NAMES.get(dataset, dataset) + (f" {rest}" if rest else "")


def shown(labelled: list, presets: list[str] | None) -> list:
    """The labelled records a figure draws: of the presets asked for or, by default, each method once per table,
    at its tuned preset where the table has one."""
    if presets is not None:
        return [(record, name) for record, name in labelled if record.preset in presets]
    tables = table_names([record for record, _ in labelled])
    tuned = {(table, record.method) for (record, _), table in zip(labelled, tables) if record.preset == "tuned"}
    return [(record, name) for (record, name), table in zip(labelled, tables)
            if record.preset == "tuned" or (table, record.method) not in tuned]


def map_points(frame, summary, table: str) -> list[Point]:
    """mAP against code length: one point per (series, code length) of a table."""
    part = summary[summary.table == table].sort_values(["method", "bits"])
    kinds = dict(zip(frame.method, frame.kind))
    points = []
    for (supervised, direction), panel in part.groupby(["supervised", "direction"], sort=True):
        styles = {s.label: s for s in distinct([Series.of(label, base, preset, kinds[label]) for label, base, preset in
                                                sorted(set(zip(panel.method, panel.base, panel.preset)))])}
        for row in panel.itertuples():
            s = styles[row.method]
            points.append(Point(panel_name(GROUPS[supervised], direction), s.label, s.method, s.preset, s.kind,
                                int(row.bits), float(row.mean), float(0 if np.isnan(row.std) else row.std), s.colour,
                                s.linestyle, s.marker, bool(row.collapsed)))
    return points


def curve_points(labelled: list, table: str, bits: int) -> tuple[list[Point], list[Point]]:
    """(precision-recall over Hamming radii, precision@K) at `bits`: one point per (series, radius or K),
    seed-averaged; a series is collapsed when one of its runs was."""
    by_series: dict[tuple, list] = {}
    for (record, name), table_name in zip(labelled, table_names([r for r, _ in labelled])):
        if table_name == table and record.bits == bits:
            by_series.setdefault((record.supervised, name, record.method, record.preset), []).append(record)
    n_database = min((r.n_database for runs in by_series.values() for r in runs), default=0)
    pr, pk = [], []
    for direction in DIRECTION_TITLES:
        for supervised in sorted({key[0] for key in by_series}):
            keys = sorted(key for key in by_series if key[0] == supervised)
            for key, s in zip(keys, distinct([Series.of(name, method, preset, "hamming") for _, name, method, preset
                                              in keys])):
                runs = by_series[key]
                scores = [r.score("hamming", direction) for r in runs]
                collapsed = any(direction in r.collapsed for r in runs)
                style = (s.label, s.method, s.preset, s.kind)
                panel = panel_name(GROUPS[supervised], direction)
                recall, precision = (np.mean([getattr(x, f) for x in scores], 0) for f in ("pr_recall", "pr_precision"))
                pr += [Point(panel, *style, float(r), float(p), 0.0, s.colour, s.linestyle, s.marker, collapsed)
                       for r, p in zip(recall, precision) if r >= RECALL_FLOOR]
                ks = sorted(k for k in map(int, scores[0].precision_at) if k <= n_database)
                pk += [Point(panel, *style, k, float(np.mean([x.precision_at[str(k)] for x in scores])), 0.0, s.colour,
                             s.linestyle, s.marker, collapsed) for k in ks]
    return pr, pk


def style_key(points: list[Point]) -> list[tuple]:
    """Legend entries for the encoding a figure uses: (handle, text)."""
    entries = [(Line2D([], [], color="0.3", linestyle=LINESTYLES[p]), f"{p} preset") for p in LINESTYLES
               if any(point.preset == p for point in points)]
    if any(point.kind != "hamming" for point in points):
        entries.append((Line2D([], [], color="0.3", linestyle="", marker=COSINE_MARKER),
                        "real-valued features (cosine), not codes"))
    if any(point.collapsed for point in points):
        entries.append((Line2D([], [], color="0.3", linestyle="", marker="o", markerfacecolor="white"),
                        f"hollow: collapsed codes ({COLLAPSED} in the tables)"))
    entries.append((Line2D([], [], color="0.5", linestyle=":"), "chance (random ranking)"))
    return entries


def draw(points: list[Point], chance: dict[str, float], heading: str, xlabel: str, ylabel: str,
         errors: bool = False, logx: int | None = None):
    """A figure of the points: a row of panels per group (one per direction), one legend per row on its right,
    the style key under the panels.

    Args:
        points: what to draw (map_points or curve_points).
        chance: {direction: the mAP of a random ranking}.
        heading: the figure's title.
        xlabel, ylabel: the axes' labels.
        errors: draw each point's error as a bar.
        logx: the base of a logarithmic x axis (None: linear).
    """
    groups = [g for g in GROUPS if any(p.panel.startswith(g + ",") for p in points)]
    # each row its own scale: unsupervised methods near chance stay readable beside supervised ones far above it
    figure, axes = plt.subplots(len(groups), 2, figsize=(11, 0.6 + 3.1 * len(groups)), sharey="row", squeeze=False,
                                layout="constrained")

    for row, group in zip(axes, groups):
        for ax, direction in zip(row, DIRECTION_TITLES):
            panel = [p for p in points if p.panel == panel_name(group, direction)]
            for label in dict.fromkeys(p.series for p in panel):
                line = [p for p in panel if p.series == label]
                first = line[0]
                style = dict(color=first.colour, linestyle=first.linestyle, marker=first.marker, markersize=5 if
                             len(line) < 12 else 3, label=label)
                xs, ys = [p.x for p in line], [p.y for p in line]
                if errors:
                    ax.errorbar(xs, ys, yerr=[p.error for p in line], capsize=3, **style)
                else:
                    ax.plot(xs, ys, **style)
                hollow = [p for p in line if p.collapsed]
                if hollow:
                    ax.plot([p.x for p in hollow], [p.y for p in hollow], linestyle="", marker=first.marker,
                            markersize=style["markersize"] + 2, markerfacecolor="white", markeredgecolor=first.colour,
                            zorder=3)
            ax.axhline(chance[direction], color="0.5", linestyle=":", linewidth=1)
            ax.set_title(panel_name(group, direction), fontsize=10)
            ax.grid(alpha=0.3)
            if logx:
                ax.set_xscale("log", base=logx)
            if errors:  # code lengths: one tick each
                ticks = sorted({p.x for p in points})
                ax.set_xticks(ticks, [str(t) for t in ticks])
                ax.minorticks_off()
        row[0].set_ylabel(ylabel)
        entries = len(row[1].get_legend_handles_labels()[1])
        row[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False,
                      ncols=-(-entries // LEGEND_ROWS))  # more series than a row's height holds: more columns
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    handles, texts = zip(*style_key(points))
    figure.legend(handles, texts, loc="outside lower center", ncols=len(texts), fontsize=8, frameon=False)
    figure.suptitle(heading)
    return figure


def subtitle(seeds: int, spread: str, presets: list[str] | None) -> str:
    """What a figure's points are: how many runs each averages (`spread`: `mean ± std` or `mean`), which presets."""
    runs = f"{spread} of {seeds} runs per point" if seeds > 1 else "one run per point"
    return runs + "; " + ("each method at its tuned preset where it has one" if presets is None else
                          f"presets {', '.join(presets)}")


def figures(labelled: list, bits: int | None, presets: list[str] | None = None
            ) -> tuple[dict[str, tuple[object, list[Point]]], list[str]]:
    """({file stem: (figure, its points)} of every table of the labelled records, notes on what was not drawn):
    mAP vs code length, and the curves at `bits` (or at every code length the table has). Tables of a label
    protocol are left out: benchmarks.reports.label_protocols draws what they find."""
    labelled = shown(labelled, presets)
    drawn, notes = {}, []
    if not labelled:
        return drawn, notes
    frame = frame_of(labelled)
    summary = summarize(frame)
    tables = table_names([record for record, _ in labelled])
    for table in sorted(summary.table.unique()):
        stem = file_stem(table)
        rows, part = frame[frame.table == table], summary[summary.table == table]
        if rows.labels.iloc[0]:  # a label protocol's rows are drawn against the noise rate, by their own report
            notes.append(f"{table}: a label protocol's table, drawn by its report (make label-reference), not here")
            continue
        chance = {d: rows[rows.direction == d].chance.mean() for d in DIRECTION_TITLES}
        seeds, metric = int(part.seeds.max()), part.metric.iloc[0]
        points = map_points(frame, summary, table)
        drawn[f"{stem}_map_vs_bits"] = (draw(points, chance, f"{title(table)}: {metric} against code length\n"
                                             + subtitle(seeds, "mean ± std", presets), "code length (bits)", metric,
                                             errors=True, logx=2), points)
        runs = [(record, name) for (record, name), t in zip(labelled, tables) if t == table]
        present = sorted({record.bits for record, _ in runs})
        for length in [bits] if bits else present:
            pr, pk = curve_points(labelled, table, length)
            if pr:
                heading = f"{title(table)}, {length} bits: %s\n" + subtitle(seeds, "mean", presets)
                drawn[f"{stem}_pr_{length}b"] = (draw(pr, chance, heading % "precision-recall over Hamming radius",
                                                      "recall (Hamming radius 0 to bits)", "precision"), pr)
                drawn[f"{stem}_precision_at_k_{length}b"] = (draw(pk, chance, heading % "precision of the top K",
                                                                  "K (top-K retrieved)", "precision@K", logx=10), pk)
        lacking = sorted({name for _, name in runs} - {name for record, name in runs if record.bits == bits})
        if bits and lacking:
            notes.append(f"{table}: no {bits}-bit run of {', '.join(lacking)} (code lengths there: "
                         f"{', '.join(map(str, present))}); their curves are not drawn")
    return drawn, notes


def save(figure, points: list[Point], stem: Path) -> list[Path]:
    """The figure as PDF and PNG, and its points as CSV."""
    written = []
    for kind in ("pdf", "png"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=kind, dpi=150, bbox_inches="tight")
        atomic_write_bytes(stem.with_suffix(f".{kind}"), buffer.getvalue())
        written.append(stem.with_suffix(f".{kind}"))
    plt.close(figure)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(point) for point in points)
    atomic_write_bytes(stem.with_suffix(".csv"), buffer.getvalue().encode())
    return [*written, stem.with_suffix(".csv")]


def build(results: Path, out_dir: Path, bits: int | None, selection: dict | None = None,
          presets: list[str] | None = None) -> list[str]:
    """Write every figure of the selected records (PDF, PNG and the CSV of its points).

    Args:
        results: the result rows (JSON lines).
        out_dir: the folder the files go to.
        bits: the code length of the curves (None: each one the rows have).
        selection: datasets, methods and variants (benchmarks.reports.tables.selected).
        presets: the presets to draw (None: each method once, at its tuned preset where it has one).

    Returns:
        Lines saying what was written, what was left out and which methods had no run at `bits`.

    Raises:
        DataError: no row to draw.
    """
    chosen = selected(read_records(results), **(selection or {}))
    drawn, notes = figures(chosen.labelled, bits, presets)
    if not drawn:
        raise DataError(f"{results}: no result rows to plot (for the chosen datasets, methods and presets)"
                          + (f"; {chosen.note()}" if chosen.note() else ""))
    written = [path for stem, (figure, points) in drawn.items() for path in save(figure, points, out_dir / stem)]
    return [f"wrote {path}" for path in written] + ([chosen.note()] if chosen.note() else []) + notes
