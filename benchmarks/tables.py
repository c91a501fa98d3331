"""Comparison tables from result rows: per dataset (and preset), methods x code lengths, mean +- std over seeds.

In each column the best mean is bold, and so is every method that a paired sign-flip permutation test over
the queries (benchmarks.significance) cannot tell from it at the 5% level: differences below the noise of
the query set are shown as ties. Numbers published by the papers (results/published.csv) follow the suite's
rows of the same dataset, labelled with their metric, protocol and features, never bold.

Outputs: a Markdown section (between two marker lines of a README), one LaTeX table per dataset for papers
(booktabs), and the long-format numbers with 95% intervals and p-values (tables.csv).
"""

import csv
import functools
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.config import DEFAULT_PRESET, NOT_HASHED, ConfigError, resolve
from benchmarks.results import DIRECTION_NAMES, read_rows
from benchmarks.significance import LEVEL, bootstrap_interval, sign_flip_p_value
from common.files import atomic_write_bytes

BEGIN, END = "<!-- tables:begin (make table writes this section) -->", "<!-- tables:end -->"
PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published.csv"
METRIC_NAMES = {"map": "mAP@all", "cosine_map": "cosine mAP@all", "map@50": "mAP@50", "map@1000": "mAP@1000",
                "map@5000": "mAP@5000"}
GROUPS = ("unsupervised", "supervised", "published")


@functools.cache
def reference_config(method: str, dataset: str, bits: int, seed: int, preset: str) -> dict:
    """A cell's config as the config files give it now (read once per cell; callers must not change it)."""
    return resolve(method, dataset, bits, seed, preset=preset)


def variant(row: dict) -> str:
    """How a row's settings differ from its method's config files (under its preset) as they are now."""
    if "config" not in row:
        return ""
    spec = row["config"]["run"]
    reference = reference_config(spec["method"], spec["dataset"], spec["bits"], spec["seed"],
                                 spec.get("preset", DEFAULT_PRESET))
    changed = []
    for section in ("method", "data", "trainer"):
        ignored = NOT_HASHED.get(section, ())
        for key, value in sorted(row["config"].get(section, {}).items()):
            if key not in ignored and reference.get(section, {}).get(key) != value:
                changed.append(f"{key}={value}")
    return ", ".join(changed)


def selected(rows: list[dict], datasets=None, methods=None, variants: bool = False) -> list[dict]:
    """The latest row of each config hash and data among the chosen datasets and methods; rows whose settings
    differ from the config files (variants) only when asked."""
    latest = {}
    for row in rows:
        if (datasets is None or row.get("dataset_config", row["dataset"]) in datasets) and \
                (methods is None or row["method"] in methods) and (variants or not variant(row)):
            latest[row["config_hash"], row.get("data_fingerprint")] = row
    return list(latest.values())


def table_names(rows: list[dict]) -> dict[int, str]:
    """Each row's table: its dataset config; ` (paper preset)` for a row of that preset; and, where rows of
    one dataset were computed on different data (another copy, other features), its data fingerprint."""
    prints: dict[str, set] = {}
    for row in rows:
        prints.setdefault(row.get("dataset_config", row["dataset"]), set()).add(row.get("data_fingerprint"))
    out = {}
    for i, row in enumerate(rows):
        name = row.get("dataset_config", row["dataset"])
        if len(prints[name]) > 1:
            name += f" [data {str(row.get('data_fingerprint'))[:8]}]"
        out[i] = name + (" (paper preset)" if row.get("preset", DEFAULT_PRESET) != DEFAULT_PRESET else "")
    return out


def label(row: dict) -> str:
    """The method's name, with its settings' difference from the config files for a variant."""
    return row["method"] + (f" ({v})" if (v := variant(row)) else "")


def load(rows: list[dict]) -> pd.DataFrame:
    """One line per (run, direction, score): mAP@all of the codes, the cosine mAP@all of a real-valued
    method's features (labelled), or, in the paper preset, the metric the authors report."""
    records = []
    names = table_names(rows)
    for i, row in enumerate(rows):
        base = {"table": names[i], "dataset": row.get("dataset_config", row["dataset"]),
                "preset": row.get("preset", DEFAULT_PRESET), "protocol": row["protocol"], "backbone": row["backbone"],
                "n_query": row["n_query"], "n_database": row["n_database"], "n_train": row.get("n_train"),
                "supervised": row["supervised"], "bits": row["bits"], "seed": row["seed"],
                "train_seconds": row["train_seconds"]}
        paper = row.get("paper_metric") if base["preset"] != DEFAULT_PRESET else None
        scores = [paper] if paper else ["map"] + (["cosine_map"] if "cosine_map_i2t" in row else [])
        for score in scores:
            suffix = {"map": "", "cosine_map": " [cosine, real-valued]"}.get(score, "") if not paper else \
                f" [{METRIC_NAMES.get(score, score)}, the authors' metric]"
            ap_key = {"map": "ap", "cosine_map": "cosine_ap"}.get(score)
            for direction in DIRECTION_NAMES:
                ap = row.get(f"{ap_key}_{direction}") if ap_key else None
                records.append({**base, "method": label(row) + suffix, "metric": METRIC_NAMES.get(score, score),
                                "direction": direction, "value": row[f"{score}_{direction}"],
                                "chance": row.get(f"chance_{direction}", np.nan),
                                "ap": np.asarray(ap) if ap is not None else None,
                                "candidate": score == "map" or bool(paper)})
    return pd.DataFrame.from_records(records)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and seeds per (table, method, direction, bits); the seed-averaged per-query AP; its
    95% bootstrap interval; and, per column, the p-value against the best mean and whether it ties with it."""
    keys = ["table", "dataset", "preset", "supervised", "method", "metric", "candidate", "direction", "bits"]
    out = []
    for key, part in frame.groupby(keys, sort=True):
        aps = list(part["ap"])
        ap = np.mean(np.stack(aps), 0) if all(a is not None for a in aps) and len({len(a) for a in aps}) == 1 else None
        out.append({**dict(zip(keys, key)), "mean": part["value"].mean(), "std": part["value"].std(),
                    "seeds": part["seed"].nunique(), "train_seconds": part["train_seconds"].mean(), "ap": ap,
                    "ci": bootstrap_interval(ap) if ap is not None else (np.nan, np.nan)})
    summary = pd.DataFrame.from_records(out)
    summary["ci_low"], summary["ci_high"] = zip(*summary.pop("ci"))
    summary["p_vs_best"], summary["tied_with_best"] = np.nan, False
    for _, column in summary[summary.candidate].groupby(["table", "direction", "bits"]):
        best = column["mean"].idxmax()
        summary.loc[best, ["p_vs_best", "tied_with_best"]] = 1.0, True
        for index in column.index.drop(best):
            a, b = summary.at[best, "ap"], summary.at[index, "ap"]
            if a is not None and b is not None and len(a) == len(b):
                p = sign_flip_p_value(a - b)
                summary.loc[index, ["p_vs_best", "tied_with_best"]] = p, p >= LEVEL
    return summary.drop(columns="ap")


def published(dataset: str, preset: str, path: Path = PUBLISHED) -> pd.DataFrame:
    """The published numbers for a dataset (and preset, where the file names one), as summary lines."""
    if not path.exists():
        return pd.DataFrame()
    with open(path, newline="") as f:
        lines = [r for r in csv.DictReader(f) if r["dataset"] == dataset and r.get("preset", preset) in ("", preset)]
    return pd.DataFrame.from_records([
        {"method": f"{r['method']} (published: {r['metric']}, {r['protocol']}, {r['backbone']})", "group": "published",
         "direction": r["direction"], "bits": int(r["bits"]), "text": f"{float(r['value']):.3f}", "source": r["source"]}
        for r in lines])


def cell(mean: float, std: float, seeds: int, plus_minus: str) -> str:
    return f"{mean:.4f}" + (f"{plus_minus}{std:.4f}" if seeds > 1 else "")


def grid(summary: pd.DataFrame, table: str, bold, plus_minus: str) -> pd.DataFrame:
    """Methods (unsupervised, supervised, then published numbers) x (direction, bits) for one table."""
    part = summary[summary.table == table].copy()
    part["text"] = [bold(cell(m, s, n, plus_minus)) if tied else cell(m, s, n, plus_minus)
                    for m, s, n, tied in zip(part["mean"], part["std"], part["seeds"], part["tied_with_best"])]
    part["group"] = part.supervised.map({False: "unsupervised", True: "supervised"})
    first = part.iloc[0]
    extra = published(first.dataset, first.preset)
    if len(extra):
        extra = extra[extra.bits.isin(part.bits.unique())]
    part = pd.concat([part, extra]) if len(extra) else part
    pivot = part.pivot_table(index=["group", "method"], columns=["direction", "bits"], values="text", aggfunc="first")
    return pivot.reindex(sorted(pivot.index, key=lambda k: (GROUPS.index(k[0]), k[1]))).fillna("–")


def caption(frame: pd.DataFrame, summary: pd.DataFrame, table: str) -> str:
    rows = frame[frame.table == table]
    first = rows.iloc[0]
    seeds = sorted(rows.seed.unique())
    queries = ", ".join(sorted({f"{n:,}" for n in rows.n_query}))
    metrics = ", ".join(sorted(rows.metric.unique()))
    if set(rows.metric) == {"mAP@all", "cosine mAP@all"}:
        metrics = "mAP@all (of the codes; cosine mAP@all of the features in rows marked real-valued)"
    tested = summary[(summary.table == table) & summary.p_vs_best.notna()]
    train = f", {int(first.n_train):,} training items" if pd.notna(first.n_train) else ""
    return (f"{metrics} (docs/protocol.md; stable ties), {first.protocol} protocol: {first.n_query:,} queries, "
            f"{first.n_database:,} database items{train}; features {first.backbone}. "
            f"Mean ± sample std over run seeds {', '.join(map(str, seeds))} where more than one. Bold: the best "
            f"hashing mean of each column and every method not distinguishable from it (two-sided paired "
            f"sign-flip permutation test over the {queries} queries' AP, averaged over seeds; p ≥ {LEVEL})"
            + ("" if len(tested) else " (no per-query AP: only the best is bold)") + ". Rows marked real-valued "
            "rank by cosine similarity of features, not codes, and are not candidates for bold.")


def latex_escape(text: str) -> str:
    return (text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")
            .replace("#", "\\#").replace("±", "$\\pm$").replace("≥", "$\\geq$").replace("–", "--")
            .replace("->", "$\\to$"))


def latex(grid_: pd.DataFrame, caption_text: str, table_label: str) -> str:
    """A booktabs table: directions spanning their code lengths, one \\midrule between groups."""
    columns = list(grid_.columns)
    directions = list(dict.fromkeys(d for d, _ in columns))
    header = " & " + " & ".join(f"\\multicolumn{{{sum(d == x for x, _ in columns)}}}{{c}}"
                                f"{{{latex_escape(DIRECTION_NAMES[d])}}}" for d in directions) + " \\\\"
    spans, start = [], 2
    for d in directions:
        width = sum(d == x for x, _ in columns)
        spans.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{latex_escape(caption_text)}}}",
             f"\\label{{{table_label}}}", f"\\begin{{tabular}}{{l{'c' * len(columns)}}}", "\\toprule", header,
             " ".join(spans), "Method & " + " & ".join(str(b) for _, b in columns) + " \\\\"]
    for group in [g for g in GROUPS if g in grid_.index.get_level_values(0)]:
        lines += ["\\midrule", f"\\multicolumn{{{len(columns) + 1}}}{{l}}{{\\textit{{{group}}}}} \\\\"]
        for (_, method), values in grid_.loc[[group]].iterrows():
            lines.append(latex_escape(method) + " & " + " & ".join(latex_escape(v) if "textbf" not in v else
                                                                     v.replace("±", "$\\pm$") for v in values) + " \\\\")
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}", "\\end{table}"]) + "\n"


def build(results: Path, out_dir: Path, readme: Path | None, selection: dict | None = None) -> list[Path]:
    """Write every table of the selected rows (`selection`: datasets, methods, variants); return the paths."""
    rows = selected(read_rows(results), **(selection or {}))
    if not rows:
        raise ConfigError(f"{results}: no result rows to tabulate (for the chosen datasets and methods)")
    frame = load(rows)
    summary = summarize(frame)
    written = [out_dir / "tables.csv"]
    atomic_write_bytes(written[0], summary.to_csv(index=False).encode())
    sections = []
    for table in sorted(summary.table.unique()):
        text = caption(frame, summary, table)
        markdown = grid(summary, table, lambda s: f"**{s}**", " ± ")
        markdown.columns = [f"{DIRECTION_NAMES[d]} {b}" for d, b in markdown.columns]
        sections.append(f"**{table}**. {text}\n\n{markdown.reset_index().to_markdown(index=False)}\n")
        slug = "".join(c if c.isalnum() or c == "_" else "-" for c in table).strip("-")
        path = out_dir / f"{slug}.tex"
        atomic_write_bytes(path, latex(grid(summary, table, lambda s: f"\\textbf{{{s}}}", "±"), f"{table}: {text}",
                                       f"tab:{slug.replace('_', '-')}").encode())
        written.append(path)
    if readme is not None:
        text = readme.read_text() if readme.exists() else ""
        if BEGIN not in text or END not in text:
            raise ValueError(f"{readme}: the marker lines {BEGIN!r} and {END!r} are missing; add them where "
                             "the tables belong")
        head, rest = text.split(BEGIN, 1)
        atomic_write_bytes(readme, (head + BEGIN + "\n" + "\n".join(sections) + END + rest.split(END, 1)[1]).encode())
        written.append(readme)
    return written
