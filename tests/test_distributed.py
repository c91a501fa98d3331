"""Evaluation under DDP (two CPU processes, gloo) gives exactly the single-process numbers: codes are
gathered with their indices and the sampler's padded repeats are dropped (protocol.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_evaluation.py")


def evaluate(devices: int, tmp_path: Path) -> dict:
    out = tmp_path / f"numbers{devices}.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(devices), str(tmp_path / "cache"), str(out)],
                          capture_output=True, text=True, timeout=300, cwd=SCRIPT.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_process_evaluation_equals_single_process(tmp_path):
    single, distributed = evaluate(1, tmp_path), evaluate(2, tmp_path)
    assert single.pop("world_size") == 1 and distributed.pop("world_size") == 2
    assert single["n_query"] % 2 or single["n_database"] % 2  # some shard was padded with a repeat
    assert distributed == single
