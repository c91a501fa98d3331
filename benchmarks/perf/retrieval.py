"""What the codes buy: the cost of searching binary codes at 1e5 to 1e8 items, beside real-valued features.

For each database size and code length: bytes per item, build time, query latency (p50 and p99 of single
queries, on one thread and on all), batch throughput and recall@100 against the exact Hamming top 100, for
the suite's exhaustive ranking (metrics.kernels.hamming_top_k: the stable ranking every metric reads, cut at
100) and faiss's binary indexes: flat, hash lookup at radius 0 to 2, multi-index hashing (every item within
radius 2 found; up to 1e7 items, as a table holds a bucket per distinct code), HNSW (up to 1e6 items: its
build takes hours beyond) and IVF at a few settings; beside them float32 features of 512 and 1,024 values
(exact inner product, HNSW). Every index runs in a process of its own: its memory is what the process holds
after building and after searching, above what the interpreter and its libraries held before.

Codes: CCA-ITQ trained on the MIRFlickr-25K shape (datamodules/scale.py; label-driven synthetic features),
database = its image codes, queries = its text codes (I->T search); replicated to the database size by
drawing rows with replacement and flipping each bit with probability 1/32, which keeps the codes' bit balance
and correlations near the trained ones (both printed). Features: the shape's 512-d and 1,024-d image
features, replicated with 5% Gaussian noise; their recall is against their own exact top 100. Sizes whose
float features do not fit in memory are extrapolated from the largest measured size (linear in the size)
and marked so.

    python benchmarks/perf/retrieval.py [--quick] [--csv FILE] [--markdown FILE]

Speeds only: nothing here is a result row.
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (10**5, 10**6, 10**7, 10**8)
BITS = (16, 32, 64, 128)
DIMS = (512, 1024)
K = 100
FLIP = 1 / 32  # each replicated bit flips with this probability
MEMORY = 20 * 2**30  # bytes a row's data may take on the 24 GB machine; beyond it, float rows are extrapolated
LARGEST_BITS = 64  # codes longer than this skip 1e8 items (1.6 GB of codes and as much again in an index)
GRAPH_ITEMS = 10**6  # HNSW builds beyond this take hours on 2 cores: not measured
HASH_ITEMS = 10**7  # hash tables hold a bucket per distinct code: beyond this, more memory than the machine has


def binary_indexes(size: int) -> dict[str, list[str]]:
    """The indexes measured for codes at `size` items, each with the search settings tried on one build."""
    indexes = {"suite": ["exhaustive"], "faiss-flat": ["exhaustive"], "faiss-ivf": [f"nprobe {p}" for p in (1, 8, 32)]}
    if size <= HASH_ITEMS:
        indexes["faiss-hash"] = [f"radius {r}" for r in (0, 1, 2)]
        indexes["faiss-multihash"] = ["radius 2, 3 tables"]
    if size <= GRAPH_ITEMS:
        indexes["faiss-hnsw"] = [f"efSearch {e}" for e in (16, 64, 256)]
    return indexes


def float_indexes(size: int) -> dict[str, list[str]]:
    indexes = {"faiss-flat-ip": ["exhaustive"]}
    if size <= GRAPH_ITEMS:
        indexes["faiss-hnsw-ip"] = [f"efSearch {e}" for e in (64, 256)]
    return indexes


def trained_codes(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(database image codes, query text codes) of CCA-ITQ on the MIRFlickr-25K shape, packed to bytes."""
    import torch

    from benchmarks.execution.console import quiet
    from benchmarks.execution.pipeline import build
    from benchmarks.spec.config import resolve
    from datamodules.scale import ScaleDataModule

    quiet()
    spec = resolve("cca_itq", "mirflickr25k", bits, 0, ["--logger.kind=none"])
    with tempfile.TemporaryDirectory() as cache:
        data = ScaleDataModule(shape="mirflickr25k", cache_dir=cache)
        run = build(spec, datamodule=data, announce=lambda line: None)
        run.trainer.fit(run.method, datamodule=data)
        features = data.data
        with torch.no_grad():
            image = run.method.encode_image(torch.as_tensor(features.image[data.split.database])).numpy()
            text = run.method.encode_text(torch.as_tensor(features.text[data.split.query])).numpy()
    return np.packbits(image > 0, axis=1), np.packbits(text > 0, axis=1)


def structure(packed: np.ndarray, bits: int) -> dict:
    """Bit balance (mean |share of ones - 1/2|) and the mean |correlation| between two bits."""
    ones = np.unpackbits(packed[:20000], axis=1)[:, :bits].astype(np.float64)
    corr = np.corrcoef(ones, rowvar=False)
    off = corr[~np.eye(bits, dtype=bool)]
    return {"balance": float(np.abs(ones.mean(0) - 0.5).mean()), "correlation": float(np.nanmean(np.abs(off)))}


def replicate_codes(packed: np.ndarray, size: int, rng: np.random.Generator, chunk: int = 1 << 22) -> np.ndarray:
    """`size` rows drawn with replacement, each bit flipped with probability FLIP (five random masks ANDed)."""
    out = np.empty((size, packed.shape[1]), np.uint8)
    for start in range(0, size, chunk):
        rows = packed[rng.integers(0, len(packed), min(chunk, size - start))]
        flips = np.bitwise_and.reduce([rng.integers(0, 256, rows.shape, dtype=np.uint8) for _ in range(5)])
        out[start:start + len(rows)] = rows ^ flips
    return out


def replicate_features(features: np.ndarray, size: int, rng: np.random.Generator, chunk: int = 1 << 18) -> np.ndarray:
    scale = np.float32(0.05 * features.std())
    out = np.empty((size, features.shape[1]), np.float32)
    for start in range(0, size, chunk):
        rows = features[rng.integers(0, len(features), min(chunk, size - start))]
        out[start:start + len(rows)] = rows + scale * rng.standard_normal(rows.shape, dtype=np.float32)
    return out


def build_index(index: str, database: np.ndarray, width: int):
    """A faiss index over `database` (packed codes of `width` bits, or float rows of `width` values)."""
    import faiss

    if index == "faiss-flat":
        built = faiss.IndexBinaryFlat(width)
    elif index == "faiss-hash":  # the whole code as the key (its first 64 bits for longer codes)
        built = faiss.IndexBinaryHash(width, min(width, 64))
    elif index == "faiss-multihash":  # 3 substrings: an item within radius 2 matches one of them exactly
        built = faiss.IndexBinaryMultiHash(width, 3, width // 3)
        built.nflip = 0
    elif index == "faiss-ivf":
        lists = min(int(math.sqrt(len(database))), 4096)
        built = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(width), width, lists)
        sample = np.random.default_rng(0).choice(len(database), min(len(database), 30 * lists), replace=False)
        built.train(database[np.sort(sample)])
    elif index == "faiss-hnsw":
        built = faiss.IndexBinaryHNSW(width, 32)
    elif index == "faiss-flat-ip":
        built = faiss.IndexFlatIP(width)
    elif index == "faiss-hnsw-ip":
        built = faiss.IndexHNSWFlat(width, 32, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown index {index!r}")
    built.add(database)
    return built


def apply(built, setting: str) -> None:
    """Sets a built index's search setting ("radius 1", "nprobe 8", "efSearch 64"; others have none)."""
    name, value = (setting.split(",")[0].split() + [""])[:2]
    if name == "radius" and hasattr(built, "nflip") and "tables" not in setting:
        built.nflip = int(value)
    elif name == "nprobe":
        built.nprobe = int(value)
    elif name == "efSearch":
        built.hnsw.efSearch = int(value)


def searcher(index: str, database: np.ndarray, width: int):
    """(seconds to build, search(queries, setting) -> neighbour ids (queries, K), -1 where fewer were found)."""
    start = time.perf_counter()
    if index == "suite":
        from metrics.kernels import hamming_top_k

        words = as_words(database)
        return time.perf_counter() - start, lambda queries, setting: hamming_top_k(as_words(queries), words, width,
                                                                                    K)[0]
    built = build_index(index, database, width)

    def search(queries, setting):
        apply(built, setting)
        return built.search(queries, K)[1]
    return time.perf_counter() - start, search


def as_words(packed: np.ndarray) -> np.ndarray:
    """Codes packed to bytes (faiss's layout) as the uint64 words the suite's kernels read."""
    return np.ascontiguousarray(np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8)))).view(np.uint64)


def set_threads(count: int) -> None:
    import faiss
    import numba

    faiss.omp_set_num_threads(count)
    numba.set_num_threads(count)


def measure(row: dict, folder: Path) -> list[dict]:
    """One index in this process, built once: per search setting its latencies, throughput and recall@100
    (tie-aware for codes: a returned item counts when it is no farther than the exact 100th)."""
    import faiss

    if row["index"] == "suite":  # imported and compiled (or loaded from numba's cache) before anything is timed
        from metrics.kernels import hamming_top_k

        hamming_top_k(np.zeros((1, 1), np.uint64), np.zeros((1, 1), np.uint64), 64, 1)
    before = resident_mb()  # the interpreter and its libraries: not the row's
    database, queries = np.load(folder / "database.npy"), np.load(folder / "queries.npy")
    exact = np.load(folder / "exact.npy")  # per query: the exact 100th distance (codes) or the top-100 ids
    threads = faiss.omp_get_max_threads()
    build_seconds, search = searcher(row["index"], database, row["width"])
    held = resident_mb()
    measured = []
    for setting in row["settings"]:
        latency = {}
        for count in (1, threads):
            set_threads(count)
            times = []
            for q in queries[:row["latency_queries"]]:
                start = time.perf_counter()
                search(q[None], setting)
                times.append(time.perf_counter() - start)
            latency[count] = np.percentile(np.array(times) * 1e3, [50, 99])
        start = time.perf_counter()
        found = search(queries, setting)
        batch_seconds = time.perf_counter() - start
        held = max(held, resident_mb())
        if row["kind"] == "binary":
            distance = (np.unpackbits(database[np.maximum(found, 0)], axis=-1)
                        != np.unpackbits(queries, axis=1)[:, None]).sum(-1)
            recall = code_recall(found, distance, exact)
        else:
            recall = float(np.mean([len(np.intersect1d(f, e)) / K for f, e in zip(found, exact)]))
        measured.append({
            **{k: v for k, v in row.items() if k != "settings"}, "setting": setting,
            "bytes_per_item": database.nbytes / len(database), "build_seconds": round(build_seconds, 3),
            "p50_ms_1_thread": latency[1][0], "p99_ms_1_thread": latency[1][1],
            "p50_ms_all_threads": latency[threads][0], "p99_ms_all_threads": latency[threads][1],
            "queries_per_second": len(queries) / batch_seconds, "recall_at_100": recall,
            "memory_mb": held - before, "threads": threads})
    return measured


def code_recall(found: np.ndarray, distance: np.ndarray, exact: np.ndarray) -> float:
    """Recall@k of a code search with ties: the share of the k slots holding an item no farther than the exact
    k-th neighbour (any of the items tied at that distance is a right answer).

    Args:
        found: (queries, k) the returned ids, -1 where fewer than k were found.
        distance: (queries, k) their Hamming distances to the query.
        exact: (queries,) the exact k-th smallest distance of each query.

    Returns:
        The mean share over queries.
    """
    return float(((distance <= exact[:, None]) & (found >= 0)).mean())


def resident_mb() -> float:
    """This process's resident memory now (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def exact_answers(database: np.ndarray, queries: np.ndarray, width: int, binary: bool) -> np.ndarray:
    import faiss

    if binary:
        index = faiss.IndexBinaryFlat(width)
        index.add(database)
        return index.search(queries, K)[0][:, -1]
    index = faiss.IndexFlatIP(width)
    index.add(database)
    return index.search(queries, K)[1]


def prepare(folder: Path, database: np.ndarray, queries: np.ndarray, width: int, binary: bool) -> None:
    np.save(folder / "database.npy", database)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "exact.npy", exact_answers(database, queries, width, binary))


def run_rows(rows: list[dict], folder: Path, out: list[dict]) -> None:
    for row in rows:
        done = subprocess.run([sys.executable, __file__, "--row", json.dumps(row), "--folder", str(folder)],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"error: {row['index']} at {row['size']:,} items failed:\n{done.stderr[-3000:]}")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        out += measured
        print("\n".join(line(r) for r in measured), flush=True)


def extrapolated(measured: dict, size: int) -> dict:
    """A float row at a size that does not fit: memory, build and exhaustive latency linear in the size."""
    factor = size / measured["size"]
    return {**measured, "size": size, "extrapolated": True, "build_seconds": measured["build_seconds"] * factor,
            **{key: measured[key] * factor for key in ("p50_ms_1_thread", "p99_ms_1_thread", "p50_ms_all_threads",
                                                      "p99_ms_all_threads")},
            "queries_per_second": measured["queries_per_second"] / factor,
            "memory_mb": measured["memory_mb"] * factor}


def line(row: dict) -> str:
    what = f"{row['width']} bits" if row["kind"] == "binary" else f"{row['width']}-d float32"
    mark = " (extrapolated)" if row.get("extrapolated") else ""
    return (f"{row['size']:>11,} | {what:>15} | {row['index']:>15} {row['setting']:<20} | "
            f"{row['bytes_per_item']:>6.0f} B | build {row['build_seconds']:8.2f} s | p50 {row['p50_ms_1_thread']:9.3f} / "
            f"{row['p50_ms_all_threads']:9.3f} ms | p99 {row['p99_ms_1_thread']:9.3f} ms | "
            f"{row['queries_per_second']:10.1f} q/s | recall@100 {row['recall_at_100']:.3f} | "
            f"{row['memory_mb']:8.0f} MB{mark}")


def markdown(rows: list[dict], notes: list[str]) -> str:
    header = ("| items | data | index | setting | bytes/item | build s | p50 ms (1 thread) | p99 ms (1 thread) | "
              "p50 ms (all) | queries/s (batch) | recall@100 | memory MB (data + index) |\n" + "|---" * 12 + "|\n")
    body = "".join(
        f"| {r['size']:,} | {r['width']} {'bits' if r['kind'] == 'binary' else '-d float32'} | {r['index']} | "
        f"{r['setting']} | {r['bytes_per_item']:.0f} | {r['build_seconds']:.2f} | {r['p50_ms_1_thread']:.3f} | "
        f"{r['p99_ms_1_thread']:.3f} | {r['p50_ms_all_threads']:.3f} | {r['queries_per_second']:.1f} | "
        f"{r['recall_at_100']:.3f} | {r['memory_mb']:.0f}{' (extrapolated)' if r.get('extrapolated') else ''} |\n"
        for r in rows)
    return "\n".join(notes) + "\n\n" + header + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 items, 64 bits, 512-d: about a minute")
    parser.add_argument("--csv", help="write every row to this CSV file")
    parser.add_argument("--markdown", help="write the table, with how the codes were made, to this file")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(json.loads(args.row), Path(args.folder))))
        return
    sizes, bits_grid, dims = ((10**5,), (64,), (512,)) if args.quick else (SIZES, BITS, DIMS)
    n_queries, latency_queries = (200, 20) if args.quick else (1000, 200)
    rng, rows, notes = np.random.default_rng(0), [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for bits in bits_grid:
            database, queries = trained_codes(bits)
            trained, copied = structure(database, bits), structure(replicate_codes(database, 20000, rng), bits)
            notes.append(f"{bits} bits: trained codes' bit balance {trained['balance']:.3f} and mean |bit correlation| "
                         f"{trained['correlation']:.3f}; replicated {copied['balance']:.3f} and {copied['correlation']:.3f}.")
            print(notes[-1], flush=True)
            for size in sizes:
                if size > 10**7 and bits > LARGEST_BITS:
                    continue
                prepare(folder, replicate_codes(database, size, rng), replicate_codes(queries, n_queries, rng),
                        bits, binary=True)
                run_rows([{"kind": "binary", "width": bits, "size": size, "index": index, "settings": settings,
                           "latency_queries": latency_queries} for index, settings in binary_indexes(size).items()],
                         folder, rows)
        for dim in dims:
            features = image_features(dim)
            largest = None
            for size in sizes:
                if size * dim * 4 > MEMORY / 2:  # the rows, and the index's own copy of them
                    rows += [extrapolated(r, size) for r in largest]
                    print("\n".join(line(r) for r in rows[-len(largest):]), flush=True)
                    continue
                prepare(folder, replicate_features(features, size, rng), replicate_features(features, n_queries, rng),
                        dim, binary=False)
                start = len(rows)
                run_rows([{"kind": "float", "width": dim, "size": size, "index": index, "settings": settings,
                           "latency_queries": latency_queries} for index, settings in float_indexes(size).items()],
                         folder, rows)
                largest = [r for r in rows[start:] if r["index"] == "faiss-flat-ip"]
    write(rows, notes, args)


def image_features(dim: int) -> np.ndarray:
    """The MIRFlickr-25K shape's label-driven image features of `dim` values (datamodules/scale.py)."""
    from datamodules.scale import SHAPES, make_scale

    return make_scale(SHAPES["mirflickr25k"], dim, 0).image.astype(np.float32)


def write(rows: list[dict], notes: list[str], args) -> None:
    import pandas as pd

    for path in (args.csv, args.markdown):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False)
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows, notes))
    flat = {r["width"]: r for r in rows if r["index"] == "faiss-flat" and r["size"] == max(x["size"] for x in rows)}
    suite = {r["width"]: r for r in rows if r["index"] == "suite" and r["size"] == max(x["size"] for x in rows)}
    print(f"{len(rows)} rows; at {max(r['size'] for r in rows):,} items, one query (all threads): "
          + ", ".join(f"{w} bits suite {suite[w]['p50_ms_all_threads']:.2f} ms, faiss flat "
                      f"{flat[w]['p50_ms_all_threads']:.2f} ms" for w in sorted(set(flat) & set(suite))))


if __name__ == "__main__":
    main()
