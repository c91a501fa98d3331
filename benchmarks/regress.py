"""CI regression: re-run the committed baseline cells and compare mAP and runtime.

Each results/regression/<name>.json holds one dataset at one code length and seed, the overrides that
keep it short, the tolerances, and per method the expected mAP (both directions) and seconds.
A method fails when either direction drops more than `tolerance` below its baseline, or when its run
(training + evaluation) takes more than `runtime_factor` x its baseline plus `runtime_grace_s` (the
grace keeps sub-second runs from failing on timer noise).
"""

import json
import time
from pathlib import Path

from benchmarks.config import resolve
from datamodules.files import atomic_write_bytes

REGRESSION_DIR = Path(__file__).resolve().parents[1] / "results" / "regression"


def measure(baseline: dict, method: str) -> dict:
    from benchmarks.run import run

    overrides = [*baseline["overrides"], *baseline.get("method_overrides", {}).get(method, []), "--logger.kind=none",
                 "--trainer.enable_progress_bar=false"]
    config = resolve(method, baseline["dataset"], baseline["bits"], baseline["seed"], overrides)
    start = time.perf_counter()
    row = run(config, None)
    return {"map_i2t": round(row["map_i2t"], 4), "map_t2i": round(row["map_t2i"], 4),
            "seconds": round(time.perf_counter() - start, 1)}


def failures(baseline: dict, method: str, now: dict) -> list[str]:
    expected = baseline["methods"][method]
    out = [f"{method}: {key} {now[key]:.4f} < baseline {expected[key]:.4f} - {baseline['tolerance']}"
           for key in ("map_i2t", "map_t2i") if now[key] < expected[key] - baseline["tolerance"]]
    limit = baseline["runtime_factor"] * expected["seconds"] + baseline["runtime_grace_s"]
    if now["seconds"] > limit:
        out.append(f"{method}: {now['seconds']:.1f} s > {limit:.1f} s ({baseline['runtime_factor']} x baseline "
                   f"{expected['seconds']:.1f} s + {baseline['runtime_grace_s']} s)")
    return out


def regress(paths: list[Path], update: bool = False) -> int:
    """Check (or with `update`, rewrite) each baseline file; return the number of failures."""
    if not paths:
        raise FileNotFoundError(f"no regression baselines (*.json) in {REGRESSION_DIR}")
    problems = []
    for path in paths:
        try:
            baseline = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a readable regression baseline ({error})") from error
        for method in baseline["methods"]:
            now = measure(baseline, method)
            found = [] if update else failures(baseline, method, now)
            problems += [f"{path.name}: {p}" for p in found]
            expected = baseline["methods"][method]
            print(f"{path.stem:>10} {method:>8}: I->T {now['map_i2t']:.4f} (baseline {expected.get('map_i2t', 0):.4f}) "
                  f"T->I {now['map_t2i']:.4f} ({expected.get('map_t2i', 0):.4f}) {now['seconds']:6.1f} s "
                  f"({expected.get('seconds', 0):.1f} s) {'FAIL' if found else 'ok'}", flush=True)
            if update:
                baseline["methods"][method] = now
        if update:
            atomic_write_bytes(path, (json.dumps(baseline, indent=2) + "\n").encode())
    for problem in problems:
        print("REGRESSION", problem)
    return len(problems)
