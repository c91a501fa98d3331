"""The evaluation protocol (docs/protocol.md) as pure functions on codes and labels.

Codes are continuous or binary, (n, bits); they are binarized by sign with 0 mapped to +1. Labels are
multi-hot (n, classes); a database item is relevant to a query when they share at least one label.
The database is ranked by ascending Hamming distance, ties broken by database position.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from metrics.kernels import hamming_matrix, rank_statistics, similarity_average_precision

MAP_KS = (50, 1000, 5000)
PRECISION_KS = (1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
VARIANTS = ("protocol", "skip_empty", "dcmh_torch")


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def binarize(codes) -> np.ndarray:
    """Bits of sign(codes) as booleans, with 0 mapped to +1 (True).

    Args:
        codes: continuous or +-1 codes, (n, bits), a NumPy array or a tensor.

    Returns:
        A boolean array (n, bits).

    Example:
        >>> binarize(np.array([[0.3, -2.0, 0.0]])).tolist()
        [[True, False, True]]
    """
    return _numpy(codes) >= 0


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Boolean rows (n, b) -> uint64 words (n, ceil(b / 64)); padding bits are 0 on every row."""
    n, b = bits.shape
    padded = np.zeros((n, -(-max(b, 1) // 64) * 64), np.uint8)
    padded[:, :b] = bits
    return np.packbits(padded, axis=1, bitorder="little").view(np.uint64)


def pack_codes(codes) -> np.ndarray:
    """The signs of codes (n, bits) packed into uint64 words (n, ceil(bits / 64)), as the kernels read them."""
    return pack_bits(binarize(codes))


def pack_labels(labels) -> np.ndarray:
    """Multi-hot labels (n, classes) packed into uint64 words: two items share a label when their words AND."""
    return pack_bits(_numpy(labels) > 0)


def hamming_distance(query_codes, database_codes, method: str = "packed") -> torch.Tensor:
    """Hamming distances between the signs of two sets of codes.

    Args:
        query_codes: (n_query, bits) continuous or binary codes.
        database_codes: (n_database, bits).
        method: `packed` (XOR + popcount of packed words) or `matmul` ((bits - q.d) / 2 of +-1 codes); they agree.

    Returns:
        An int64 tensor (n_query, n_database).

    Raises:
        ValueError: an unknown method.

    Example:
        >>> hamming_distance(np.array([[1.0, 1.0]]), np.array([[1.0, -1.0], [-1.0, -1.0]])).tolist()
        [[1, 2]]
    """
    if method == "packed":
        return torch.from_numpy(hamming_matrix(pack_codes(query_codes), pack_codes(database_codes)))
    if method == "matmul":
        q = torch.from_numpy(binarize(query_codes)).double() * 2 - 1
        d = torch.from_numpy(binarize(database_codes)).double() * 2 - 1
        return ((q.shape[1] - q @ d.T) / 2).round().long()
    raise ValueError(f"unknown Hamming method {method!r}; expected 'packed' or 'matmul'")


@dataclass  # not frozen: torchmetrics walks (and rebuilds) what compute() returns
class RetrievalResult:
    """All numbers of one retrieval direction; per-query arrays are kept for curves and tests."""

    map: float  # mAP@all, stable ties (the suite's headline number)
    map_tie: float  # tie-averaged mAP@all
    map_at: dict[int, float]  # mAP@K for the requested K (keys as requested, K capped at the database)
    precision_at: dict[int, float]  # precision@K curve
    pr_radius: np.ndarray = field(repr=False)  # Hamming radius 0..bits
    pr_precision: np.ndarray = field(repr=False)
    pr_recall: np.ndarray = field(repr=False)
    pr_empty: np.ndarray = field(repr=False, default=None)  # share of queries with no item within each radius
    empty_queries: int = 0  # queries with no relevant database item (each counts 0)
    ap: np.ndarray = field(repr=False, default=None)  # per-query AP@all
    distinct_codes: int = 0  # distinct codes over the database (a handful means collapsed codes)
    chance: float = 0.0  # the mAP of a random ranking, about the mean fraction of relevant database items

    def scalars(self, suffix: str = "") -> dict[str, float]:
        """Flat metric names for loggers: map, map@K, map_tie, empty_queries, distinct_codes, each with `suffix`."""
        out = {f"map{suffix}": self.map, f"map_tie{suffix}": self.map_tie}
        out.update({f"map@{k}{suffix}": v for k, v in self.map_at.items()})
        out[f"empty_queries{suffix}"] = float(self.empty_queries)
        out[f"distinct_codes{suffix}"] = float(self.distinct_codes)
        return out


def _harmonic(n: int) -> np.ndarray:
    h = np.zeros(n + 1)
    np.cumsum(1.0 / np.arange(1, n + 1), out=h[1:])
    return h


def _check(query_codes, query_labels, database_codes, database_labels):
    for name, codes, labels in (("query", query_codes, query_labels), ("database", database_codes, database_labels)):
        if codes.ndim != 2 or labels.ndim != 2:
            raise ValueError(f"{name} codes and labels must be 2-D, got {codes.shape} and {labels.shape}")
        if codes.shape[0] != labels.shape[0]:
            raise ValueError(f"{name}: {codes.shape[0]} codes but {labels.shape[0]} label rows")
    if query_codes.shape[1] != database_codes.shape[1]:
        raise ValueError(f"code lengths differ: query {query_codes.shape[1]}, database {database_codes.shape[1]}")
    if query_labels.shape[1] != database_labels.shape[1]:
        raise ValueError(f"label counts differ: query {query_labels.shape[1]}, database {database_labels.shape[1]}")
    if database_codes.shape[0] == 0:
        raise ValueError("the database is empty")


def retrieval_metrics(query_codes, query_labels, database_codes, database_labels, *,
                      map_ks=MAP_KS, precision_ks=PRECISION_KS, variant: str = "protocol") -> RetrievalResult:
    """Every metric of the protocol (docs/protocol.md) for one direction: queries of one modality ranked against
    the database of the other by Hamming distance, ties by database position.

    Args:
        query_codes: (n_query, bits) continuous or binary codes; binarised by sign, 0 to +1.
        query_labels: (n_query, classes) multi-hot labels.
        database_codes: (n_database, bits), in database order (which breaks ties).
        database_labels: (n_database, classes).
        map_ks: the K of mAP@K (capped at the database size).
        precision_ks: the K of the precision@K curve.
        variant: `protocol` (the default definition), `skip_empty` (queries without relevant items are
            dropped from the means) or `dcmh_torch` (mAP@K as in the PyTorch DCMH lineage: mean precision at
            the first min(K, R) relevant items, wherever they rank). Only the mAP numbers depend on it.

    Returns:
        A RetrievalResult: mAP@all, tie-averaged mAP@all, mAP@K, precision@K, precision-recall over Hamming
        radius (hash lookup: precision over the queries that retrieve something within the radius, and the
        share that retrieve nothing), empty queries, per-query AP, distinct database codes and chance.

    Raises:
        ValueError: shapes that do not fit, an empty database or an unknown variant.

    Example:
        >>> labels = np.array([[1, 0], [0, 1], [1, 0]])
        >>> database = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
        >>> result = retrieval_metrics(np.array([[1.0, 1.0]]), labels[:1], database, labels, map_ks=(2,))
        >>> result.map, result.map_at[2]
        (1.0, 1.0)
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown mAP variant {variant!r}; expected one of {VARIANTS}")
    qc, dc = _numpy(query_codes), _numpy(database_codes)
    ql, dl = _numpy(query_labels), _numpy(database_labels)
    _check(qc, ql, dc, dl)
    n, bits = dc.shape[0], dc.shape[1]
    requested = sorted(set(map_ks) | set(precision_ks))
    cutoffs = np.unique(np.clip(np.asarray(requested, np.int64), 1, n))
    packed_database = pack_codes(dc)
    (ap, ap_tie, n_rel, rel_in_top, precision_sum_top, precision_sum_first_rel,
     within_radius, rel_within_radius) = rank_statistics(
        pack_codes(qc), pack_labels(ql), packed_database, pack_labels(dl), bits, cutoffs, _harmonic(n))
    column = {k: int(np.searchsorted(cutoffs, min(k, n))) for k in requested}
    has_rel = n_rel > 0

    def mean(values):
        return float(values[has_rel].mean()) if variant == "skip_empty" and has_rel.any() else float(values.mean())

    def map_at(k):
        c = column[k]
        if variant == "dcmh_torch":
            return mean(precision_sum_first_rel[:, c] / np.maximum(np.minimum(cutoffs[c], n_rel), 1))
        return mean(precision_sum_top[:, c] / np.maximum(rel_in_top[:, c], 1))

    # Precision within a radius is defined only for queries that retrieve something there.
    retrieved = within_radius > 0
    pr_precision = (rel_within_radius / np.maximum(within_radius, 1)).sum(0) / np.maximum(retrieved.sum(0), 1)
    pr_recall = (rel_within_radius[has_rel] / n_rel[has_rel, None]).mean(0) if has_rel.any() else np.zeros(bits + 1)
    return RetrievalResult(
        map=mean(ap), map_tie=mean(ap_tie),
        map_at={k: map_at(k) for k in map_ks},
        precision_at={k: float((rel_in_top[:, column[k]] / cutoffs[column[k]]).mean()) for k in precision_ks},
        pr_radius=np.arange(bits + 1), pr_precision=pr_precision, pr_recall=pr_recall, pr_empty=1 - retrieved.mean(0),
        empty_queries=int((~has_rel).sum()), ap=ap, distinct_codes=distinct_rows(packed_database),
        chance=float((n_rel / n).mean()))


def distinct_rows(packed: np.ndarray) -> int:
    """The number of distinct rows of packed codes (each row viewed as one opaque value: a fast unique).

    Args:
        packed: codes as pack_codes gives them.

    Returns:
        How many different codes there are (a handful over a database means collapsed codes).
    """
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.dtype.itemsize * packed.shape[1])))
    return len(np.unique(rows))


def _inverse_norms(x: np.ndarray, block: int = 65536) -> np.ndarray:
    """1 / the Euclidean norm of each row, summed in float64 block by block (a zero row gets 1e12)."""
    norms = np.concatenate([np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64))
                            for b in (x[i:i + block] for i in range(0, max(len(x), 1), block))])
    return (1 / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class CosineResult:
    """mAP@all of real-valued features ranked by cosine similarity, with the per-query AP."""

    map: float
    ap: np.ndarray = field(repr=False)
    empty_queries: int = 0


def cosine_retrieval(query, query_labels, database, database_labels, block_bytes: int = 256 << 20) -> CosineResult:
    """mAP@all of real-valued features ranked by descending cosine similarity, ties by database position
    (docs/protocol.md: the additional number a real-valued method may report, labelled as such).

    Args:
        query: (n_query, d) features.
        query_labels: (n_query, classes) multi-hot labels.
        database: (n_database, d) features, in database order.
        database_labels: (n_database, classes).
        block_bytes: memory of one block of similarities (speed and memory only).

    Returns:
        A CosineResult: mAP@all, per-query AP and empty queries.

    Similarities are float32 matrix products scaled by the rows' inverse norms (summed in float64), one
    block of queries at a time (`block_bytes` of similarities, whatever the number of queries); each
    query's ranking is a stable radix sort of them (metrics.kernels.similarity_average_precision).
    Identical database rows get one similarity, computed once: a matrix product may sum different rows in
    different orders (BLAS kernels do), which would break the tie between duplicates that the ranking
    defines. Items whose float64 similarities differ by less than float32 resolution (about 1e-7) rank as
    their float32 values do; the mAP equals a float64 per-query loop's to 1e-6 (tested).
    """
    q, d = np.ascontiguousarray(_numpy(query), np.float32), np.ascontiguousarray(_numpy(database), np.float32)
    ql, dl = _numpy(query_labels), _numpy(database_labels)
    _check(q, ql, d, dl)
    rows, columns = np.unique(d.view(np.dtype((np.void, 4 * d.shape[1]))).ravel(), return_inverse=True)
    distinct = rows.view(np.float32).reshape(len(rows), d.shape[1])
    inverse_query, inverse_database = _inverse_norms(q), _inverse_norms(distinct)
    packed_query, packed_database = pack_labels(ql), pack_labels(dl)
    block = max(1, block_bytes // (4 * len(distinct)))
    ap, n_rel = np.zeros(len(q)), np.zeros(len(q), np.int64)
    for start in range(0, len(q), block):
        stop = start + block
        similarities = (q[start:stop] * inverse_query[start:stop, None]) @ distinct.T
        similarities *= inverse_database  # normalising after the product spares a copy of the database
        ap[start:stop], n_rel[start:stop] = similarity_average_precision(
            similarities, columns.astype(np.int64, copy=False), packed_query[start:stop], packed_database)
    return CosineResult(map=float(ap.mean()), ap=ap, empty_queries=int((n_rel == 0).sum()))


def mean_average_precision(query_codes, query_labels, database_codes, database_labels, k: int | None = None,
                           variant: str = "protocol") -> float:
    """mAP@all (k=None) or mAP@k of one direction.

    Args:
        query_codes, query_labels, database_codes, database_labels: as retrieval_metrics takes them.
        k: None for mAP@all, else the K of mAP@K.
        variant: as retrieval_metrics takes it.

    Returns:
        The mean average precision.
    """
    ks = () if k is None else (k,)
    result = retrieval_metrics(query_codes, query_labels, database_codes, database_labels,
                               map_ks=ks, precision_ks=(), variant=variant)
    return result.map if k is None else result.map_at[k]
