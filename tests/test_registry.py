"""Methods and datasets are declared once, by their config files; defaults live in the classes alone; one build
path; a method from a package of its own runs through every command."""

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.execution.results import append_row, read_records
from benchmarks.reports import tables
from benchmarks.spec import registry
from benchmarks.spec.config import class_schema, flatten, lightning_defaults, preset_layer, read_yaml, resolve
from benchmarks.spec.registry import CONFIG_DIR, declarations, names

from records import fake_record

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""A method written outside the suite: one linear layer per modality."""

import torch
from torch import nn

from methods.base import GradientHashing
from methods.losses import similarity_mse


class LinearHash(GradientHashing):
    """Supervised linear hashing: one standardised linear layer per modality, the codes' cross-modal cosines
    fitted to whether the items share a label.

    Args:
        lr: Adam learning rate.
    """

    supervised = True

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, lr: float = 0.01):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.image = nn.Sequential(nn.BatchNorm1d(image_dim), nn.Linear(image_dim, bits))
        self.text = nn.Sequential(nn.BatchNorm1d(text_dim), nn.Linear(text_dim, bits))

    def encode_image(self, image):
        return self.image(image)

    def encode_text(self, text):
        return self.text(text)

    def losses(self, batch):
        h_i, h_t = torch.tanh(self.encode_image(batch["image"])), torch.tanh(self.encode_text(batch["text"]))
        shared = (batch["labels"] @ batch["labels"].T > 0).to(h_i.dtype)
        return {"loss": similarity_mse(h_i, h_t, shared)}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A package installed beside the suite (as pip would: its module, its config file and the entry point
    that declares it), with no file of the suite changed."""
    site = tmp_path / "site"
    (site / "myhash").mkdir(parents=True)
    (site / "myhash" / "__init__.py").write_text("")
    (site / "myhash" / "linhash.py").write_text(PLUGIN)
    (site / "myhash" / "linhash.yaml").write_text("class: myhash.linhash.LinearHash\ntrainer:\n  max_epochs: 3\n")
    info = site / "myhash-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myhash\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[graph_cmh_bench.methods]\nlinhash = myhash\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # for a sweep's cells
    importlib.invalidate_caches()
    declarations.cache_clear()
    yield site
    declarations.cache_clear()


@pytest.mark.slow
def test_a_method_of_its_own_package_runs_through_bench_sweep_and_table(plugin, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "linhash" in names("methods") and main(["list"]) == 0
    assert "Supervised linear hashing" in capsys.readouterr().out
    results = tmp_path / "rows.jsonl"
    assert main(["bench", "--method", "linhash", "--dataset", "toy", "--bits", "16", "--logger.kind=none",
                 f"--results={results}"]) == 0
    assert main(["sweep", "--methods", "linhash", "--datasets", "toy", "--bits", "16,32", "--logger.kind=none",
                 f"--results={results}"]) == 0
    assert "1 ran, 1 skipped" in capsys.readouterr().out  # the 16-bit cell was the bench run
    assert main(["table", f"--results={results}", f"--out={tmp_path / 'tables'}"]) == 0
    records = read_records(results)
    assert [r.bits for r in records] == [16, 32] and all(r.supervised for r in records)
    assert all(r.map(d) > r.chance[d] + 0.08 for r in records for d in ("i2t", "t2i")), \
        [(r.map("i2t"), r.map("t2i"), r.chance) for r in records]  # it learns
    assert "| supervised | linhash" in (tmp_path / "tables" / "toy.md").read_text()


def test_every_method_and_dataset_is_declared_by_its_config_file_alone():
    for kind in ("methods", "datasets"):
        for name, declaration in declarations(kind).items():
            assert declaration.path == CONFIG_DIR / kind / f"{name}.yaml"
            assert declaration.load().__module__ == declaration.target.rpartition(".")[0]
    assert main(["list", "--names", "methods"]) == 0


def test_no_config_key_repeats_a_default():
    """Each default lives in its class's signature; a config file holds only what differs (the papers'
    per-dataset settings, presets)."""
    defaults = read_yaml(CONFIG_DIR / "defaults.yaml")
    for name in names("datasets"):
        schema = class_schema("datasets", name).defaults()
        for key, value in flatten(declarations("datasets")[name].config().get("data", {})).items():
            assert schema[key] != value, f"datasets/{name}.yaml repeats the default data.{key}: {value}"
    base = class_schema("datasets", "toy").defaults()  # the options every datamodule has
    for name in names("methods"):
        config = declarations("methods")[name].config()
        method = class_schema("methods", name).defaults()
        for key, value in config.get("method", {}).items():
            assert method[key] != value, f"methods/{name}.yaml repeats the default method.{key}: {value}"
        for key, value in config.get("data", {}).items():
            assert base.get(key) != value, f"methods/{name}.yaml repeats the default data.{key}: {value}"
        for key, value in config.get("trainer", {}).items():
            assert {**lightning_defaults(), **defaults["trainer"]}[key] != value, f"methods/{name}.yaml: trainer.{key}"
        for dataset, section in config.get("datasets", {}).items():
            for key, value in flatten(section.get("method", {})).items():
                assert config.get("method", {}).get(key, method[key]) != value, (name, dataset, key)
        for preset in config.get("presets", {}):
            for dataset in names("datasets"):
                for key in flatten(preset_layer(name, dataset, preset)[0].get("data", {})):
                    # a data setting of a preset is an option of some dataset (a typo fails here)
                    assert any(class_schema("datasets", d).option(key) for d in names("datasets")), (name, key)


def test_one_build_path():
    """Runs are built in benchmarks/execution/pipeline.py alone: no other file constructs a Trainer or seeds a run."""
    found = subprocess.run(["git", "grep", "-nE", r"Trainer\(|seed_everything", "--", "*.py"], cwd=ROOT,
                           capture_output=True, text=True).stdout.splitlines()
    own = ("benchmarks/execution/pipeline.py", "tests/test_registry.py")
    assert [line for line in found if not line.startswith(own)] == []


def test_commands_that_only_read_names_import_no_heavy_library(tmp_path):
    """`cmhb list`, `--help` and a misspelt name answer without importing torch (seconds on a busy machine)."""
    assert main(["list"]) == 0 and main(["bench", "--method", "cagan", "--help"]) == 0  # the schemas are cached now
    probe = textwrap.dedent("""
        import sys
        from benchmarks.cli import main
        for argv in (["list"], ["bench", "--method", "nosuch", "--bits", "32"], ["bench", "--method", "cagan",
                     "--help"], ["bench", "--method", "cagan", "--bits", "16", "--method.lr=fast"]):
            main(argv)
        print("HEAVY" if {"torch", "lightning", "pandas"} & set(sys.modules) else "LIGHT")
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ))
    assert done.stdout.strip().endswith("LIGHT"), done.stdout[-500:] + done.stderr[-2000:]
    assert "error: unknown method 'nosuch'" in done.stderr and "error: --method.lr: expected a number" in done.stderr


def test_the_committed_rows_give_the_committed_tables(tmp_path):
    """`cmhb table` on results/runs.jsonl as committed reproduces results/README.md's tables and the LaTeX
    files exactly (rows of the record's first schema included)."""
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "results" / "README.md").read_text())
    tables.build(ROOT / "results" / "runs.jsonl", tmp_path, readme)
    assert readme.read_text() == (ROOT / "results" / "README.md").read_text()
    for tex in (ROOT / "results").glob("*.tex"):
        assert (tmp_path / tex.name).read_text() == tex.read_text(), tex.name


def test_editing_a_default_does_not_hide_a_written_row(tmp_path, monkeypatch):
    """Whether a row is a variant is decided when it is written: a later change of a config file neither hides
    it nor relabels it."""
    path = tmp_path / "rows.jsonl"
    append_row(path, fake_record("cca_itq", 16, 0, 0.5, 0.4))
    edited = tmp_path / "configs"
    (edited / "methods").mkdir(parents=True)
    for kind in ("methods", "datasets"):
        (edited / kind).mkdir(exist_ok=True)
        for file in (CONFIG_DIR / kind).glob("*.yaml"):
            (edited / kind / file.name).write_text(file.read_text())
    (edited / "defaults.yaml").write_text((CONFIG_DIR / "defaults.yaml").read_text())
    (edited / "methods" / "cca_itq.yaml").write_text("class: methods.cca_itq.CCAITQ\nmethod:\n  reg: 0.5\n")
    monkeypatch.setattr(registry, "CONFIG_DIR", edited)
    monkeypatch.setattr("benchmarks.spec.config.CONFIG_DIR", edited)
    declarations.cache_clear()
    try:
        assert resolve("cca_itq", "toy", 16, 0).settings["method"]["reg"] == 0.5  # the edit took
        shown = tables.selected(read_records(path))
        assert [label for _, label in shown.labelled] == ["cca_itq"] and shown.note() == ""
    finally:
        declarations.cache_clear()


@pytest.mark.parametrize("argv,message", [
    (["regress", "nowhere.json"], "nowhere.json: not a readable regression baseline"),
    (["sweep", "--methods", "lsh", "--datasets", "toy", "--bits", "16", "--wandb_sweep", "s.yaml",
      "--toy:data.subset=100"], "cannot be passed by a wandb agent"),
    (["table", "--results", "rows.jsonl", "--readme", "notes.md"], "marker lines"),
    (["sweep", "--methods", "lsh", "--jobs", "0"], "--jobs: expected a positive integer"),
    (["sweep", "--methods", ","], "names nothing"),
    (["sweep", "--methods", "lsh", "--results", "."], "is a directory"),
    (["table", "--results", "rows.jsonl", "--out", "rows.jsonl"], "is a file; give a folder"),
    (["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", "--data.noise=1e300"], "noise"),
    (["bench", "--method", "lsh", "--bits", "16", "--config", "missing.yaml"], "missing.yaml: no such file"),
    (["evaluate", "nowhere"], "nowhere: not a complete run folder"),
    (["nonsense"], "unknown command 'nonsense'"),
])
def test_user_errors_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    append_row(tmp_path / "rows.jsonl", fake_record("cca_itq", 16, 0, 0.5, 0.4))
    (tmp_path / "notes.md").write_text("no markers here\n")
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and re.search(r"error: .+", err)


def test_the_installed_top_level_packages_belong_to_this_suite_alone():
    """`common`, `metrics`, `methods`... are generic names: no other distribution in the environment may
    provide one, since one of the two would shadow the other on import."""
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    owners = importlib.metadata.packages_distributions()
    for name in (pattern.rstrip("*") for pattern in include["include"]):
        assert set(owners.get(name, [])) == {"graph-cmh-bench"}, f"{name} is also installed by {owners.get(name)}"


def test_a_config_file_is_read_again_when_it_changes_or_is_another(tmp_path, monkeypatch):
    from benchmarks.spec.registry import read_yaml

    for folder, reg in (("one", 0.3), ("two", 0.5)):  # the same relative name in two working directories
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "run.yaml").write_text(f"method: {{reg: {reg}}}\n")
        monkeypatch.chdir(tmp_path / folder)
        assert read_yaml(Path("run.yaml")) == {"method": {"reg": reg}}
    (tmp_path / "two" / "run.yaml").write_text("method: {reg: 0.75}\n")
    assert read_yaml(Path("run.yaml")) == {"method": {"reg": 0.75}}
