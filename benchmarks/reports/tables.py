"""Comparison tables from result records: per dataset (and preset), methods x code lengths, mean +- std over seeds.

In each column the best mean is bold, and so is every method that a paired sign-flip permutation test over
the queries (benchmarks.reports.significance) cannot tell from it at the 5% level: differences below the noise of
the query set are shown as ties. Numbers published by the papers (results/published.csv) follow the suite's
rows of the same dataset, labelled with their metric, protocol and features, never bold.

Outputs: a Markdown section (between two marker lines of a README), one LaTeX table per dataset for papers
(booktabs), and the long-format numbers with 95% intervals and p-values (tables.csv).
"""

import csv
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.execution.record import DIRECTIONS, KINDS, RunRecord
from benchmarks.execution.results import read_records
from benchmarks.reports.gains import gains_markdown, tuning_gains
from benchmarks.reports.significance import LEVEL, bootstrap_interval, sign_flip_p_value
from benchmarks.spec.config import differences, flatten, resolve, variant_label
from benchmarks.spec.registry import FAMILIES, declared
from common.errors import ConfigError, DataError
from common.files import atomic_write_bytes

BEGIN, END = "<!-- tables:begin (make table writes this section) -->", "<!-- tables:end -->"
PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "published.csv"
METRIC_NAMES = {"map": "mAP@all", "cosine_map": "cosine mAP@all", "map@50": "mAP@50", "map@1000": "mAP@1000",
                "map@5000": "mAP@5000"}
GROUPS = ("unsupervised", "supervised", "published", "chance")
# Under unseen classes (docs/protocol.md): an item is unseen when it carries at least one held-out label.
GROUP_TEXT = {"seen@all": "whose labels were all seen in training, against the whole database",
              "unseen@all": "with a held-out label, against the whole database",
              "seen@seen": "whose labels were all seen, against the database items whose labels were all seen",
              "unseen@unseen": "with a held-out label, against the database items with a held-out label"}
LOOKUP_RADIUS = 2  # hash lookup: the items within this Hamming radius of the query
log = logging.getLogger("cmhb")


def variant(record: RunRecord) -> dict:
    """How a record's settings differ from its method's config files: as stored when it was written, or, for a
    row of schema 1, against the config files as they are now (on the options both know)."""
    if record.variant is not None:
        return record.variant
    reference = resolve(record.method, record.dataset_config, record.bits, record.seed, preset=record.preset)
    return differences(record.config, reference.config())


def settings_key(record: RunRecord) -> str:
    """What a run's settings are, apart from its code length, run seed and split seed: runs of one method that
    share it are the same configuration (averaged over seeds in a table)."""
    config = {section: {k: v for k, v in flatten(values).items() if k != "split_seed"}
              for section, values in record.config.items() if section != "run"}
    return hashlib.sha256(json.dumps([record.preset, config], sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Selection:
    """The records a table shows with their labels (the method, and how its settings differ for a variant),
    and how many records it left out."""

    labelled: list[tuple[RunRecord, str]] = field(default_factory=list)
    variants: int = 0  # records whose settings differ from the config files
    superseded: int = 0  # records of a method's earlier settings (its config files changed since)

    @property
    def records(self) -> list[RunRecord]:
        return [record for record, _ in self.labelled]

    def note(self) -> str:
        """What was left out and how to show it, or nothing."""
        parts = [f"{n} rows {why}" for n, why in ((self.variants, "with changed settings (variants)"),
                                                   (self.superseded, "of earlier config-file settings")) if n]
        return f"left out {' and '.join(parts)}; `--variants` shows them" if parts else ""


def selected(records: list[RunRecord], datasets=None, methods=None, variants: bool = False) -> Selection:
    """The latest record of each config hash and data among the chosen datasets and methods.

    Records whose settings differ from the config files (variants), and records of a method's earlier settings
    once newer ones exist (superseded: the config files changed since), are shown only with `variants`,
    labelled by their difference. A record whose method or dataset the suite no longer knows is left out with a
    warning."""
    known = []
    for record in records:
        if (datasets is None or record.dataset_config in datasets) and (methods is None or record.method in methods):
            try:
                known.append((record, variant(record)))
            except ConfigError as error:
                log.warning(f"skipped the row of {record.method} on {record.dataset_config}: {error}")
    newest: dict = {}  # (dataset, method, preset) -> its newest record of the config files' settings
    for record, changed in known:
        group = (record.dataset_config, record.method, record.preset, label_protocol(record))
        if not changed and (group not in newest or (record.timestamp or "") >= (newest[group].timestamp or "")):
            newest[group] = record
    out, latest = Selection(), {}
    for record, changed in known:
        current = newest.get((record.dataset_config, record.method, record.preset, label_protocol(record)))
        if not changed and settings_key(record) != settings_key(current):
            out.superseded += not variants
            changed = {f"earlier {k}": v for k, v in differences(record.config, current.config).items()}
        elif changed:
            out.variants += not variants
        if changed and not variants:
            continue
        text = variant_label(changed)
        name = record.method + (" [tuned]" if record.preset == "tuned" else "") + (f" ({text})" if text else "")
        latest[record.config_hash, record.data_fingerprint] = (record, name)
    out.labelled = list(latest.values())
    return out


def table_names(records: list[RunRecord]) -> list[str]:
    """Each record's table: its dataset config; ` (paper preset)` for a record of that preset; where records
    of one dataset were computed on different data (another copy, other features), its data fingerprint; and its
    label protocol (`[label noise 0.2]`), if any."""
    prints: dict[str, set] = {}
    for record in records:
        prints.setdefault(record.dataset_config, set()).add(record.data_fingerprint)
    out = []
    for record in records:
        name = record.dataset_config
        if len(prints[name]) > 1:
            name += f" [data {str(record.data_fingerprint)[:8]}]"
        protocol = label_protocol(record)
        out.append(name + (" (paper preset)" if record.preset == "paper" else "") + (f" [{protocol}]" if protocol else ""))
    return out


def metric_kind(metric: str) -> tuple[str, str]:
    """(score kind, its metric) of a table metric: `map` -> (hamming, map), `cosine_map` -> (cosine, map)."""
    kind = next((k for k in KINDS if metric.startswith(f"{k}_")), "hamming")
    return kind, metric.removeprefix(f"{kind}_")


def label_protocol(record: RunRecord) -> str:
    """A record's label protocol as a table names it (docs/protocol.md): `unseen labels 0.3`, `label noise 0.2`,
    both, or nothing for the closed set with clean labels."""
    data = record.config.get("data", {})
    return ", ".join(f"{name} {data[key]:g}" for key, name in (("unseen_labels", "unseen labels"),
                                                               ("label_noise", "label noise")) if data.get(key))


def frame_of(labelled: list[tuple[RunRecord, str]]) -> pd.DataFrame:
    """One line per (run, direction, score): mAP@all of the codes, the cosine mAP@all of a real-valued method's
    features (labelled), or, in the paper preset, the metric the authors report. Under unseen classes, also one
    line per group of queries (seen@all, ...), in a table of the group's own."""
    lines = []
    records = [record for record, _ in labelled]
    for (record, name), table in zip(labelled, table_names(records)):
        base = {"table": table, "dataset": record.dataset_config, "preset": record.preset, "base": record.method,
                "protocol": record.protocol, "labels": label_protocol(record), "query_group": "",
                **{key: record.config.get("data", {}).get(key) or 0.0 for key in ("unseen_labels", "label_noise")},
                "backbone": record.backbone,
                "n_query": record.n_query, "n_database": record.n_database, "n_train": record.n_train,
                "supervised": record.supervised, "bits": record.bits, "seed": record.seed,
                "split_seed": record.split_seed, "train_seconds": record.train_seconds,
                **serving_columns(record.serving)}
        paper = record.paper_metric if record.preset == "paper" else None
        metrics = [paper] if paper else ["map" if k == "hamming" else f"{k}_map" for k in record.kinds]
        parts = [(base, record.scores, record.chance, record.collapsed)] + [
            ({**base, "table": f"{table} {g.group}", "query_group": g.group, "n_query": g.n_query,
              "n_database": g.n_database}, g.scores,
             g.chance, []) for g in record.groups]
        for metric in metrics:
            kind, measure = metric_kind(metric)
            suffix = f" [{METRIC_NAMES.get(metric, metric)}, the authors' metric]" if paper else \
                (f" [{KINDS[kind]}]" if KINDS[kind] else "")
            for part, all_scores, chance, collapsed in parts:
                for direction in DIRECTIONS:
                    scores = next(s for s in all_scores if s.kind == kind and s.direction == direction)
                    ap = np.asarray(scores.ap) if measure == "map" and scores.ap else None
                    lookup = scores.lookup(LOOKUP_RADIUS) if kind == "hamming" else (np.nan, np.nan)
                    lines.append({**part, "method": name + suffix, "kind": kind,
                                  "metric": METRIC_NAMES.get(metric, metric), "direction": direction,
                                  "value": scores.value(measure), "lookup_precision": lookup[0],
                                  "lookup_empty": lookup[1], "chance": chance.get(direction, np.nan), "ap": ap,
                                  "collapsed": kind == "hamming" and direction in collapsed,
                                  "candidate": metric == "map" or bool(paper)})
    return pd.DataFrame.from_records(lines)


SERVING_COLUMNS = ("weights_bytes", "encode_ms_image", "encode_ms_text", "encode_items_per_second_image",
                   "encode_items_per_second_text")


def serving_columns(serving: dict) -> dict:
    """A row's serving cost (benchmarks.execution.serving) as tables.csv columns; NaN where it was not measured."""
    return {"weights_bytes": serving.get("weights_bytes", np.nan),
            **{f"encode_ms_{m}": serving.get("ms_per_item", {}).get(m, np.nan) for m in ("image", "text")},
            **{f"encode_items_per_second_{m}": serving.get("items_per_second", {}).get(m, np.nan)
               for m in ("image", "text")}}


def seed_averaged_ap(part: pd.DataFrame) -> np.ndarray | None:
    """The per-query AP of a table cell's runs: averaged over run seeds within each split seed (the same
    queries), then the split seeds' queries one after another. None when some run has none."""
    aps = list(part["ap"])
    if any(a is None for a in aps):
        return None
    by_split = []
    for _, runs in part.groupby("split_seed", sort=True):
        stacked = list(runs["ap"])
        if len({len(a) for a in stacked}) != 1:
            return None
        by_split.append(np.mean(np.stack(stacked), 0))
    return np.concatenate(by_split)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and runs per (table, method, direction, bits); whether a run of it collapsed; its hash
    lookup and serving cost (means over its runs); the seed-averaged per-query AP (`ap`); its 95% bootstrap interval; and, per column of two or more candidates, the
    p-value against the best mean and whether it ties with it (a collapsed cell is no candidate)."""
    keys = ["table", "dataset", "preset", "supervised", "base", "method", "metric", "candidate", "direction", "bits"]
    out = []
    for key, part in frame.groupby(keys, sort=True):
        ap = seed_averaged_ap(part)
        out.append({**dict(zip(keys, key)), "mean": part["value"].mean(), "std": part["value"].std(),
                    "seeds": len(part[["seed", "split_seed"]].drop_duplicates()),
                    "collapsed": bool(part["collapsed"].any()), "train_seconds": part["train_seconds"].mean(),
                    "lookup_precision": part["lookup_precision"].mean(),  # over runs whose balls are not all empty
                    "lookup_empty": part["lookup_empty"].mean(skipna=False),
                    **{column: part[column].mean() for column in SERVING_COLUMNS},
                    "ap": ap, "ci": bootstrap_interval(ap) if ap is not None else (np.nan, np.nan)})
    summary = pd.DataFrame.from_records(out)
    summary["ci_low"], summary["ci_high"] = zip(*summary.pop("ci"))
    summary["p_vs_best"], summary["tied_with_best"], summary["tested"] = np.nan, False, False
    for _, column in summary[summary.candidate & ~summary.collapsed].groupby(["table", "direction", "bits"]):
        if len(column) < 2:
            continue  # nothing to compare: no bold
        best = column["mean"].idxmax()
        summary.loc[best, ["p_vs_best", "tied_with_best"]] = 1.0, True
        for index in column.index.drop(best):
            a, b = summary.at[best, "ap"], summary.at[index, "ap"]
            if a is not None and b is not None and len(a) == len(b):
                p = sign_flip_p_value(a - b)
                summary.loc[index, ["p_vs_best", "tied_with_best", "tested"]] = p, p >= LEVEL, True
    return summary


def published(dataset: str, preset: str, bits: list[int], path: Path = PUBLISHED) -> pd.DataFrame:
    """The published numbers for a dataset (and preset, where the file names one) at the code lengths `bits`, as
    summary lines; a real-valued method's number (no code length in the file) stands in every column."""
    if not path.exists():
        return pd.DataFrame()
    with open(path, newline="") as f:
        lines = [r for r in csv.DictReader(f) if r["dataset"] == dataset and r.get("preset", preset) in ("", preset)]
    return pd.DataFrame.from_records([
        {"method": f"{r['method']} (published: {r['metric']}, {r['protocol']}, {r['backbone']})", "group": "published",
         "family": "",
         "direction": r["direction"], "bits": b, "text": f"{float(r['value']):.3f}", "source": r["source"]}
        for r in lines for b in ([int(r["bits"])] if r["bits"] else bits) if b in bits])


COLLAPSED = "†"  # marks a cell with a collapsed run


def cell(mean: float, std: float, seeds: int, plus_minus: str, collapsed: bool = False) -> str:
    return f"{mean:.4f}" + (f"{plus_minus}{std:.4f}" if seeds > 1 else "") + (COLLAPSED if collapsed else "")


def family(method: str) -> str:
    """A method's family (benchmarks.spec.registry.FAMILIES), or `unspecified` for one the suite no longer declares."""
    try:
        return declared("methods", method).family
    except ConfigError:
        return FAMILIES[-1]


def grid(summary: pd.DataFrame, frame: pd.DataFrame, table: str, bold, plus_minus: str) -> pd.DataFrame:
    """Methods (unsupervised, supervised, published numbers, then chance; within a group by family: graph methods,
    the field's other methods, floors) x (direction, bits) for one table."""
    part = summary[summary.table == table].copy()
    part["text"] = [bold(cell(m, s, n, plus_minus, c)) if tied else cell(m, s, n, plus_minus, c)
                    for m, s, n, c, tied in zip(part["mean"], part["std"], part["seeds"], part["collapsed"],
                                                part["tied_with_best"])]
    part["group"] = part.supervised.map({False: "unsupervised", True: "supervised"})
    part["family"] = part.base.map(family)
    first = part.iloc[0]
    rows = frame[frame.table == table]
    # Published numbers are of the closed set with clean labels.
    extra = pd.DataFrame() if rows.labels.iloc[0] else published(first.dataset, first.preset, sorted(part.bits.unique()))
    chance = pd.DataFrame.from_records(
        [{"group": "chance", "family": "", "method": "chance (random ranking)", "direction": d, "bits": b,
          "text": f"{rows[rows.direction == d].chance.mean():.4f}"}
         for d in rows.direction.unique() for b in part.bits.unique()])
    part = pd.concat([part, extra, chance]) if len(extra) else pd.concat([part, chance])
    return ordered(part)


def ordered(part: pd.DataFrame) -> pd.DataFrame:
    """Cells (`text`) pivoted to (group, family, method) x (direction, bits), groups and families in order."""
    pivot = part.pivot_table(index=["group", "family", "method"], columns=["direction", "bits"], values="text",
                             aggfunc="first")
    order = {name: i for i, name in enumerate(FAMILIES)}
    return pivot.reindex(sorted(pivot.index, key=lambda k: (GROUPS.index(k[0]), order.get(k[1], -1), k[2]))).fillna("–")


def lookup_tables(summary: pd.DataFrame, frame: pd.DataFrame, table: str, stem: Path) -> list[Path]:
    """A table's hash lookup as Markdown and LaTeX (`stem`.md, .tex); nothing when no row of it records it."""
    cells = lookup_grid(summary, table)
    if cells is None:
        return []
    first = frame[frame.table == table].iloc[0]
    text = (f"Hash lookup: the precision of the database items within Hamming radius {LOOKUP_RADIUS} of a query, over "
            f"the queries that retrieve any, mean over each cell's runs; in brackets the share of queries that retrieve "
            f"none (docs/protocol.md). {first.protocol} protocol: {first.n_query:,} queries, {first.n_database:,} "
            "database items. Rows written before the suite recorded empty balls are left out.")
    markdown = cells.copy()
    markdown.columns = [f"{DIRECTIONS[d]} {b}" for d, b in markdown.columns]
    paths = [stem.with_suffix(".md"), stem.with_suffix(".tex")]
    atomic_write_bytes(paths[0], f"# {table}: hash lookup\n\n{text}\n\n"
                       f"{markdown.reset_index().to_markdown(index=False, disable_numparse=True)}\n".encode())
    atomic_write_bytes(paths[1], latex(cells, f"{table}, hash lookup: {text}",
                                       f"tab:{stem.name.replace('_', '-')}").encode())
    return paths


def lookup_grid(summary: pd.DataFrame, table: str) -> pd.DataFrame | None:
    """Hash lookup for one table: per method and column the precision within LOOKUP_RADIUS over the queries that
    retrieve something there, and the share that retrieve nothing; None when no row of it holds both."""
    part = summary[(summary.table == table) & summary.candidate & summary.lookup_empty.notna()].copy()
    if part.empty:
        return None
    part["text"] = [("–" if np.isnan(p) else f"{p:.4f}") + f" ({e:.0%} empty)"
                    for p, e in zip(part.lookup_precision, part.lookup_empty)]
    part["group"] = part.supervised.map({False: "unsupervised", True: "supervised"})
    part["family"] = part.base.map(family)
    return ordered(part)


def caption(frame: pd.DataFrame, summary: pd.DataFrame, table: str) -> str:
    """What the table shows, saying only what holds for it: metric, protocol, sizes, features, runs per cell,
    the rule for bold (when a column has two methods to compare), real-valued and collapsed cells."""
    rows, part = frame[frame.table == table], summary[summary.table == table]
    first = rows.iloc[0]
    metrics = ", ".join(sorted(rows.metric.unique()))
    if set(rows.metric) == {"mAP@all", "cosine mAP@all"}:
        metrics = "mAP@all (of the codes; cosine mAP@all of the features in rows marked real-valued)"
    train = f", {int(first.n_train):,} training items" if pd.notna(first.n_train) else ""
    seeds, splits = sorted(rows.seed.unique()), sorted(rows.split_seed.unique())
    runs = (f"Mean ± sample std over each cell's runs (run seeds {', '.join(map(str, seeds))}; split seeds "
            f"{', '.join(map(str, splits))})" if part.seeds.max() > 1 else
            f"One run per cell (run seed {seeds[0]}, split seed {splits[0]})")
    text = [f"{metrics} (docs/protocol.md; stable ties), {first.protocol} protocol: {first.n_query:,} queries, "
            f"{first.n_database:,} database items{train}; features {first.backbone}. {runs}. Chance: the mAP of a "
            "random ranking."]
    if first.labels:
        text.append(f"Label protocol: {first.labels} (docs/protocol.md)" + (
            f"; {first.query_group}: the queries {GROUP_TEXT[first.query_group]}" if first.query_group else
            "; every query against the whole database") + ".")
    if part.tied_with_best.any():
        queries = ", ".join(sorted({f"{n:,}" for n in rows.n_query}))
        text.append(f"Bold: the best mean of each column and every method not distinguishable from it (two-sided "
                    f"paired sign-flip permutation test over the {queries} queries' AP"
                    + (", averaged over run seeds" if len(seeds) > 1 else "")
                    + (", each split's queries in turn" if len(splits) > 1 else "") + f"; p ≥ {LEVEL})"
                    + ("" if part.tested.any() else " (no per-query AP: only the best is bold)") + ".")
    if (~part.candidate).any() and "cosine mAP@all" in set(rows.metric):
        text.append("Rows marked real-valued rank by cosine similarity of features, not codes, and are not "
                    "candidates for bold.")
    if part.collapsed.any():
        text.append(f"{COLLAPSED}: the codes of a run collapsed (fewer than 8 distinct database codes): the number "
                    "measures a near-constant ranking, and is never bold.")
    return " ".join(text)


def latex_escape(text: str) -> str:
    return (text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")
            .replace("#", "\\#").replace("±", "$\\pm$").replace("≥", "$\\geq$").replace("–", "--")
            .replace("->", "$\\to$"))


def latex(grid_: pd.DataFrame, caption_text: str, table_label: str) -> str:
    """A booktabs table: the method and its family, then directions spanning their code lengths; one \\midrule
    between groups."""
    columns = list(grid_.columns)
    directions = list(dict.fromkeys(d for d, _ in columns))
    header = " & & " + " & ".join(f"\\multicolumn{{{sum(d == x for x, _ in columns)}}}{{c}}"
                                f"{{{latex_escape(DIRECTIONS[d])}}}" for d in directions) + " \\\\"
    spans, start = [], 3
    for d in directions:
        width = sum(d == x for x, _ in columns)
        spans.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{latex_escape(caption_text)}}}",
             f"\\label{{{table_label}}}", f"\\begin{{tabular}}{{ll{'c' * len(columns)}}}", "\\toprule", header,
             " ".join(spans), "Method & Family & " + " & ".join(str(b) for _, b in columns) + " \\\\"]
    for group in [g for g in GROUPS if g in grid_.index.get_level_values(0)]:
        lines += ["\\midrule", f"\\multicolumn{{{len(columns) + 2}}}{{l}}{{\\textit{{{group}}}}} \\\\"]
        for (_, family_, method), values in grid_.loc[[group]].iterrows():
            lines.append(latex_escape(method) + " & " + family_ + " & " + " & ".join(latex_escape(v) if "textbf" not in v else
                                                                     v.replace("±", "$\\pm$") for v in values) + " \\\\")
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}", "\\end{table}"]) + "\n"


def file_stem(table: str) -> str:
    """A table's name as the stem of its files (tables and figures): `wikipedia [label noise 0.5]` ->
    `wikipedia--label-noise-0-5`."""
    return "".join(c if c.isalnum() or c == "_" else "-" for c in table).strip("-")


def build(results: Path, out_dir: Path, readme: Path | None, selection: dict | None = None,
          lookup: bool = False) -> list[str]:
    """Write every table of the selected records (`selection`: datasets, methods, variants); with `lookup`, also
    each table's hash lookup (<table>_lookup.md and .tex; the precision is in tables.csv either way).

    Returns:
        Lines saying what was written (and what was left out).

    Raises:
        DataError: no record to tabulate.
        ConfigError: a README without the marker lines.
    """
    chosen = selected(read_records(results), **(selection or {}))
    if not chosen.records:
        raise DataError(f"{results}: no result rows to tabulate (for the chosen datasets and methods)"
                          + (f"; {chosen.note()}" if chosen.note() else ""))
    if readme is not None and readme.exists() and not (BEGIN in readme.read_text() and END in readme.read_text()):
        raise ConfigError(f"{readme}: the marker lines {BEGIN!r} and {END!r} are missing; add them where the tables "
                          "belong")
    frame = frame_of(chosen.labelled)
    summary = summarize(frame)
    written = [out_dir / "tables.csv"]
    numbers = summary.drop(columns=["tested", "ap"])
    numbers.insert(numbers.columns.get_loc("base") + 1, "family", numbers.base.map(family))
    atomic_write_bytes(written[0], numbers.to_csv(index=False).encode())
    gains = tuning_gains(summary)
    sections, protocols = [], []  # the README shows the closed set's tables and links the label protocols' ones
    for table in sorted(summary.table.unique()):
        text = caption(frame, summary, table)
        markdown = grid(summary, frame, table, lambda s: f"**{s}**", " ± ")
        markdown.columns = [f"{DIRECTIONS[d]} {b}" for d, b in markdown.columns]
        section = (f"**{table}**. {text}\n\n{markdown.reset_index().to_markdown(index=False, disable_numparse=True)}\n"
                   + (f"\n{changed}" if (changed := gains_markdown(gains, table)) else ""))
        slug = file_stem(table)
        if frame[frame.table == table].labels.iloc[0]:  # a label protocol's table
            protocols.append(f"[{table}]({slug}.md)")
        else:
            sections.append(section)
        atomic_write_bytes(out_dir / f"{slug}.md", f"# {table}\n\n{section}".encode())
        written.append(out_dir / f"{slug}.md")
        path = out_dir / f"{slug}.tex"
        atomic_write_bytes(path, latex(grid(summary, frame, table, lambda s: f"\\textbf{{{s}}}", "±"), f"{table}: {text}",
                                       f"tab:{slug.replace('_', '-')}").encode())
        written.append(path)
        if lookup:
            written += lookup_tables(summary, frame, table, out_dir / f"{slug}_lookup")
    if readme is not None:
        text = readme.read_text() if readme.exists() else f"{BEGIN}\n{END}\n"
        head, rest = text.split(BEGIN, 1)
        if protocols:
            sections.append("Under the label protocols (docs/protocol.md, \"Beyond the closed set\"), each table in "
                            "a file of its own: " + ", ".join(protocols) + ".\n")
        atomic_write_bytes(readme, (head + BEGIN + "\n" + "\n".join(sections) + END + rest.split(END, 1)[1]).encode())
        written.append(readme)
    return [f"wrote {path}" for path in written] + ([chosen.note()] if chosen.note() else [])
