"""benchmarks/perf/retrieval.py (what the codes buy): its tie-aware recall by hand, its replicated codes, and
that both exhaustive searches find the exact top 100 while hash lookup finds only what lies within its radius."""

import numpy as np
import pytest

from benchmarks.perf.retrieval import K, code_recall, measure, prepare, replicate_codes


def test_code_recall_by_hand():
    """k = 2. Query 0 gets an item at distance 1 (exact 2nd distance 1: right) and nothing else: 1/2. Query 1
    gets items at 2 and 3 with the exact 2nd at 2: 1/2. Query 2 gets two items tied at the exact 2nd, 4: 1.
    Mean (1/2 + 1/2 + 1) / 3 = 2/3."""
    found = np.array([[3, -1], [1, 2], [5, 6]])
    distance = np.array([[1, 0], [2, 3], [4, 4]])
    assert code_recall(found, distance, np.array([1, 2, 4])) == pytest.approx(2 / 3)


def test_replicated_codes_flip_one_bit_in_32():
    rng = np.random.default_rng(0)
    copies = replicate_codes(np.zeros((3, 8), np.uint8), 20000, rng)
    assert copies.shape == (20000, 8) and np.unpackbits(copies).mean() == pytest.approx(1 / 32, abs=0.002)


def test_exhaustive_searches_find_the_exact_top_100_and_hash_lookup_its_radius(tmp_path):
    rng = np.random.default_rng(0)
    database, queries = rng.integers(0, 256, (3000, 2), dtype=np.uint8), rng.integers(0, 256, (10, 2), dtype=np.uint8)
    prepare(tmp_path, database, queries, 16, binary=True)
    row = {"kind": "binary", "width": 16, "size": 3000, "latency_queries": 2}
    for index in ("suite", "faiss-flat"):
        (measured,) = measure({**row, "index": index, "settings": ["exhaustive"]}, tmp_path)
        assert measured["recall_at_100"] == 1.0 and measured["bytes_per_item"] == 2
    hashed = measure({**row, "index": "faiss-hash", "settings": ["radius 0", "radius 2"]}, tmp_path)
    distances = (np.unpackbits(database, axis=1)[None] != np.unpackbits(queries, axis=1)[:, None]).sum(-1)
    within = np.minimum((distances <= 2).sum(1), K).mean() / K  # 16-bit keys: lookup at radius 2 is exact
    assert hashed[0]["recall_at_100"] < hashed[1]["recall_at_100"] == pytest.approx(within)


def test_the_pareto_frontier_by_hand():
    """By bytes: a (2 B, 0.50), b (4 B, 0.60), c (4 B, 0.55: b is as cheap and better), d (8 B, 0.58: b is
    cheaper and better), e (2,048 B, 0.70) -> the frontier a, b, e."""
    import pandas as pd

    from benchmarks.reports.quality_cost import pareto

    points = pd.DataFrame({"method": list("abcde"), "bytes": [2, 4, 4, 8, 2048], "map": [0.5, 0.6, 0.55, 0.58, 0.7]})
    assert pareto(points, "bytes").method.tolist() == ["a", "b", "e"]


def test_cost_points_join_each_rows_quality_with_the_cost_of_its_search(tmp_path):
    """m1's 16-bit codes (I->T 0.5, T->I 0.7: 0.6) cost the suite's exhaustive search of 16-bit codes at 1e6
    items; m2's 1,024-d features (cosine 0.8) the exact inner-product search of 1,024-d floats; m3's 128-bit row
    has no measured cost and is left out."""
    import pandas as pd

    from benchmarks.reports.quality_cost import SIZE, cost_points, quality_cost_figure

    def line(base, metric, direction, bits, mean):
        return {"table": "toy", "dataset": "toy", "preset": "common", "base": base, "metric": metric,
                "direction": direction, "bits": bits, "mean": mean}
    tables = pd.DataFrame([line("m1", "mAP@all", "i2t", 16, 0.5), line("m1", "mAP@all", "t2i", 16, 0.7),
                           line("m2", "cosine mAP@all", "i2t", 16, 0.8), line("m2", "cosine mAP@all", "t2i", 16, 0.8),
                           line("m3", "mAP@all", "i2t", 128, 0.9)])
    perf = pd.DataFrame([{"size": SIZE, "index": "suite", "setting": "exhaustive", "width": 16, "bytes_per_item": 2,
                          "p50_ms_all_threads": 1.5},
                         {"size": SIZE, "index": "faiss-flat-ip", "setting": "exhaustive", "width": 1024,
                          "bytes_per_item": 4096, "p50_ms_all_threads": 30.0}])
    points = cost_points(tables, perf, {"m2": 1024}, "toy").set_index("method")
    assert sorted(points.index) == ["m1", "m2"]
    assert points.loc["m1", ["map", "bytes", "latency_ms"]].tolist() == pytest.approx([0.6, 2, 1.5])
    assert points.loc["m2", ["map", "bytes", "latency_ms"]].tolist() == pytest.approx([0.8, 4096, 30.0])
    assert quality_cost_figure(points.reset_index(), "toy", tmp_path / "q.png").stat().st_size > 0
