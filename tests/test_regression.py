"""The CI regression baselines (results/regression/*.json) as tests: each method at 32 bits on the embedded sets
and the toy set, seed 0, short runs, within its baseline's tolerance in both directions. Time never fails:
seconds are printed beside the baseline's, scaled by the machine's speed now (`cmhb regress` prints the same)."""

import pytest

from benchmarks.campaigns.regress import REGRESSION_DIR, failures, measure, read_baseline, reference_seconds, slow

CELLS = [(path, method) for path in sorted(REGRESSION_DIR.glob("*.json")) for method in read_baseline(path)["methods"]]


@pytest.fixture(scope="module")
def workload() -> float:
    return reference_seconds()


@pytest.mark.slow
@pytest.mark.parametrize("path,method", CELLS, ids=[f"{p.stem}-{m}" for p, m in CELLS])
def test_the_baseline_holds(path, method, workload):
    baseline = read_baseline(path)
    now = measure(baseline, method)
    expected = baseline["methods"][method]
    print(f"{path.stem} {method}: I->T {now['map_i2t']:.4f} (baseline {expected['map_i2t']:.4f}) T->I "
          f"{now['map_t2i']:.4f} ({expected['map_t2i']:.4f}) {now['seconds']:.1f} s ({expected['seconds']:.1f} s)")
    if warning := slow(baseline, method, now, workload / baseline["reference_seconds"]):
        print(f"WARNING {warning}")
    assert not failures(baseline, method, now)
