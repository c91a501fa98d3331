"""The runner behind `make bench`: configs, overrides, the result row, wandb offline."""

import json

import pytest

from benchmarks.cli import main
from benchmarks.execution.results import read_records
from benchmarks.spec.config import resolve
from common.errors import ConfigError
from datamodules.base import RetrievalDataModule


def test_resolution_order_and_hash():
    spec = resolve("cca_itq", "wikipedia", 32, 0, ["--method.reg=0.5", "--data.data_dir=/elsewhere"])
    assert spec.settings["method"] == {"reg": 0.5, "correlation_power": 4.0, "itq_iterations": 50}
    assert spec.settings["data"]["text_features"] == "tfidf" and spec.settings["data"]["data_dir"] == "/elsewhere"
    assert spec.config()["run"] == {"method": "cca_itq", "dataset": "wikipedia", "bits": 32, "seed": 0,
                                    "preset": "common", "paper_metric": None}
    # Where the data lives is not part of the hash; what decides the numbers is.
    assert spec.hash == resolve("cca_itq", "wikipedia", 32, 0, ["--method.reg=0.5"]).hash
    assert spec.hash != resolve("cca_itq", "wikipedia", 32, 1, ["--method.reg=0.5"]).hash
    # A closed-form method is solved in one pass: asking for more epochs changes nothing, nor its hash.
    assert resolve("lsh", "toy", 16, 0, ["--trainer.max_epochs=7"]).hash == resolve("lsh", "toy", 16, 0).hash
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        resolve("nope", "toy", 32, 0)
    with pytest.raises(ConfigError, match="--seed: expected an integer from 0 to 4294967295"):
        resolve("lsh", "toy", 32, -1)


@pytest.mark.parametrize("args,message", [
    (["--method", "cagn", "--bits", "16"], "unknown method 'cagn'; did you mean cagan?"),
    (["--method", "cagan", "--dataset", "wikipeda", "--bits", "16"], "unknown dataset 'wikipeda'; did you mean wikipedia?"),
    (["--method", "cagan", "--bits", "0"], "bits"),
    (["--method", "cagan", "--bits", "sixteen"], "bits"),
    (["--method", "cagan"], "--bits"),
    (["--method", "cagan", "--bits", "16", "--method.lrr=0.1"], "unknown option --method.lrr; did you mean --method.lr?"),
    (["--method", "cagan", "--bits", "16", "--method.lr=fast"], "method.lr"),
    (["--method", "cagan", "--bits", "16", "--method.batch_norm=maybe"], "--method.batch_norm: expected true or false"),
    (["--method", "cagan", "--bits", "16", "--method.text_similarity=cosine"], "text_similarity"),  # from the data
    (["--method", "cagan", "--bits", "16", "--trainer.limit_test_batches=2"], "would evaluate less than the protocol"),
    (["--method", "cagan", "--bits", "16", "--seed", "-1"], "--seed: expected an integer from 0 to 4294967295"),
    (["--method", "cagan", "--bits", "16", "--preset", "papr"], "invalid choice: 'papr'"),
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


def test_help_lists_a_methods_options_with_prose_types_and_defaults(capsys):
    assert main(["bench", "--method", "cagan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--method.lr LR" in out and "type: float, default: 0.01" in out and "--data.batch_size" in out
    assert "--trainer.max_epochs" in out and "--method.batch_size" not in out  # taken from the data
    assert "SGD learning rate." in out and "weight of the image similarity S_I in S" in out  # the docstrings' prose
    assert "--dataset" in out and "--preset" in out


def test_print_config_alone_reproduces_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--method", "cca_itq", "--dataset", "toy", "--bits", "16", "--method.reg=0.3",
                 "--logger.kind=none", "--print_config"]) == 0
    printed = capsys.readouterr().out
    assert "reg: 0.3" in printed and "max_epochs: 1" in printed and "method: cca_itq" in printed
    assert "image_backbone" not in printed  # the toy set has no backbone: nothing says it has one
    (tmp_path / "run.yaml").write_text(printed)
    assert main(["bench", "--config", "run.yaml"]) == 0
    record = read_records(tmp_path / "runs" / "results.jsonl")[0]  # user runs go to the ignored runs/ folder
    assert record.bits == 16 and record.config["method"]["reg"] == 0.3 and record.variant == {"method.reg": 0.3}
    assert record.config == resolve("cca_itq", "toy", 16, 0, ["--method.reg=0.3"]).config()


def test_list_names_methods_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("cagan", "sgrn", "egath", "dagnn", "mirflickr25k_mini", "wikipedia", "toy"))


def test_bench_on_toy_prints_and_appends_a_row(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.jsonl"
    args = ["bench", "--method", "cca_itq", "--dataset", "toy", "--bits", "16", "--results", str(results)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "I->T" in out and "T->I" in out and "mAP@1000" in out
    assert "wandb offline run" in out and "wandb sync" in out and "run folder" in out  # where things went
    assert out.rstrip().endswith(f"result row appended to {results}")
    assert main(args + ["--seed", "1", "--logger.kind=none"]) == 0
    records = read_records(results)
    assert len(records) == 2 and [r.seed for r in records] == [0, 1]
    record = records[0]
    scores = record.score("hamming", "i2t")
    assert set(scores.map_at) == {"50", "1000", "5000"} and scores.map_tie > 0 and scores.empty_queries == 0
    assert record.epochs == 1 and record.train_seconds > 0 and record.eval_seconds > 0 and record.revision
    assert record.map("i2t") > 0.3 and record.supervised is False and record.backbone == "synthetic"
    assert len(scores.pr_precision) == 17 and record.variant == {} and record.schema == 2
    assert len(scores.pr_empty) == 17 and record.serving["weights_bytes"] > 0  # hash lookup, serving cost
    assert all(record.serving[k][m] > 0 for k in ("ms_per_item", "items_per_second") for m in ("image", "text"))
    assert (tmp_path / "runs" / "wandb").is_dir()  # the offline wandb run
    json.dumps(record.to_row())


def test_default_bench_runs_offline_on_the_embedded_set_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--method", "cca_itq", "--bits", "32", "--logger.kind=none"]) == 0
    out = capsys.readouterr().out
    assert "mirflickr25k_mini: 100 queries, 630 database, 400 training items" in out
    assert "not the benchmark" in out and "I->T" in out and "T->I" in out
    record = read_records(tmp_path / "runs" / "results.jsonl")[0]
    assert record.dataset == "mirflickr25k_mini" and record.map("i2t") > 0.5  # chance is about 0.47


def test_subset_runs_name_their_real_sizes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "8", "--data.subset=500",
                 "--logger.kind=none"]) == 0
    out = capsys.readouterr().out
    assert "toy: 50 queries, 450 database, 250 training items (subset500-50q-250t" in out
    assert read_records(tmp_path / "runs" / "results.jsonl")[0].protocol.startswith("subset500-50q-250t")
