"""An independent, deliberately plain implementation of protocol.md, to check the fast evaluator against.

One query at a time: Hamming distances by counting unequal signs, a stable argsort, then the
definitions read literally. Slow, and only for small inputs.
"""

import itertools
import math

import numpy as np


def _signs(codes):
    return np.where(np.asarray(codes) >= 0, 1, -1)


def distances(query_codes, database_codes):
    q, d = _signs(query_codes), _signs(database_codes)
    return (q[:, None, :] != d[None, :, :]).sum(-1)


def relevance(query_labels, database_labels):
    return (np.asarray(query_labels, float) @ np.asarray(database_labels, float).T) > 0


def ranked_relevance(query_codes, query_labels, database_codes, database_labels):
    """Per query, relevance (0/1) of the database in stable (distance, position) order."""
    dist = distances(query_codes, database_codes)
    rel = relevance(query_labels, database_labels)
    return [rel[i][np.argsort(dist[i], kind="stable")].astype(int) for i in range(len(dist))]


def cosine_ranked_relevance(query, query_labels, database, database_labels):
    """Per query, relevance of the database in (descending float64 cosine, position) order."""
    q = np.asarray(query, np.float64)
    d = np.asarray(database, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)  # a zero row has similarity 0
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    rel = relevance(query_labels, database_labels)
    # math.fsum rounds each sum exactly once: identical rows get identical similarities, as the ranking needs.
    similarities = np.array([[math.fsum(a * b) for b in d] for a in q])
    return [rel[i][np.argsort(-similarities[i], kind="stable")].astype(int) for i in range(len(q))]


def average_precision(ranked: np.ndarray, k: int | None = None) -> float:
    """AP over the first k results divided by the relevant items inside them (0 when none)."""
    top = ranked if k is None else ranked[:k]
    hits = np.flatnonzero(top)
    if len(hits) == 0:
        return 0.0
    return float(np.mean([(n + 1) / (rank + 1) for n, rank in enumerate(hits)]))


def dcmh_average_precision(ranked: np.ndarray, k: int) -> float:
    """PyTorch DCMH lineage: mean precision at the first min(k, R) relevant items, wherever they rank."""
    hits = np.flatnonzero(ranked)
    total = min(k, len(hits))
    if total == 0:
        return 0.0
    return float(np.mean([(n + 1) / (hits[n] + 1) for n in range(total)]))


def tie_averaged_ap_bruteforce(dist: np.ndarray, rel: np.ndarray) -> float:
    """Mean AP over every ordering of the items inside each distance group (tiny inputs only)."""
    groups = [np.flatnonzero(dist == d) for d in np.unique(dist)]
    values = []
    for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
        values.append(average_precision(rel[np.concatenate(orders)].astype(int)))
    return float(np.mean(values))
