"""The protocol's numbers on a 6-item database worked out by hand.

Query 0 has code ++++ and label A. Database (position: code, distance, relevant?):
  0: -+++  d1  yes      1: 0 +++ (0 -> +1)  d0  no     2: +-++  d1  yes
  3: --++  d2  yes      4: ++-+  d1  no                5: ----  d4  no
Stable ranking by (distance, position): 1, 0, 2, 4, 3, 5 -> relevance 0 1 1 0 1 0, R = 3.
  AP@all = (1/2 + 2/3 + 3/5) / 3 = 53/90
  mAP@3: top 3 = 0 1 1 -> (1/2 + 2/3) / 2 = 7/12;   mAP@1: top 1 irrelevant -> 0
  mAP@10 > database size -> capped at 6 -> 53/90
  dcmh_torch@2: first 2 relevant -> (1/2 + 2/3) / 2 = 7/12;   @1: 1/2
  tie-averaged: group d1 = {0, 2, 4} holds 2 relevant of 3 at ranks 2..4 after 1 item, 0 relevant:
    E = (2/3) [1/2 + (1 + 1/2)/3 + (1 + 1)/4] = 1 (orderings RRI, RIR, IRR give 7/6, 1, 5/6);
    group d2: (2 + 1)/(4 + 1) = 3/5.  -> (1 + 3/5) / 3 = 8/15
  precision@1 = 0, @3 = 2/3, @6 = 1/2
  radius 0..4: retrieved 1 4 5 5 6, relevant 0 2 3 3 3 -> precision 0 1/2 3/5 3/5 1/2, recall 0 2/3 1 1 1
Query 1 has label D, which no database item has: it counts 0 everywhere.
"""

import numpy as np
import pytest
import torch

from metrics import (
    CosineRetrieval,
    cosine_retrieval,
    hamming_distance,
    mean_average_precision,
    retrieval_metrics,
)

DATABASE = torch.tensor([[-1, 1, 1, 1], [0, 1, 1, 1], [1, -1, 1, 1], [-1, -1, 1, 1], [1, 1, -1, 1],
                         [-1, -1, -1, -1]], dtype=torch.float32)
A, B, C, D = np.eye(4, dtype=np.int64)
DATABASE_LABELS = torch.tensor(np.stack([A, B, A + B, A + C, C, B]))
QUERY = torch.ones(2, 4)
QUERY_LABELS = torch.tensor(np.stack([A, D]))


def metrics(variant="protocol", queries=slice(0, 1)):
    return retrieval_metrics(QUERY[queries], QUERY_LABELS[queries], DATABASE, DATABASE_LABELS,
                             map_ks=(1, 3, 10), precision_ks=(1, 3, 6), variant=variant)


def test_distances_map_zero_to_plus_one():
    assert hamming_distance(QUERY[:1], DATABASE).tolist() == [[1, 0, 1, 2, 1, 4]]


def test_map_with_stable_ties():
    result = metrics()
    assert result.map == pytest.approx(53 / 90)
    assert result.map_at == pytest.approx({1: 0.0, 3: 7 / 12, 10: 53 / 90})
    assert result.empty_queries == 0


def test_tie_averaged_map():
    assert metrics().map_tie == pytest.approx(8 / 15)


def test_precision_at_k_and_pr_curve():
    result = metrics()
    assert result.precision_at == pytest.approx({1: 0.0, 3: 2 / 3, 6: 0.5})
    np.testing.assert_allclose(result.pr_precision, [0, 1 / 2, 3 / 5, 3 / 5, 1 / 2])
    np.testing.assert_allclose(result.pr_recall, [0, 2 / 3, 1, 1, 1])


def test_query_without_relevant_item_counts_zero_and_is_counted():
    result = metrics(queries=slice(0, 2))
    assert result.empty_queries == 1
    assert result.map == pytest.approx(53 / 180)
    assert result.map_tie == pytest.approx(4 / 15)
    assert result.map_at[3] == pytest.approx(7 / 24)
    # PR: precision averages the queries that retrieve something (both do); recall those with R > 0.
    np.testing.assert_allclose(result.pr_recall, [0, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(result.pr_precision, [0, 1 / 4, 3 / 10, 3 / 10, 1 / 4])


def test_named_variants():
    assert metrics("skip_empty", slice(0, 2)).map == pytest.approx(53 / 90)
    dcmh = retrieval_metrics(QUERY, QUERY_LABELS, DATABASE, DATABASE_LABELS, map_ks=(1, 2, 3), precision_ks=(),
                             variant="dcmh_torch")
    assert dcmh.map_at == pytest.approx({1: 1 / 4, 2: 7 / 24, 3: 53 / 180})


def test_k_larger_than_database_is_capped():
    assert mean_average_precision(QUERY[:1], QUERY_LABELS[:1], DATABASE, DATABASE_LABELS, k=5000) == pytest.approx(53 / 90)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="code lengths differ"):
        retrieval_metrics(QUERY[:, :3], QUERY_LABELS, DATABASE, DATABASE_LABELS)
    with pytest.raises(ValueError, match="label rows"):
        retrieval_metrics(QUERY, QUERY_LABELS[:1], DATABASE, DATABASE_LABELS)
    with pytest.raises(ValueError, match="unknown mAP variant"):
        metrics("dcmh")


def test_cosine_map_by_hand():
    """Query (1, 0) with label A: database (1, 0) [B], (0, 1) [A], (2, 0) [A, B]. Cosines 1, 0, 1: the tie
    is broken by position, ranking irrelevant, relevant, relevant: AP = (1/2 + 2/3) / 2 = 7/12.
    A second query with label C has no relevant item and counts 0: mAP = 7/24."""
    database = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    database_labels = torch.tensor([[0, 1, 0], [1, 0, 0], [1, 1, 0]])
    query, query_labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1, 0, 0], [0, 0, 1]])
    assert cosine_retrieval(query[:1], query_labels[:1], database, database_labels).map == pytest.approx(7 / 12)
    result = cosine_retrieval(query, query_labels, database, database_labels, block_bytes=1)  # one query a block
    assert result.map == pytest.approx(7 / 24) and np.allclose(result.ap, [7 / 12, 0]) and result.empty_queries == 1
    # The Metric puts items back in index order and drops padded repeats, as HammingRetrieval does.
    metric = CosineRetrieval()
    metric.update(torch.tensor([2, 0]), database[[2, 0]], database_labels[[2, 0]], database=True)
    metric.update(torch.tensor([1, 2]), database[[1, 2]], database_labels[[1, 2]], database=True)
    metric.update(torch.tensor([0, 1, 0]), query[[0, 1, 0]], query_labels[[0, 1, 0]], database=False)
    assert metric.compute().map == pytest.approx(7 / 24)


def test_cosine_ranks_negative_similarities_below_positive_ones_by_hand():
    """Query (1, 0), label A. Cosines: (-1, 0) [A] -1; (-1, 1) [B] -0.71; (0, 1) [A] 0; (1, 1) [B] 0.71.
    Descending: B, A, B, A: relevant at ranks 2 and 4, AP = (1/2 + 2/4) / 2 = 1/2."""
    database = torch.tensor([[-1.0, 0.0], [-1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])
    assert cosine_retrieval(torch.tensor([[1.0, 0.0]]), torch.tensor([[1, 0]]), database, labels).map == pytest.approx(0.5)


def test_the_top_k_search_is_the_stable_ranking_cut_at_k():
    """metrics.kernels.hamming_top_k (a search by the suite's ranking, benchmarks/perf/retrieval.py): the
    ranking above, 1, 0, 2, 4, 3, 5 at distances 0 1 1 1 2 4, cut inside the d1 group and at its end."""
    from metrics.functional import pack_codes
    from metrics.kernels import hamming_top_k

    query, database = pack_codes(QUERY[:1]), pack_codes(DATABASE)
    for k, order, distances in ((2, [1, 0], [0, 1]), (4, [1, 0, 2, 4], [0, 1, 1, 1]),
                                (6, [1, 0, 2, 4, 3, 5], [0, 1, 1, 1, 2, 4])):
        found, at = hamming_top_k(query, database, 4, k)
        assert found.tolist() == [order] and at.tolist() == [distances], k


def test_hash_lookup_by_hand():
    """Queries ++++ and ---+, both label A. Query 1's distances to the database: 2 3 2 1 2 1.
    Radius 0: query 0 retrieves item 1 (not relevant), query 1 nothing -> precision 0 over query 0, half empty.
    Radius 1: {1, 0, 2, 4} holds 0 and 2 -> 1/2; {3, 5} holds 3 -> 1/2: precision 1/2, none empty.
    Radius 2: {0, 1, 2, 3, 4} holds 0, 2, 3 -> 3/5; {0, 2, 3, 4, 5} holds 0, 2, 3 -> 3/5."""
    from benchmarks.execution.pipeline import scores_of

    query = torch.tensor([[1.0, 1, 1, 1], [-1, -1, -1, 1]])
    result = retrieval_metrics(query, torch.tensor(np.stack([A, A])), DATABASE, DATABASE_LABELS)
    assert result.pr_precision[:3].tolist() == pytest.approx([0, 1 / 2, 3 / 5])
    assert result.pr_empty[:3].tolist() == pytest.approx([1 / 2, 0, 0])
    scores = scores_of("hamming", "i2t", result)
    assert scores.lookup(0) == (0.0, 0.5) and scores.lookup(2) == pytest.approx((3 / 5, 0))
    assert np.isnan(scores.lookup(9)).all()  # beyond the code length: not held
