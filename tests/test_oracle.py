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


def test_the_reports_gaps_intervals_and_rankings_by_hand(tmp_path):
    """Two methods, two runs each, one direction: gaps are the means of the per-run differences, the interval
    of two equal differences is that difference, and the ranking flips when b's best epoch passes a's."""
    import numpy as np
    import pandas as pd

    from benchmarks.reports.epoch_selection import gaps, interval, kendall_tau, rankings

    rows = pd.DataFrame([
        dict(method="a", dataset="d", preset="common", direction="i2t", epochs=5, last=0.50,
             validation_selected=0.51, test_selected=0.52),
        dict(method="a", dataset="d", preset="common", direction="i2t", epochs=5, last=0.54,
             validation_selected=0.55, test_selected=0.56),
        dict(method="b", dataset="d", preset="common", direction="i2t", epochs=5, last=0.48,
             validation_selected=0.48, test_selected=0.58),
        dict(method="b", dataset="d", preset="common", direction="i2t", epochs=5, last=0.50,
             validation_selected=0.52, test_selected=0.56)])
    table = gaps(rows).set_index("method")
    assert table.loc["a", "test - last"] == pytest.approx(0.02)  # (0.02 + 0.02) / 2
    assert table.loc["a", "test - last low"] == pytest.approx(0.02) == table.loc["a", "test - last high"]
    assert table.loc["b", "test - last"] == pytest.approx(0.08)  # (0.10 + 0.06) / 2
    assert table.loc["b", "test - validation"] == pytest.approx(0.07)  # (0.10 + 0.04) / 2
    assert 0.06 <= table.loc["b", "test - last low"] < table.loc["b", "test - last high"] <= 0.10
    ranks = rankings(gaps(rows)).iloc[0]
    assert (ranks.order_last, ranks.order_test_selected) == ("a, b", "b, a")  # 0.52 > 0.49; 0.57 > 0.54
    assert ranks.kendall_tau == -1.0 and ranks.moved == "a 1->2, b 2->1"
    assert kendall_tau(["x", "y", "z"], ["x", "z", "y"]) == pytest.approx(1 / 3)  # 2 pairs agree, 1 disagrees
    assert all(np.isnan(interval(np.array([0.3]))))  # one run: no interval


def test_the_report_compares_the_last_epochs_with_the_result_rows_of_the_same_runs(tmp_path):
    import pandas as pd

    from benchmarks.execution.results import append_row
    from benchmarks.reports.epoch_selection import agreement

    from records import fake_record

    append_row(tmp_path / "rows.jsonl", fake_record("cca_itq", 16, 0, 0.5, 0.4))
    same = dict(method="cca_itq", dataset="toy", preset="common", bits=16, seed=0, split_seed=0, variant=False)
    rows = pd.DataFrame([{**same, "direction": "i2t", "last": 0.5004}, {**same, "direction": "t2i", "last": 0.4},
                         {**same, "variant": True, "direction": "i2t", "last": 0.9}])  # another run's settings
    assert agreement(rows, tmp_path / "rows.jsonl") == (
        f"2 of the 3 last-epoch numbers have a row of the same run in {tmp_path / 'rows.jsonl'}; they differ from it "
        "by at most 0.0004 (mean 0.0002).")
