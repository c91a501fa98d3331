"""The fast evaluator against the plain reference (tests/reference.py), torchmetrics, and itself."""

import numpy as np
import pytest
import torch
from torchmetrics.retrieval import RetrievalMAP

from metrics import HammingRetrieval, cosine_retrieval, hamming_distance, retrieval_metrics

import reference


def random_problem(seed, n_query=40, n_database=300, bits=16, classes=6, density=0.25):
    g = torch.Generator().manual_seed(seed)
    labels = lambda n: (torch.rand(n, classes, generator=g) < density).long()  # noqa: E731
    return (torch.randn(n_query, bits, generator=g), labels(n_query),
            torch.randn(n_database, bits, generator=g), labels(n_database))


@pytest.mark.parametrize("seed,dim", [(0, 8), (1, 64), (2, 1024)])
def test_cosine_equals_a_float64_per_query_loop(seed, dim):
    """Including exact ties: repeated database rows (as NUS-WIDE's duplicate images give) and a zero row."""
    q, ql, d, dl = random_problem(seed, n_query=30, n_database=400, bits=dim)
    d[200:260] = d[:60]  # duplicates: equal similarities, ranked by position
    d[300] = 0
    ranked = reference.cosine_ranked_relevance(q.numpy(), ql.numpy(), d.numpy(), dl.numpy())
    expected = [reference.average_precision(r) for r in ranked]
    for block_bytes in (1, 4 * 400 * 7, 1 << 20):  # one query per block, 7 per block, all at once
        result = cosine_retrieval(q, ql, d, dl, block_bytes=block_bytes)
        np.testing.assert_allclose(result.ap, expected, atol=1e-6)
        assert result.map == pytest.approx(np.mean(expected), abs=1e-6)


@pytest.mark.parametrize("seed,bits", [(0, 8), (1, 16), (2, 64), (3, 70), (4, 128)])
def test_packed_and_matmul_distances_are_identical(seed, bits):
    q, _, d, _ = random_problem(seed, bits=bits)
    packed, matmul = hamming_distance(q, d, "packed"), hamming_distance(q, d, "matmul")
    assert torch.equal(packed, matmul)
    assert torch.equal(packed, torch.from_numpy(reference.distances(q.numpy(), d.numpy())))


@pytest.mark.parametrize("seed,bits", [(0, 4), (1, 8), (2, 16), (3, 32), (4, 64)])
def test_equals_reference(seed, bits):
    q, ql, d, dl = random_problem(seed, bits=bits)
    ranked = reference.ranked_relevance(q.numpy(), ql.numpy(), d.numpy(), dl.numpy())
    ks = (1, 10, 50, 299, 1000)
    result = retrieval_metrics(q, ql, d, dl, map_ks=ks, precision_ks=ks)
    assert result.map == pytest.approx(np.mean([reference.average_precision(r) for r in ranked]), abs=1e-6)
    np.testing.assert_allclose(result.ap, [reference.average_precision(r) for r in ranked], atol=1e-6)
    for k in ks:
        assert result.map_at[k] == pytest.approx(np.mean([reference.average_precision(r, k) for r in ranked]), abs=1e-6)
        assert result.precision_at[k] == pytest.approx(np.mean([r[:k].sum() / min(k, len(r)) for r in ranked]), abs=1e-6)
    assert result.empty_queries == sum(r.sum() == 0 for r in ranked)
    dcmh = retrieval_metrics(q, ql, d, dl, map_ks=ks, precision_ks=(), variant="dcmh_torch")
    for k in ks:
        assert dcmh.map_at[k] == pytest.approx(np.mean([reference.dcmh_average_precision(r, k) for r in ranked]), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_tie_averaged_map_equals_the_mean_over_all_orderings(seed):
    q, ql, d, dl = random_problem(seed, n_query=3, n_database=8, bits=2, classes=3, density=0.4)
    dist = reference.distances(q.numpy(), d.numpy())
    rel = reference.relevance(ql.numpy(), dl.numpy())
    expected = np.mean([reference.tie_averaged_ap_bruteforce(dist[i], rel[i]) for i in range(3)])
    assert retrieval_metrics(q, ql, d, dl).map_tie == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("top_k", [None, 20])
def test_agrees_with_torchmetrics_retrieval_map(top_k):
    q, ql, d, dl = random_problem(5, n_query=25, n_database=120, bits=12)
    bits, n = q.shape[1], len(d)
    dist = hamming_distance(q, d).double()
    # torchmetrics orders ties arbitrarily, so the score carries the stable order: bits + 1 - distance,
    # minus a position term smaller than one distance step.
    score = bits + 1 - dist - torch.arange(n, dtype=torch.float64) / (2 * n)
    target = torch.from_numpy(reference.relevance(ql.numpy(), dl.numpy()))
    tm = RetrievalMAP(top_k=top_k, empty_target_action="neg")(
        score.flatten(), target.flatten(), indexes=torch.arange(len(q)).repeat_interleave(n))
    ours = retrieval_metrics(q, ql, d, dl, map_ks=(top_k,) if top_k else (), precision_ks=())
    assert (ours.map_at[top_k] if top_k else ours.map) == pytest.approx(tm.item(), abs=1e-6)


def test_deterministic():
    problem = random_problem(6, n_query=50, n_database=2000, bits=32)
    first, second = retrieval_metrics(*problem), retrieval_metrics(*problem)
    assert first.map == second.map and first.map_at == second.map_at and first.map_tie == second.map_tie


def test_metric_accumulates_drops_duplicate_indices_and_restores_order():
    q, ql, d, dl = random_problem(7, n_query=30, n_database=200)
    expected = retrieval_metrics(q, ql, d, dl)
    metric = HammingRetrieval()
    # As two padded distributed shards would deliver them: interleaved, with repeats at the end.
    shards = [torch.arange(0, 200, 2), torch.cat([torch.arange(1, 200, 2), torch.tensor([0, 2])])]
    for shard in shards:
        metric.update(shard, d[shard], dl[shard], database=True)
    for shard in (torch.arange(15, 30), torch.arange(0, 15), torch.tensor([3])):
        metric.update(shard, q[shard], ql[shard], database=False)
    result = metric.compute()
    assert result.map == pytest.approx(expected.map, abs=1e-12)
    assert result.map_at == pytest.approx(expected.map_at, abs=1e-12)
