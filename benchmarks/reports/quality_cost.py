"""What the codes buy, drawn: quality against the cost of searching (results/README.md, "What the codes buy").

`quality_cost_<dataset>.png`: each method's mAP@all (mean of I->T and T->I over a cell's runs, tables.csv) at
each code length against the bytes an item takes and against the latency of one query over 1e6 items (the
suite's exhaustive ranking for codes, exact inner product for the real-valued features; make perf-retrieval),
codes and real-valued rows together, the Pareto frontier drawn. `recall_qps.png`: recall@100 against queries per
second (one thread, single queries) of every index at 1e6 items, as ann-benchmarks draws them.

    python -m benchmarks.reports.quality_cost [--tables results/tables.csv] [--perf results/perf-retrieval.csv]
        [--results results/runs.jsonl.gz] [--out results/plots]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.execution.results import read_records  # noqa: E402

SIZE = 10**6  # the database size the latencies are read at
CODE_SEARCH, FEATURE_SEARCH = ("suite", "exhaustive"), ("faiss-flat-ip", "exhaustive")


def feature_widths(results: Path) -> dict[str, int]:
    """{method: width of its real-valued features} from the rows that score features (their `width` option)."""
    return {r.method: int(r.config["method"]["width"]) for r in read_records(results)
            if r.score("cosine", "i2t") is not None and "width" in r.config["method"]}


def cost_points(tables: pd.DataFrame, perf: pd.DataFrame, widths: dict[str, int], dataset: str,
                preset: str = "common") -> pd.DataFrame:
    """One point per method, kind and code length of `dataset`: mAP (mean of the two directions), bytes per
    item and the latency of one query at SIZE items on all threads.

    Args:
        tables: tables.csv (benchmarks.reports.tables).
        perf: make perf-retrieval's CSV.
        widths: feature widths of the real-valued rows (feature_widths).
        dataset: the table's dataset.
        preset: the rows' preset.

    Returns:
        Columns method, kind (codes or features), bits, map, bytes, latency_ms; a row whose cost was not
        measured is left out.
    """
    rows = tables[(tables.dataset == dataset) & (tables.preset == preset) & (tables.table == dataset)]
    means = rows.groupby(["base", "metric", "bits"], as_index=False)["mean"].mean()
    at = perf[perf["size"] == SIZE]
    points = []
    for line in means.itertuples():
        features = line.metric.startswith("cosine")
        width = widths.get(line.base) if features else line.bits
        index, setting = FEATURE_SEARCH if features else CODE_SEARCH
        found = at[(at["index"] == index) & (at["setting"] == setting) & (at["width"] == width)]
        if width is None or found.empty:
            continue
        points.append({"method": line.base, "kind": "features" if features else "codes",
                       "bits": np.nan if features else line.bits, "map": line.mean,
                       "bytes": float(found.bytes_per_item.iloc[0]), "latency_ms": float(found.p50_ms_all_threads.iloc[0])})
    return pd.DataFrame.from_records(points).drop_duplicates()


def pareto(points: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The points no other point beats: none cheaper (or as cheap) has a higher mAP. Sorted by cost."""
    ordered = points.sort_values([cost, "map"], ascending=[True, False])
    best, keep = -np.inf, []
    for index, row in ordered.iterrows():
        if row["map"] > best:
            keep.append(index)
            best = row["map"]
    return ordered.loc[keep]


def quality_cost_figure(points: pd.DataFrame, dataset: str, path: Path) -> Path:
    """Two panels (bytes per item, latency at SIZE items), log x; each method one colour, its code lengths
    joined; features as hollow squares; the frontier dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    methods = sorted(points.method.unique())
    colours = dict(zip(methods, plt.get_cmap("tab20")(np.linspace(0, 1, max(len(methods), 2)))))
    for ax, cost, label in ((axes[0], "bytes", "bytes per item"),
                            (axes[1], "latency_ms", f"ms per query at {SIZE:,} items (all threads)")):
        for method in methods:
            mine = points[points.method == method]
            codes = mine[mine.kind == "codes"].sort_values("bits")
            ax.plot(codes[cost], codes["map"], "o-", color=colours[method], label=method, markersize=4)
            for row in mine[mine.kind == "features"].itertuples():
                ax.plot(getattr(row, cost), row.map, "s", mfc="none", color=colours[method], markersize=8,
                        label=f"{method} (features)")
        front = pareto(points, cost)
        ax.step(front[cost], front["map"], "k--", where="post", linewidth=1, label="Pareto frontier")
        ax.set(xscale="log", xlabel=label, ylabel="mAP@all (mean of I->T and T->I)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncol=min(6, len(unique)), fontsize=8)
    fig.suptitle(f"{dataset}: quality against cost (code lengths 16, 32, 64 bits; squares: real-valued features)")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def recall_qps_figure(perf: pd.DataFrame, path: Path) -> Path:
    """Recall@100 against single-query throughput on one thread at SIZE items, a panel per data kind."""
    at = perf[perf["size"] == SIZE]
    kinds = sorted(at.groupby(["kind", "width"]).groups)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 4.2), constrained_layout=True, squeeze=False)
    for ax, (kind, width) in zip(axes[0], kinds):
        part = at[(at.kind == kind) & (at.width == width)]
        for index, lines in part.groupby("index"):
            ax.plot(lines.recall_at_100, 1e3 / lines.p50_ms_1_thread, "o-", label=index, markersize=4)
        ax.set(yscale="log", xlabel="recall@100", ylabel="queries per second (1 thread)",
               title=f"{width} bits" if kind == "binary" else f"{width}-d float32", xlim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Search at {SIZE:,} items: recall@100 against throughput")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=Path, default=Path("results/tables.csv"))
    parser.add_argument("--perf", type=Path, default=Path("results/perf-retrieval.csv"))
    parser.add_argument("--results", type=Path, default=Path("results/runs.jsonl.gz"))
    parser.add_argument("--out", type=Path, default=Path("results/plots"))
    args = parser.parse_args()
    tables, perf, widths = pd.read_csv(args.tables), pd.read_csv(args.perf), feature_widths(args.results)
    args.out.mkdir(parents=True, exist_ok=True)
    for dataset in sorted(tables.dataset.unique()):
        points = cost_points(tables, perf, widths, dataset)
        if len(points):
            print(f"wrote {quality_cost_figure(points, dataset, args.out / f'quality_cost_{dataset}.png')}")
    print(f"wrote {recall_qps_figure(perf, args.out / 'recall_qps.png')}")


if __name__ == "__main__":
    main()
