"""The runner behind `make bench`: configs, overrides, the result row, wandb offline."""

import json

import pytest

from benchmarks.cli import main
from benchmarks.config import config_hash, parse_overrides, resolve
from benchmarks.results import append_row, read_rows


def test_overrides_are_typed_and_nested():
    assert parse_overrides(["--method.reg=0.5", "data.subset=300", "trainer.max_epochs=2", "logger.kind=none"]) == {
        "method": {"reg": 0.5}, "data": {"subset": 300}, "trainer": {"max_epochs": 2}, "logger": {"kind": "none"}}
    with pytest.raises(ValueError, match="section.key=value"):
        parse_overrides(["--method.reg"])


def test_resolution_order_and_hash():
    config = resolve("cca_itq", "wikipedia", 32, 0, ["--method.reg=0.5", "--data.data_dir=/elsewhere"])
    assert config["method"] == {"reg": 0.5, "correlation_power": 4.0, "itq_iterations": 50}
    assert config["data"]["text_features"] == "tfidf" and config["data"]["data_dir"] == "/elsewhere"
    # Where the data lives is not part of the hash; what decides the numbers is.
    assert config_hash(config) == config_hash(resolve("cca_itq", "wikipedia", 32, 0, ["--method.reg=0.5"]))
    assert config_hash(config) != config_hash(resolve("cca_itq", "wikipedia", 32, 1, ["--method.reg=0.5"]))
    with pytest.raises(FileNotFoundError, match="no such config; known: .*cca_itq"):
        resolve("nope", "toy", 32, 0)


def test_rows_append_and_read_back(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_row(path, {"a": 1})
    append_row(path, {"a": 2})
    assert [r["a"] for r in read_rows(path)] == [1, 2]
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(ValueError, match="rows.jsonl:3: not a JSON result row"):
        read_rows(path)


def test_bench_on_toy_prints_and_appends_a_row(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.jsonl"
    args = ["bench", "--method", "cca_itq", "--dataset", "toy", "--bits", "16", "--results", str(results)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "I->T" in out and "T->I" in out and "mAP@1000" in out
    assert main(args + ["--seed", "1", "--logger.kind=none"]) == 0
    rows = read_rows(results)
    assert len(rows) == 2 and [r["seed"] for r in rows] == [0, 1]
    row = rows[0]
    for field in ("method", "supervised", "dataset", "protocol", "bits", "seed", "map_i2t", "map_t2i", "map@50_i2t",
                  "map@5000_t2i", "map_tie_i2t", "empty_queries_t2i", "epochs", "train_seconds", "eval_seconds",
                  "backbone", "config_hash", "revision", "timestamp"):
        assert field in row, field
    assert row["map_i2t"] > 0.3 and row["supervised"] is False and row["backbone"] == "synthetic"
    assert len(row["curves_i2t"]["pr_precision"]) == 17
    assert (tmp_path / "runs" / "wandb").is_dir()  # the offline wandb run
    json.dumps(row)


def test_bench_rejects_unknown_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "8", "stray"])
    assert "overrides look like --section.key=value" in capsys.readouterr().err
