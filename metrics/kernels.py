"""Compiled ranking kernels: XOR + popcount distances and one stable counting pass per query.

Ranking by (Hamming distance, database position) is a counting sort, so no query is ever sorted.
Pass 1 walks the database in position order, computing distances and relevance, the per-distance
histograms, and each relevant item's slot in its distance group. An item's rank is then (items at
smaller distances) + slot + 1, so pass 2 visits only the relevant items. Every metric of the
protocol falls out of these two passes.
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, word):
    """LLVM's ctpop: one POPCNT instruction on x86-64."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@njit(inline="always")
def _hamming(a, b):
    d = 0
    for w in range(a.shape[0]):
        d += _popcount(a[w] ^ b[w])
    return d


@njit(inline="always")
def _shares_label(a, b):
    common = np.uint64(0)
    for w in range(a.shape[0]):
        common |= a[w] & b[w]
    return common != 0


@njit(parallel=True, cache=True)
def hamming_matrix(query, database):
    """All Hamming distances between packed code rows (uint64 words)."""
    out = np.empty((query.shape[0], database.shape[0]), np.int64)
    for i in prange(query.shape[0]):
        for j in range(database.shape[0]):
            out[i, j] = _hamming(query[i], database[j])
    return out


@njit(parallel=True, cache=True)
def hamming_top_k(query, database, nbits, k):
    """The first k items of each query's stable Hamming ranking (distance, then database position): what a
    search by the suite's ranking returns. One counting pass finds the distance that holds the k-th item, a
    second collects the items in ranking order; no query is sorted.

    Returns (indices, distances), each (queries, k); k must not exceed the database size."""
    nq, n = query.shape[0], database.shape[0]
    indices = np.empty((nq, k), np.int64)
    distances = np.empty((nq, k), np.int64)
    for i in prange(nq):
        hist = np.zeros(nbits + 2, np.int64)
        dist = np.empty(n, np.uint8)  # codes of at most 255 bits
        for j in range(n):
            d = _hamming(query[i], database[j])
            dist[j] = d
            hist[d + 1] += 1
        for g in range(1, nbits + 2):  # hist[g] becomes the count of items at distances below g
            hist[g] += hist[g - 1]
        last = 0
        while hist[last + 1] < k:  # the distance group that holds the k-th item
            last += 1
        for j in range(n):
            d = dist[j]
            if d <= last:
                slot = hist[d]
                if slot < k:
                    indices[i, slot] = j
                    distances[i, slot] = d
                hist[d] = slot + 1
    return indices, distances


@njit(parallel=True, cache=True)
def rank_statistics(query, query_labels, database, database_labels, nbits, cutoffs, harmonic):
    """Per-query statistics of the stable Hamming ranking.

    cutoffs: increasing ranks K in [1, database size]. harmonic[n] = 1 + 1/2 + ... + 1/n.
    Returns per query: AP@all (stable ties), tie-averaged AP@all, relevant count R, and per cutoff K
    the relevant count in the top K, the sum of precisions of the relevant items in the top K, and the
    sum of precisions of the first min(K, R) relevant items (the dcmh_torch variant); plus the number of
    all and of relevant items within each Hamming radius 0..nbits.
    """
    nq, n, nk, ng = query.shape[0], database.shape[0], cutoffs.shape[0], nbits + 1
    ap = np.zeros(nq)
    ap_tie = np.zeros(nq)
    n_rel = np.zeros(nq, np.int64)
    rel_in_top = np.zeros((nq, nk), np.int64)
    precision_sum_top = np.zeros((nq, nk))
    precision_sum_first_rel = np.zeros((nq, nk))
    within_radius = np.zeros((nq, ng), np.int64)
    rel_within_radius = np.zeros((nq, ng), np.int64)
    for i in prange(nq):
        # Pass 1, in database order: an item's slot in its distance group is the count of that group
        # so far. Relevant items are written down branch-free (the slot is overwritten unless relevant).
        hist = np.zeros(ng, np.int64)
        hist_rel = np.zeros(ng, np.int64)
        rel_dist = np.empty(n + 1, np.uint16)
        rel_slot = np.empty(n + 1, np.int32)  # slot among all items of its group (compact: fits in cache)
        count = 0
        for j in range(n):
            d = _hamming(query[i], database[j])
            relevant = _shares_label(query_labels[i], database_labels[j])
            rel_dist[count] = d
            rel_slot[count] = hist[d]
            hist[d] += 1
            hist_rel[d] += relevant
            count += relevant
        before = np.zeros(ng, np.int64)  # items at a smaller distance
        before_rel = np.zeros(ng, np.int64)
        for g in range(1, ng):
            before[g] = before[g - 1] + hist[g - 1]
            before_rel[g] = before_rel[g - 1] + hist_rel[g - 1]
        for g in range(ng):
            within_radius[i, g] = before[g] + hist[g]
            rel_within_radius[i, g] = before_rel[g] + hist_rel[g]
        total_rel = before_rel[ng - 1] + hist_rel[ng - 1]
        n_rel[i] = total_rel
        if total_rel == 0:
            continue

        # Tie-averaged AP in closed form: a relevant item at slot t of a group of size m holding r
        # relevant items expects 1 + (t-1)(r-1)/(m-1) relevant items up to and including itself.
        tie = 0.0
        for g in range(ng):
            m, r = hist[g], hist_rel[g]
            if r == 0:
                continue
            s1 = harmonic[before[g] + m] - harmonic[before[g]]  # sum_t 1/(before+t)
            if m == 1:
                tie += (before_rel[g] + 1) * s1
            else:
                s2 = m - (before[g] + 1) * s1  # sum_t (t-1)/(before+t)
                tie += r / m * ((before_rel[g] + 1) * s1 + (r - 1) / (m - 1) * s2)
        ap_tie[i] = tie / total_rel

        # Each cutoff cuts one distance group: the first `take` items (or relevant items) of it count.
        cut_group = np.empty(nk, np.int64)
        cut_take = np.empty(nk, np.int64)
        rel_cut_group = np.empty(nk, np.int64)
        rel_cut_take = np.empty(nk, np.int64)
        has_cut = np.zeros(ng, np.bool_)
        for c in range(nk):
            k = cutoffs[c]
            g = 0
            while before[g] + hist[g] < k:
                g += 1
            cut_group[c], cut_take[c] = g, k - before[g]
            kr = min(k, total_rel)
            g = 0
            while before_rel[g] + hist_rel[g] < kr:
                g += 1
            rel_cut_group[c], rel_cut_take[c] = g, kr - before_rel[g]
            has_cut[cut_group[c]] = True
            has_cut[rel_cut_group[c]] = True

        group_precision = np.zeros(ng)
        partial_precision = np.zeros(nk)
        partial_rel = np.zeros(nk, np.int64)
        partial_first_rel = np.zeros(nk)
        seen_rel = np.zeros(ng, np.int64)
        for j in range(total_rel):  # pass 2: the relevant items only, still in database order
            d, t = rel_dist[j], rel_slot[j]
            r = seen_rel[d]  # slot among the group's relevant items
            seen_rel[d] = r + 1
            p = (before_rel[d] + r + 1) / (before[d] + t + 1)
            group_precision[d] += p
            if has_cut[d]:
                for c in range(nk):
                    if cut_group[c] == d and t < cut_take[c]:
                        partial_precision[c] += p
                        partial_rel[c] += 1
                    if rel_cut_group[c] == d and r < rel_cut_take[c]:
                        partial_first_rel[c] += p
        precision_before = np.zeros(ng)
        for g in range(1, ng):
            precision_before[g] = precision_before[g - 1] + group_precision[g - 1]
        ap[i] = (precision_before[ng - 1] + group_precision[ng - 1]) / total_rel
        for c in range(nk):
            rel_in_top[i, c] = before_rel[cut_group[c]] + partial_rel[c]
            precision_sum_top[i, c] = precision_before[cut_group[c]] + partial_precision[c]
            precision_sum_first_rel[i, c] = precision_before[rel_cut_group[c]] + partial_first_rel[c]
    return (ap, ap_tie, n_rel, rel_in_top, precision_sum_top, precision_sum_first_rel,
            within_radius, rel_within_radius)


@njit(inline="always")
def _radix_pass(keys, index, keys_out, index_out, shift, width):
    """One stable counting-sort pass of (key, index) pairs on the `width` bits of the key above `shift`."""
    buckets = 1 << width
    mask = np.uint32(buckets - 1)
    counts = np.zeros(buckets + 1, np.int64)
    for j in range(keys.shape[0]):
        counts[((keys[j] >> shift) & mask) + 1] += 1
    for b in range(buckets):
        counts[b + 1] += counts[b]
    for j in range(keys.shape[0]):
        b = (keys[j] >> shift) & mask
        keys_out[counts[b]] = keys[j]
        index_out[counts[b]] = index[j]
        counts[b] += 1


@njit(parallel=True, cache=True)
def similarity_average_precision(similarities, columns, query_labels, database_labels):
    """AP@all of each query's row of `similarities` (float32, queries x distinct database rows; database item j
    has the similarity in column columns[j]): the database ranked by descending similarity, ties by database
    position. A stable LSD radix sort (three passes of 11, 11 and 10 bits) of an order-preserving integer form
    of each similarity, then one walk down the ranking.
    Returns (AP per query, relevant count per query)."""
    nq, n = similarities.shape[0], columns.shape[0]
    ap = np.zeros(nq)
    n_rel = np.zeros(nq, np.int64)
    for i in prange(nq):
        raw = similarities[i].view(np.uint32)
        keys = np.empty(n, np.uint32)
        index = np.empty(n, np.int32)
        relevant = np.empty(n, np.bool_)
        for j in range(n):
            bits = raw[columns[j]]
            if bits == np.uint32(0x80000000):  # -0.0 ranks as +0.0
                bits = np.uint32(0)
            # Descending order as ascending unsigned integers: positives (sign bit clear) come first,
            # larger first; negatives after them, nearer zero first.
            keys[j] = bits if bits & np.uint32(0x80000000) else bits ^ np.uint32(0x7FFFFFFF)
            index[j] = j
            relevant[j] = _shares_label(query_labels[i], database_labels[j])
        keys_tmp = np.empty(n, np.uint32)
        index_tmp = np.empty(n, np.int32)
        _radix_pass(keys, index, keys_tmp, index_tmp, 0, 11)
        _radix_pass(keys_tmp, index_tmp, keys, index, 11, 11)
        _radix_pass(keys, index, keys_tmp, index_tmp, 22, 10)
        hits = 0
        total = 0.0
        for r in range(n):
            if relevant[index_tmp[r]]:
                hits += 1
                total += hits / (r + 1)
        n_rel[i] = hits
        if hits:
            ap[i] = total / hits
    return ap, n_rel
