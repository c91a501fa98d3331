"""The runner behind `make bench`: configs, overrides, the result row, wandb offline."""

import json

import pytest

from benchmarks.cli import main
from benchmarks.config import ConfigError, config_hash, resolve
from benchmarks.results import append_row, read_rows
from datamodules import RetrievalDataModule


def test_resolution_order_and_hash():
    config = resolve("cca_itq", "wikipedia", 32, 0, ["--method.reg=0.5", "--data.data_dir=/elsewhere"])
    assert config["method"] == {"reg": 0.5, "correlation_power": 4.0, "itq_iterations": 50}
    assert config["data"]["text_features"] == "tfidf" and config["data"]["data_dir"] == "/elsewhere"
    assert config["run"] == {"method": "cca_itq", "dataset": "wikipedia", "datamodule": "wikipedia", "bits": 32,
                             "seed": 0, "preset": "common", "paper_metric": None}
    # Where the data lives is not part of the hash; what decides the numbers is.
    assert config_hash(config) == config_hash(resolve("cca_itq", "wikipedia", 32, 0, ["--method.reg=0.5"]))
    assert config_hash(config) != config_hash(resolve("cca_itq", "wikipedia", 32, 1, ["--method.reg=0.5"]))
    # A closed-form method is solved in one pass: asking for more epochs changes nothing, nor its hash.
    assert config_hash(resolve("lsh", "toy", 16, 0, ["--trainer.max_epochs=7"])) == config_hash(resolve("lsh", "toy", 16, 0))
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        resolve("nope", "toy", 32, 0)


@pytest.mark.parametrize("args,message", [
    (["--method", "cagn", "--bits", "16"], "unknown method 'cagn'; did you mean cagan?"),
    (["--method", "cagan", "--dataset", "wikipeda", "--bits", "16"], "unknown dataset 'wikipeda'; did you mean wikipedia?"),
    (["--method", "cagan", "--bits", "0"], "bits"),
    (["--method", "cagan", "--bits", "sixteen"], "bits"),
    (["--method", "cagan"], "--bits"),
    (["--method", "cagan", "--bits", "16", "--method.lrr=0.1"], "unknown option --method.lrr; did you mean --method.lr?"),
    (["--method", "cagan", "--bits", "16", "--method.lr=fast"], "method.lr"),
    (["--method", "cagan", "--bits", "16", "--method.text_similarity=jaccard"], "text_similarity"),
    (["--method", "cagan", "--bits", "16", "--trainer.max_epoch=3"], "did you mean --trainer.max_epochs?"),
    (["--bits", "16"], "--method is required"),
])
def test_bad_arguments_give_one_line_before_any_data_loads(args, message, capsys, monkeypatch):
    def refuse(self, stage=None):
        raise AssertionError("data was read before the arguments were checked")

    monkeypatch.setattr(RetrievalDataModule, "setup", refuse)
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_missing_data_and_unwritable_results_are_one_line(tmp_path, capsys):
    assert main(["bench", "--method", "lsh", "--dataset", "wikipedia", "--bits", "16", "--logger.kind=none",
                 f"--data.data_dir={tmp_path / 'nowhere'}", f"--results={tmp_path / 'r.jsonl'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "raw_features.mat: file not found" in err
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", f"--results={tmp_path}"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_help_lists_a_methods_options_with_types_and_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--method", "cagan", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--method.lr LR" in out and "type: float, default: 0.01" in out and "--data.batch_size" in out
    assert "--trainer.max_epochs" in out and "--method.batch_size" not in out  # taken from the data


def test_print_config_and_config_file_round_trip(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["bench", "--method", "cca_itq", "--dataset", "toy", "--bits", "16", "--method.reg=0.3", "--print_config"])
    printed = capsys.readouterr().out
    assert "reg: 0.3" in printed and "max_epochs: 1" in printed
    (tmp_path / "run.yaml").write_text(printed)
    assert main(["bench", "--method", "cca_itq", "--dataset", "toy", "--config", "run.yaml", "--logger.kind=none"]) == 0
    row = read_rows(tmp_path / "runs" / "results.jsonl")[0]  # user runs go to the ignored runs/ folder
    assert row["bits"] == 16 and row["config"]["method"]["reg"] == 0.3


def test_list_names_methods_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("cagan", "sgrn", "egath", "dagnn", "mirflickr25k_mini", "wikipedia", "toy"))


def test_rows_append_and_read_back(tmp_path):
    path = tmp_path / "rows.jsonl"
    row = dict.fromkeys(("method", "dataset", "bits", "seed", "config_hash", "map_i2t", "map_t2i"), 0)
    append_row(path, {**row, "a": 1})
    append_row(path, {**row, "a": 2})
    assert [r["a"] for r in read_rows(path)] == [1, 2]


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


def test_default_bench_runs_offline_on_the_embedded_set_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--method", "cca_itq", "--bits", "32", "--logger.kind=none"]) == 0
    out = capsys.readouterr().out
    assert "mirflickr25k_mini: 100 queries, 630 database, 400 training items" in out
    assert "not the benchmark" in out and "I->T" in out and "T->I" in out
    row = read_rows(tmp_path / "runs" / "results.jsonl")[0]
    assert row["dataset"] == "mirflickr25k_mini" and row["map_i2t"] > 0.5  # chance is about 0.47


def test_subset_runs_name_their_real_sizes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "8", "--data.subset=500",
                 "--logger.kind=none"]) == 0
    out = capsys.readouterr().out
    assert "toy: 50 queries, 450 database, 250 training items (subset500-50q-250t" in out
    assert read_rows(tmp_path / "runs" / "results.jsonl")[0]["protocol"].startswith("subset500-50q-250t")
