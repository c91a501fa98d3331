"""Evaluator speed and memory at NUS-WIDE scale: 2,100 queries x 186,577 database items, 21 labels.

Hamming: 64-bit codes, both directions (I->T and T->I), every metric of the protocol. Cosine (the
real-valued mAP@all): 1,024-d features, both directions. Codes and features are synthetic but
label-driven (a trained model's outputs cluster by label), so rankings have realistic ties and relevance.

    python benchmarks/perf/evaluator.py [--baseline]

--baseline also times straightforward per-query numpy loops (Hamming: XOR + popcount and a stable sort
per query; cosine: a float64 product and a stable sort per query; mAP@all of one direction), the cosine
loop on the first --baseline_queries queries, extrapolated.
"""

import argparse
import resource
import time

import numpy as np

from metrics import cosine_retrieval, retrieval_metrics
from metrics.functional import pack_codes


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n_query: int, n_database: int, dim: int, classes: int, binary: bool, seed: int = 0):
    """(query image, query text, query labels, database image, database text, database labels): label-driven
    codes (signs, `binary`) or real-valued features of `dim` values."""
    rng = np.random.default_rng(seed)
    n = n_query + n_database
    labels = (rng.random((n, classes)) < 0.08).astype(np.uint8)
    labels[np.arange(n), rng.integers(0, classes, n)] = 1
    prototypes = rng.standard_normal((classes, dim)).astype(np.float32)
    signal = labels @ prototypes / np.sqrt(labels.sum(1, keepdims=True)).astype(np.float32)
    modalities = []
    for _ in range(2):
        x = signal + (1.2 if binary else 3.0) * rng.standard_normal((n, dim), dtype=np.float32)
        modalities.append(np.sign(x) if binary else x)
    image, text = modalities
    return image[:n_query], text[:n_query], labels[:n_query], image[n_query:], text[n_query:], labels[n_query:]


def baseline_map(query_codes, query_labels, database_codes, database_labels) -> float:
    """The straightforward way: per query, XOR + popcount distances, a stable sort, AP by cumsum."""
    q, d = pack_codes(query_codes), pack_codes(database_codes)
    aps = []
    for i in range(len(q)):
        dist = np.bitwise_count(q[i] ^ d).sum(1)
        rel = (database_labels @ query_labels[i]) > 0
        ranked = rel[np.argsort(dist, kind="stable")]
        hits = np.flatnonzero(ranked)
        aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)) if len(hits) else 0.0)
    return float(np.mean(aps))


def baseline_cosine_map(query, query_labels, database, database_labels) -> float:
    """The straightforward way: per query, float64 cosines, a stable sort, AP by cumsum."""
    d = database.astype(np.float64)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    aps = []
    for i in range(len(query)):
        q = query[i].astype(np.float64)
        rel = (database_labels @ query_labels[i]) > 0
        ranked = rel[np.argsort(-(d @ (q / np.linalg.norm(q))), kind="stable")]
        hits = np.flatnonzero(ranked)
        aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)) if len(hits) else 0.0)
    return float(np.mean(aps))


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2100)
    parser.add_argument("--database", type=int, default=186577)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--dim", type=int, default=1024, help="feature width of the cosine evaluation")
    parser.add_argument("--baseline_queries", type=int, default=50)
    args = parser.parse_args()

    print(f"{args.queries} queries x {args.database} database, {args.classes} labels")
    hamming(args)
    cosine(args)


def hamming(args) -> None:
    measure(args, f"Hamming, {args.bits} bits, both directions, all metrics", retrieval_metrics, baseline_map,
            synthetic(args.queries, args.database, args.bits, args.classes, binary=True), args.queries)


def cosine(args) -> None:
    measure(args, f"cosine, {args.dim}-d float32 features, both directions", cosine_retrieval, baseline_cosine_map,
            synthetic(args.queries, args.database, args.dim, args.classes, binary=False), args.baseline_queries)


def measure(args, name: str, evaluate, baseline, problem, baseline_queries: int) -> None:
    """Time `evaluate` on both directions of `problem`; with --baseline, the plain loop on the first
    `baseline_queries` queries of I->T, extrapolated to all of them."""
    qi, qt, ql, di, dt, dl = problem
    evaluate(qi[:2], ql[:2], dt[:10], dl[:10])  # compile (or load the cached kernels) first
    rss_before = peak_rss_mb()
    (i2t, t2i), times = timed(lambda: (evaluate(qi, ql, dt, dl), evaluate(qt, ql, di, dl)), args.repeats)
    print(f"{name}: best {min(times):.2f} s, median {np.median(times):.2f} s over {args.repeats} runs; "
          f"mAP@all I->T {i2t.map:.4f} T->I {t2i.map:.4f}")
    print(f"  peak RSS {peak_rss_mb():.0f} MB (before evaluation {rss_before:.0f} MB, with the inputs)")
    if args.baseline:
        n = min(baseline_queries, len(qi))
        start = time.perf_counter()
        reference = baseline(qi[:n], ql[:n], dt, dl)
        elapsed = (time.perf_counter() - start) * len(qi) / n
        print(f"  baseline per-query numpy loop, I->T: {elapsed:.1f} s" + (" (extrapolated)" if n < len(qi) else "")
              + f"; mAP {reference:.6f} vs {np.mean(i2t.ap[:n]):.6f}, difference "
              f"{abs(reference - np.mean(i2t.ap[:n])):.1e}")


if __name__ == "__main__":
    main()
