"""Downloads and feature extraction happen once, in prepare_data, however many processes a run has."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamodules.download import md5_file

from archives import build_mirflickr_archives
from conftest import SHARED_DATA
from servers import FileServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.shared_data("mirflickr25k")
def test_two_processes_download_and_extract_once(tmp_path):
    """Two processes started together by a cluster launcher (torchrun), one fake official archive: each file is
    requested once and the features are extracted once; both processes train and one row is written."""
    served = build_mirflickr_archives(SHARED_DATA / "mirflickr25k", tmp_path / "served")
    checksums = ",".join(f"{p.name}: {md5_file(p)}" for p in served.iterdir())
    with FileServer(served) as server:
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
             "benchmarks.cli", "bench", "--method", "sgrn", "--dataset", "mirflickr25k", "--bits", "16",
             f"--data.data_dir={tmp_path / 'mirflickr'}", f"--data.base_url={server.url}",
             f"--data.checksums={{{checksums}}}", "--data.image_backbone=efficientnet-lite0", "--data.protocol=mini",
             "--data.subset=120", "--trainer.max_epochs=1", "--trainer.accelerator=cpu", "--trainer.devices=2",
             "--trainer.strategy=ddp", "--logger.kind=none", f"--results={tmp_path / 'rows.jsonl'}"],
            cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert sorted(server.requests) == ["/mirflickr25k.zip", "/mirflickr25k_annotations_v080.zip"], server.requests
    assert output.count("efficientnet-lite0:224 features: 120/120 items") == 1, output[-4000:]
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 1 and output.count("sgrn | 16 bits") == 1
