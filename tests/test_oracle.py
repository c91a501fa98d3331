"""`cmhb oracle`: test mAP after every epoch, never a result row; its last epoch is what `bench` records."""

import csv

import pytest

from benchmarks.cli import main
from benchmarks.execution.results import read_records

RUN = ["--method", "sgrn", "--dataset", "toy", "--bits", "16", "--data.subset=300", "--trainer.max_epochs=3",
       "--logger.kind=none"]


@pytest.mark.slow
def test_the_oracle_writes_no_row_and_its_last_epoch_is_the_row_bench_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["oracle", *RUN, "--seeds", "0", "--out", "out"]) == 0
    assert capsys.readouterr().out.startswith("oracle: a diagnostic")
    assert not (tmp_path / "runs").exists()  # no result row, no run folder
    rows = list(csv.DictReader((tmp_path / "out" / "oracle.csv").open()))
    assert [r["direction"] for r in rows] == ["i2t", "t2i"] and all(r["epochs"] == "3" for r in rows)
    for r in rows:
        assert float(r["test_selected"]) >= max(float(r["last"]), float(r["validation_selected"]))
    epochs = list(csv.DictReader((tmp_path / "out" / "oracle_epochs.csv").open()))
    assert [e["epoch"] for e in epochs] == ["1", "2", "3"]
    assert "test - validation" in (tmp_path / "out" / "oracle.md").read_text()

    assert main(["bench", *RUN, "--seed", "0", "--results", "rows.jsonl", "--logger.save_weights=false"]) == 0
    record, = read_records(tmp_path / "rows.jsonl")
    assert {r["direction"]: float(r["last"]) for r in rows} == {d: record.map(d) for d in ("i2t", "t2i")}


def test_the_oracle_refuses_a_run_without_a_validation_split(tmp_path, capsys):
    assert main(["oracle", "--method", "lsh", "--dataset", "wikipedia", "--data.protocol=official",
                 "--logger.kind=none", "--out", str(tmp_path)]) == 2
    assert "no validation split" in capsys.readouterr().err


def test_the_oracle_refuses_several_processes(tmp_path, capsys):
    assert main(["oracle", *RUN, "--trainer.devices=2", "--trainer.accelerator=cpu", "--out", str(tmp_path)]) == 2
    assert "runs in one process" in capsys.readouterr().err
