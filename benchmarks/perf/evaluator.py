"""Evaluator speed and memory at NUS-WIDE scale: 2,100 queries x 186,577 database items x 64 bits, 21 labels.

Both directions (I->T and T->I), every metric of the protocol. Codes are synthetic but label-driven
(a trained model's codes cluster by label), so rankings have realistic ties and relevance.

    python benchmarks/perf/evaluator.py [--baseline]

--baseline also times a straightforward per-query numpy loop (stable sort per query, mAP@all only).
"""

import argparse
import resource
import time

import numpy as np

from metrics import retrieval_metrics
from metrics.functional import pack_codes


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_codes(n_query: int, n_database: int, bits: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_query + n_database
    labels = (rng.random((n, classes)) < 0.08).astype(np.uint8)
    labels[np.arange(n), rng.integers(0, classes, n)] = 1
    prototypes = rng.standard_normal((classes, bits))
    signal = labels @ prototypes / np.sqrt(labels.sum(1, keepdims=True))
    image = np.sign(signal + 1.2 * rng.standard_normal((n, bits))).astype(np.float32)
    text = np.sign(signal + 1.2 * rng.standard_normal((n, bits))).astype(np.float32)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2100)
    parser.add_argument("--database", type=int, default=186577)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()

    qi, qt, ql, di, dt, dl = synthetic_codes(args.queries, args.database, args.bits, args.classes)
    retrieval_metrics(qi[:2], ql[:2], dt[:10], dl[:10])  # compile (or load the cached kernel) first
    rss_before = peak_rss_mb()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        i2t = retrieval_metrics(qi, ql, dt, dl)
        t2i = retrieval_metrics(qt, ql, di, dl)
        times.append(time.perf_counter() - start)
    print(f"{args.queries} queries x {args.database} database x {args.bits} bits, {args.classes} labels")
    print(f"both directions, all metrics: best {min(times):.3f} s, median {np.median(times):.3f} s "
          f"over {args.repeats} runs")
    print(f"peak RSS {peak_rss_mb():.0f} MB (before evaluation {rss_before:.0f} MB)")
    print(f"mAP@all I->T {i2t.map:.4f}  T->I {t2i.map:.4f}  (tie-averaged {i2t.map_tie:.4f} / {t2i.map_tie:.4f})")
    if args.baseline:
        start = time.perf_counter()
        reference = baseline_map(qi, ql, dt, dl)
        print(f"baseline per-query numpy loop, mAP@all I->T only: {time.perf_counter() - start:.2f} s "
              f"(mAP {reference:.6f}, difference {abs(reference - i2t.map):.1e})")


if __name__ == "__main__":
    main()
