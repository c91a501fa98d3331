"""CI regression: re-run the committed baseline cells and compare their mAP. Numbers only gate.

Each results/regression/<name>.json holds one dataset at one code length and seed, the overrides that
keep it short, the tolerance, and per method the expected mAP (both directions) and seconds. A method
fails when either direction moves more than `tolerance` away from its baseline (a gain is a change too:
update the baseline on purpose). Time never fails a run: a busy machine is not a regression. Each run's
seconds are printed beside the baseline's, scaled by a reference workload timed in the same process, and a
run more than `slow_factor` x slower than that gives a warning.
"""

import json
import math
import time
from pathlib import Path

import torch

from benchmarks.spec.config import resolve
from common.errors import ConfigError
from common.files import atomic_write_bytes

REGRESSION_DIR = Path(__file__).resolve().parents[2] / "results" / "regression"


def reference_seconds(repeats: int = 3) -> float:
    """Seconds of a fixed workload like the suite's own (float32 matrix products and a backward pass),
    the best of `repeats`: the machine's speed now, to compare run times measured at other times."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 1024, generator=generator)
    w = torch.randn(1024, 1024, generator=generator, requires_grad=True)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(20):
            torch.tanh(x @ w).square().mean().backward()
        best = min(best, time.perf_counter() - start)
    return best


def measure(baseline: dict, method: str) -> dict:
    """One baseline cell run now: {map_i2t, map_t2i, seconds, collapsed} (the directions whose codes collapsed)."""
    from benchmarks.execution.pipeline import build, execute

    overrides = [*baseline["overrides"], *baseline.get("method_overrides", {}).get(method, []), "--logger.kind=none"]
    spec = resolve(method, baseline["dataset"], baseline["bits"], baseline["seed"], overrides)
    start = time.perf_counter()
    record = execute(build(spec, announce=lambda line: None))
    return {"map_i2t": round(record.map("i2t"), 4), "map_t2i": round(record.map("t2i"), 4),
            "seconds": round(time.perf_counter() - start, 1), "collapsed": record.collapsed}


def failures(baseline: dict, method: str, now: dict) -> list[str]:
    expected = baseline["methods"][method]
    return [f"{method}: {key} {now[key]:.4f} is more than {baseline['tolerance']} away from the baseline "
            f"{expected[key]:.4f} (if the change is intended: cmhb regress --rewrite)"
            for key in ("map_i2t", "map_t2i") if abs(now[key] - expected[key]) > baseline["tolerance"]]


def slow(baseline: dict, method: str, now: dict, speed: float) -> str | None:
    """A warning when the run took more than slow_factor x its baseline's time at this machine's `speed`
    (reference workload now / when the baseline was recorded)."""
    expected = baseline["methods"][method]["seconds"] * speed
    if now["seconds"] > baseline["slow_factor"] * expected + 1:
        return (f"{method}: {now['seconds']:.1f} s, {now['seconds'] / max(expected, 0.1):.1f} x the baseline's "
                f"{baseline['methods'][method]['seconds']:.1f} s at this machine's current speed (warning only)")
    return None


def read_baseline(path: Path) -> dict:
    """A regression baseline file.

    Raises:
        ConfigError: the file is missing or is not a baseline.
    """
    try:
        baseline = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable regression baseline ({error})") from error
    if not isinstance(baseline, dict):
        raise ConfigError(f"{path}: not a regression baseline (a JSON object of dataset, bits, methods, ...)")
    missing = [key for key in ("dataset", "bits", "seed", "overrides", "tolerance", "slow_factor", "methods",
                               "reference_seconds") if key not in baseline]
    if missing:
        raise ConfigError(f"{path}: not a regression baseline (no {', '.join(missing)})")
    methods = baseline["methods"]
    if not isinstance(methods, dict) or not all(isinstance(entry, dict) for entry in methods.values()):
        raise ConfigError(f"{path}: methods must map each method to its numbers (rewrite the file: cmhb regress "
                          "--rewrite)")
    # (field, its value, what it must be): a number the checks divide by or compare with must be one.
    fields = [("dataset", baseline["dataset"], "name"), ("bits", baseline["bits"], 1), ("seed", baseline["seed"], 0),
              *((key, baseline[key], 0.0) for key in ("tolerance", "slow_factor", "reference_seconds")),
              *((f"methods.{m}.{key}", entry.get(key), 0.0) for m, entry in methods.items()
                for key in ("map_i2t", "map_t2i", "seconds"))]
    for field, value, bound in fields:
        if not fits(value, bound):
            wanted = "a name" if bound == "name" else f"an integer of at least {bound}" if isinstance(bound, int) \
                else f"a number above {bound:g}"
            raise ConfigError(f"{path}: {field} is {value!r}; expected {wanted} (rewrite the file: cmhb regress "
                              "--rewrite)")
    lists = {"overrides": baseline["overrides"], **{f"method_overrides.{m}": v for m, v in
                                                    (baseline.get("method_overrides") or {}).items()}}
    for field, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{path}: {field} must be a list of --section.key=value strings")
    return baseline


def fits(value, bound) -> bool:
    """Whether a baseline's JSON value is what its field needs: bound "name" a non-empty string, an int bound an
    integer at least that, a float bound a finite number above it."""
    if bound == "name":
        return isinstance(value, str) and bool(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return (isinstance(value, int) and value >= bound) if isinstance(bound, int) else value > bound


def regress(paths: list[Path], rewrite: bool = False, only: list[str] | None = None, out: Path | None = None) -> int:
    """Check each baseline file's methods, or rewrite the baselines with today's numbers.

    Args:
        paths: baseline files (each one dataset at one code length and seed).
        rewrite: write today's numbers instead of checking them: in place for the suite's own methods (every one
            it declares, so that a new method gets its baselines), or, with `out`, into a file of the same name in
            that folder (a plug-in's baselines, which the suite's files never hold). A run whose codes collapsed is
            refused: its baseline keeps what it had.
        only: only these methods.
        out: the folder of the rewritten files (default: the files themselves).

    Returns:
        The number of problems: numbers that moved more than the tolerance, and refused rewrites.

    Raises:
        ConfigError: a rewrite in place of a method that a plug-in package declares.
    """
    from benchmarks.spec.registry import declared, names

    if rewrite and out is None and (foreign := [m for m in only or () if not declared("methods", m).own]):
        raise ConfigError(f"--methods {', '.join(foreign)}: declared by {declared('methods', foreign[0]).package}, not "
                          "the suite; write its baselines to files of your own: --out DIR (then `cmhb regress "
                          "DIR/*.json` checks them)")
    problems = []
    for path in paths:
        baseline = read_baseline(path)
        target = Path(out) / path.name if out else path
        written = baseline if target == path else read_baseline(target) if target.exists() else \
            {**baseline, "methods": {}, "reference_seconds": None}
        workload = reference_seconds()
        speed = workload / baseline["reference_seconds"]
        print(f"{path.name}: reference workload {workload:.2f} s ({speed:.2f} x its time when recorded)", flush=True)
        if rewrite:
            methods = only or [*baseline["methods"], *(m for m in names("methods", own=True) if m not in baseline["methods"])]
        else:
            methods = [m for m in baseline["methods"] if not only or m in only]
        for method in methods:
            now = measure(baseline, method)
            found = [] if rewrite else failures(baseline, method, now)
            if rewrite and now["collapsed"]:
                found = [f"{method}: not rewritten: its codes collapsed ({', '.join(now['collapsed'])}: fewer distinct "
                         "database codes than the collapse floor), so its mAP measures a near-constant ranking; fix "
                         "the method or the cell's overrides"]
            problems += [f"{path.name}: {p}" for p in found]
            expected = baseline["methods"].get(method, {})
            print(f"{path.stem:>17} {method:>8}: I->T {now['map_i2t']:.4f} (baseline {expected.get('map_i2t', 0):.4f}) "
                  f"T->I {now['map_t2i']:.4f} ({expected.get('map_t2i', 0):.4f}) {now['seconds']:6.1f} s "
                  f"({expected.get('seconds', 0):.1f} s) {'FAIL' if found else 'ok'}", flush=True)
            if not rewrite and (warning := slow(baseline, method, now, speed)):
                print(f"WARNING {path.name}: {warning}")
            if rewrite and not found:  # seconds at the written file's reference workload
                scale = workload / written["reference_seconds"] if only and written["reference_seconds"] else 1.0
                written["methods"][method] = {"map_i2t": now["map_i2t"], "map_t2i": now["map_t2i"],
                                              "seconds": round(now["seconds"] / scale, 1)}
        if rewrite:
            if not only or not written["reference_seconds"]:
                written["reference_seconds"] = round(workload, 3)
            atomic_write_bytes(target, (json.dumps(written, indent=2) + "\n").encode())
            print(f"wrote {target}")
    for problem in problems:
        print("REGRESSION", problem)
    return len(problems)
