"""Methods and datasets are declared once, by their config files; defaults live in the classes alone; one build
path; a method from a package of its own runs through every command."""

import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.execution.results import append_row, code_revision, read_records
from benchmarks.reports import tables
from benchmarks.spec import registry
from benchmarks.spec.config import class_schema, flatten, lightning_defaults, preset_layer, read_yaml, resolve
from benchmarks.spec.registry import CONFIG_DIR, declarations, names
from common.errors import ConfigError

from plugins import LINEAR_HASH, LINEAR_HASH_YAML, install
from records import fake_record

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugin(site):
    """A sound method in a package installed beside the suite (its module, its config file and the entry point
    that declares it), with no file of the suite changed."""
    install(site, "myhash", {"myhash/__init__.py": "", "myhash/linhash.py": LINEAR_HASH,
                             "myhash/linhash.yaml": LINEAR_HASH_YAML}, {"methods": {"linhash": "myhash"}})
    return site


@pytest.mark.slow
def test_a_method_of_its_own_package_runs_through_bench_sweep_and_table(plugin, broken_plugins, tmp_path, capsys,
                                                                        monkeypatch):
    """... beside broken ones, which change nothing for it or the suite's own methods."""
    monkeypatch.chdir(tmp_path)
    assert "linhash" in names("methods") and main(["list"]) == 0
    assert "Supervised linear hashing" in capsys.readouterr().out
    results = tmp_path / "rows.jsonl"
    assert main(["bench", "--method", "linhash", "--dataset", "toy", "--bits", "16", "--logger.kind=none",
                 f"--results={results}"]) == 0
    assert main(["sweep", "--methods", "linhash", "--datasets", "toy", "--bits", "16,32", "--logger.kind=none",
                 f"--results={results}"]) == 0
    assert "1 ran, 1 skipped" in capsys.readouterr().out  # the 16-bit cell was the bench run
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", "--logger.kind=none",
                 "--results=lsh.jsonl"]) == 0
    assert read_records(tmp_path / "lsh.jsonl")[0].declared_by == {"method": "graph-cmh-bench 0.1.0",
                                                                   "dataset": "graph-cmh-bench 0.1.0"}
    assert main(["table", f"--results={results}", f"--out={tmp_path / 'tables'}"]) == 0
    records = read_records(results)
    assert [r.bits for r in records] == [16, 32] and all(r.supervised for r in records)
    assert records[0].declared_by == {"method": "myhash 0.1", "dataset": "graph-cmh-bench 0.1.0"}
    assert all(r.map(d) > r.chance[d] + 0.08 for r in records for d in ("i2t", "t2i")), \
        [(r.map("i2t"), r.map("t2i"), r.chance) for r in records]  # it learns
    assert "| supervised | unspecified | linhash" in (tmp_path / "tables" / "toy.md").read_text()


def test_every_method_and_dataset_is_declared_by_its_config_file_alone():
    for kind in ("methods", "datasets"):
        for name, declaration in declarations(kind).items():
            if not declaration.own:
                continue  # a package installed in the environment
            assert declaration.path == CONFIG_DIR / kind / f"{name}.yaml"
            assert declaration.load().__module__ == declaration.target.rpartition(".")[0]
    assert main(["list", "--names", "methods"]) == 0


def test_no_config_key_repeats_a_default():
    """Each default lives in its class's signature; a config file holds only what differs (the papers'
    per-dataset settings, presets)."""
    defaults = read_yaml(CONFIG_DIR / "defaults.yaml")
    for name in names("datasets", own=True):
        schema = class_schema("datasets", name).defaults()
        for key, value in flatten(declarations("datasets")[name].config().get("data", {})).items():
            assert schema[key] != value, f"datasets/{name}.yaml repeats the default data.{key}: {value}"
    base = class_schema("datasets", "toy").defaults()  # the options every datamodule has
    for name in names("methods", own=True):
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
    registry.rediscover()
    try:
        assert resolve("cca_itq", "toy", 16, 0).settings["method"]["reg"] == 0.5  # the edit took
        shown = tables.selected(read_records(path))
        assert [label for _, label in shown.labelled] == ["cca_itq"] and shown.note() == ""
    finally:
        registry.rediscover()


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


BROKEN = {  # name: (what is wrong, what `cmhb list` and a run say of it)
    "badsyntax": "SyntaxError", "linear": "is not a method", "noyaml": "no config file noyaml.yaml",
    "badimport": "ModuleNotFoundError", "cagan": "the suite declares the method 'cagan' already", "twice": "2 packages",
}


@pytest.fixture
def broken_plugins(site):
    """Packages whose declarations are broken in every way an entry point can be: a module with a syntax error,
    one whose import fails, a class that is no method (and a dataset that is no dataset), an entry point without
    its config file, a name the suite has, and a name two packages declare."""
    install(site, "badhash", {
        "badhash/__init__.py": "",
        "badhash/badsyntax.py": "def broken(:\n", "badhash/badsyntax.yaml": "class: badhash.badsyntax.Hash\n",
        "badhash/badimport.py": "import nosuchmodule\n", "badhash/badimport.yaml": "class: badhash.badimport.Hash\n",
        "badhash/linear.yaml": "class: torch.nn.Linear\n", "badhash/baddata.yaml": "class: torch.nn.Linear\n",
        "badhash/cagan.yaml": LINEAR_HASH_YAML, "badhash/twice.yaml": LINEAR_HASH_YAML},
        {"methods": {name: "badhash" for name in BROKEN}, "datasets": {"baddata": "badhash"}})
    install(site, "otherhash", {"otherhash/__init__.py": "", "otherhash/twice.yaml": LINEAR_HASH_YAML},
            {"methods": {"twice": "otherhash"}})
    return site


def test_broken_plugins_fail_alone(broken_plugins, capsys):
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    listed = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and "BROKEN" not in line}

    for name, problem in BROKEN.items():
        line = next(line for line in out.splitlines() if line.startswith(f"  {name} ") and "BROKEN" in line)
        assert problem in line and ("badhash 0.1" in line or name == "twice"), line
        assert problem in err, (name, err)  # ... and a warning line
    assert "BROKEN" in next(line for line in out.splitlines() if line.startswith("  baddata "))
    assert "Unsupervised hashing with two hash MLPs" in listed["cagan"]  # the suite's own wins the clash
    assert all(name in listed for name in names("methods", own=True))
    assert all(line.startswith("warning: skipped ") for line in err.splitlines()), err
    assert main(["list", "--names", "methods"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(names("methods", own=True))
    # Every other method and dataset works; using a broken one is one line naming it, its package and the fix.
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", "--print_config"]) == 0
    capsys.readouterr()
    for name in [n for n in BROKEN if n != "cagan"]:
        assert main(["bench", "--method", name, "--dataset", "toy", "--bits", "16"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and BROKEN[name] in err, err
    assert main(["bench", "--method", "lsh", "--dataset", "baddata", "--bits", "16"]) == 2
    assert "torch.nn.Linear is not a dataset" in capsys.readouterr().err


def test_a_plugins_regression_baselines_go_to_a_file_of_its_own_and_a_collapsed_run_is_refused(plugin, tmp_path,
                                                                                              monkeypatch, capsys):
    import benchmarks.campaigns.regress as regress

    baseline = {"dataset": "toy", "bits": 16, "seed": 0, "overrides": [], "tolerance": 0.03, "slow_factor": 3.0,
                "reference_seconds": 1.0, "methods": {"lsh": {"map_i2t": 0.1, "map_t2i": 0.1, "seconds": 1.0}}}
    (tmp_path / "toy.json").write_text(json.dumps(baseline))
    numbers = {"lsh": (0.2, []), "linhash": (0.4, []), "cca_itq": (0.3, ["i2t"])}
    monkeypatch.setattr(regress, "reference_seconds", lambda: 2.0)
    monkeypatch.setattr(regress, "measure", lambda _, method: {"map_i2t": numbers[method][0], "map_t2i": 0.3,
                                                               "seconds": 4.0, "collapsed": numbers[method][1]})
    assert main(["regress", str(tmp_path / "toy.json"), "--rewrite", "--methods", "linhash"]) == 2
    assert "declared by myhash 0.1, not the suite; write its baselines to files of your own: --out DIR" in \
        capsys.readouterr().err
    assert main(["regress", str(tmp_path / "toy.json"), "--rewrite", "--methods", "linhash", "--out", "mine"]) == 0
    mine = json.loads((tmp_path / "mine" / "toy.json").read_text())
    assert mine["methods"] == {"linhash": {"map_i2t": 0.4, "map_t2i": 0.3, "seconds": 4.0}}
    assert mine["reference_seconds"] == 2.0 and mine["overrides"] == baseline["overrides"]
    assert json.loads((tmp_path / "toy.json").read_text()) == baseline  # the suite's file untouched
    assert main(["regress", str(tmp_path / "mine" / "toy.json")]) == 0  # ... and the user's file checks
    # A run whose codes collapsed is no baseline: refused, the rest written.
    assert main(["regress", str(tmp_path / "toy.json"), "--rewrite", "--methods", "lsh,cca_itq"]) == 1
    assert "cca_itq: not rewritten: its codes collapsed (i2t" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "toy.json").read_text())["methods"]) == {"lsh"}


def test_a_new_untracked_module_makes_the_revision_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "base.py").write_text("")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "x", "--allow-empty")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y")
    assert not code_revision(tmp_path).endswith("-dirty")
    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "rows.jsonl").write_text("{}")
    assert not code_revision(tmp_path).endswith("-dirty")
    (tmp_path / "methods" / "mine.py").write_text("")  # a method not yet committed
    assert code_revision(tmp_path).endswith("-dirty")


def test_a_family_is_one_of_the_known_ones_or_unspecified(site, capsys):
    install(site, "famhash", {"famhash/__init__.py": "", "famhash/linhash.py": LINEAR_HASH,
                              "famhash/plain.yaml": LINEAR_HASH_YAML.replace("myhash", "famhash"),
                              "famhash/odd.yaml": LINEAR_HASH_YAML.replace("myhash", "famhash") + "family: graphs\n"},
            {"methods": {"plain": "famhash", "odd": "famhash"}})
    assert registry.declared("methods", "plain").family == "unspecified"
    assert registry.declared("methods", "cagan").family == "graph" and registry.declared("methods", "lsh").family == "floor"
    with pytest.raises(ConfigError, match="odd.yaml: family 'graphs'; one of graph, non-graph, floor"):
        registry.declared("methods", "odd").family
    assert main(["list"]) == 0  # ... which makes the plug-in broken, not the listing
    assert "BROKEN, skipped: " in next(line for line in capsys.readouterr().out.splitlines() if "  odd " in line)


def test_what_contributing_md_says_a_plugin_may_import_exists():
    """The stable import surface is listed once, in CONTRIBUTING.md; each name there imports."""
    text = (ROOT / "CONTRIBUTING.md").read_text().split("**What a plug-in may import**")[1].split("\n\n")[0]
    surface = {m: re.findall(r"`(\w+)`", rest) for m, rest in re.findall(r"^- `([\w.]+)`: (.+)$", text, re.M)}
    assert len(surface) >= 8 and sum(map(len, surface.values())) >= 30
    for module, found in surface.items():
        for name in found:
            assert hasattr(importlib.import_module(module), name), f"{module}.{name}"
