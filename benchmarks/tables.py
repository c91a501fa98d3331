"""Comparison tables from result rows: per dataset, methods x code lengths, mean +- std over seeds.

Outputs: a Markdown section of results/README.md (between two marker lines), one LaTeX table per
dataset (results/<dataset>.tex) and the long-format numbers (results/tables.csv).
"""

import functools
from pathlib import Path

import pandas as pd

from benchmarks.config import NOT_HASHED, ConfigError, resolve
from benchmarks.results import DIRECTION_NAMES, read_rows
from common.files import atomic_write_bytes

BEGIN, END = "<!-- tables:begin (make table writes this section) -->", "<!-- tables:end -->"


@functools.cache
def reference_config(method: str, dataset: str, bits: int, seed: int) -> dict:
    """A cell's config as the config files give it now (read once per cell; callers must not change it)."""
    return resolve(method, dataset, bits, seed)


def variant(row: dict) -> str:
    """How a row's settings differ from its method's config files as they are now ("" when they don't)."""
    if "config" not in row:
        return ""
    spec = row["config"]["run"]
    reference = reference_config(spec["method"], spec["dataset"], spec["bits"], spec["seed"])
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


def dataset_names(rows: list[dict]) -> dict[int, str]:
    """Each row's table: its dataset config, or, where rows of one dataset were computed on different data
    (different fingerprints: another copy, other features), the dataset with its data fingerprint."""
    prints: dict[str, set] = {}
    for row in rows:
        prints.setdefault(row.get("dataset_config", row["dataset"]), set()).add(row.get("data_fingerprint"))
    out = {}
    for i, row in enumerate(rows):
        name = row.get("dataset_config", row["dataset"])
        out[i] = name if len(prints[name]) == 1 else f"{name} [data {str(row.get('data_fingerprint'))[:8]}]"
    return out


def label(row: dict) -> str:
    """The method's name, with its settings' difference from the config files for a variant."""
    return row["method"] + (f" ({v})" if (v := variant(row)) else "")


def load(rows: list[dict]) -> pd.DataFrame:
    """One line per (run, direction, score kind)."""
    records = []
    names = dataset_names(rows)
    for i, row in enumerate(rows):
        label_ = label(row)
        base = {"dataset": names[i], "protocol": row["protocol"],
                "backbone": row["backbone"], "n_query": row["n_query"], "n_database": row["n_database"],
                "supervised": row["supervised"], "bits": row["bits"], "seed": row["seed"]}
        for direction in DIRECTION_NAMES:
            records.append({**base, "method": label_, "direction": direction, "map": row[f"map_{direction}"],
                            "train_seconds": row["train_seconds"]})
            if f"cosine_map_{direction}" in row:  # real-valued features, labelled as such
                records.append({**base, "method": f"{label_} [cosine, real-valued]", "direction": direction,
                                "map": row[f"cosine_map_{direction}"], "train_seconds": row["train_seconds"]})
    return pd.DataFrame.from_records(records)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "supervised", "method", "direction", "bits"]
    return (frame.groupby(keys).agg(mean=("map", "mean"), std=("map", "std"), seeds=("seed", "nunique"),
                                    train_seconds=("train_seconds", "mean")).reset_index())


def pivot(summary: pd.DataFrame, dataset: str, bold) -> pd.DataFrame:
    """Methods (unsupervised first, then supervised) x (direction, bits); the best mean per column in bold."""
    part = summary[summary.dataset == dataset].copy()
    best = part.groupby(["direction", "bits"])["mean"].transform("max")
    part["text"] = [
        bold(cell) if m == b else cell
        for m, b, cell in zip(part["mean"], best, (f"{m:.4f}" + (f" ± {s:.4f}" if n > 1 else "")
                                                    for m, s, n in zip(part["mean"], part["std"], part["seeds"])))]
    part["group"] = part.supervised.map({False: "unsupervised", True: "supervised"})
    table = part.pivot_table(index=["group", "method"], columns=["direction", "bits"], values="text", aggfunc="first")
    table = table.reindex(sorted(table.index, key=lambda k: (k[0] == "supervised", k[1])))
    table.columns = [f"{DIRECTION_NAMES[d]} {b}" for d, b in table.columns]
    return table.fillna("–")


def caption(frame: pd.DataFrame, dataset: str) -> str:
    first = frame[frame.dataset == dataset].iloc[0]
    seeds = sorted(frame[frame.dataset == dataset].seed.unique())
    return (f"mAP@all (protocol.md, stable ties), {first.protocol} protocol, {first.n_query} queries x "
            f"{first.n_database} database, features {first.backbone}; mean ± std over run seeds "
            f"{', '.join(map(str, seeds))} where more than one; best per column in bold.")


def latex_escape(text: str) -> str:
    return text.replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")


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
    for dataset in sorted(summary.dataset.unique()):
        text = caption(frame, dataset)
        markdown = pivot(summary, dataset, lambda s: f"**{s}**").reset_index()
        sections.append(f"**{dataset}**. {text}\n\n{markdown.to_markdown(index=False)}\n")
        table = pivot(summary, dataset, lambda s: f"\\textbf{{{s}}}")
        table.index = table.index.map(lambda key: (key[0], latex_escape(key[1])))
        latex = table.to_latex(caption=latex_escape(f"{dataset}: {text}"), label=f"tab:{dataset.replace('_', '-')}", escape=False)
        path = out_dir / f"{dataset}.tex"
        atomic_write_bytes(path, latex.replace("±", "$\\pm$").encode())
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
