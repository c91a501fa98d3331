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
