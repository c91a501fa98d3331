"""Result records made by hand, for tests of tables, plots and readers."""

from datetime import datetime, timedelta, timezone

import numpy as np

from benchmarks.execution.record import RunRecord, Scores
from benchmarks.spec.config import class_schema, resolve

CURVES = {"precision_at": {"1": 1.0, "10": 0.5}, "pr_precision": [1.0, 0.5], "pr_recall": [0.2, 1.0]}
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fake_record(method: str, bits: int, seed: int, map_i2t: float, map_t2i: float, ap: np.ndarray | None = None,
                dataset: str = "toy", order: int = 0, **method_overrides) -> RunRecord:
    """A toy-set record of `method` with the given mAP (and per-query AP), its settings `method_overrides` away
    from the config files; `order` orders the records' timestamps."""
    spec = resolve(method, dataset, bits, seed, [f"--method.{k}={v}" for k, v in method_overrides.items()])
    scores = [Scores("hamming", d, m, ap=[] if ap is None else ap.tolist(), map_at={"50": m}, map_tie=m,
                     distinct_codes=100, **CURVES) for d, m in (("i2t", map_i2t), ("t2i", map_t2i))]
    return RunRecord(method=method, dataset=dataset, dataset_config=dataset, bits=bits, seed=seed,
                     supervised=class_schema("methods", method).facts.get("supervised", False), config=spec.config(),
                     config_hash=f"{method}{bits}{seed}{method_overrides}", protocol="random-200q-1000t",
                     backbone="synthetic", n_query=200 if ap is None else len(ap), n_database=1800, n_train=1000,
                     scores=scores,
                     variant=spec.variant,
                     chance={"i2t": 0.1, "t2i": 0.1}, train_seconds=1.0,
                     timestamp=(START + timedelta(seconds=order)).isoformat(timespec="seconds"))
