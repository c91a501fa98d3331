"""Sweeps resume by config hash; tables, plots and regression checks from result rows."""

import json

import pytest
import yaml

from benchmarks import plots, tables
from benchmarks.cli import main
from benchmarks.config import resolve
from benchmarks.regress import REGRESSION_DIR, failures, slow
from benchmarks.results import append_row, read_rows
from benchmarks.sweep import Cell, cell_overrides, write_wandb_sweep
from methods import METHODS


def test_overrides_scoped_to_one_dataset_or_method():
    overrides = ["--method.lr=0.1", "--wikipedia:data.data_dir=/data/wiki", "--toy:data.subset=50",
                 "--cagan:method.batch_norm=true"]
    assert cell_overrides(overrides, Cell("sgrn", "wikipedia", 16, 0)) == ["--method.lr=0.1", "--data.data_dir=/data/wiki"]
    assert cell_overrides(overrides, Cell("cagan", "mirflickr25k", 16, 0)) == ["--method.lr=0.1",
                                                                              "--method.batch_norm=true"]


def test_sweep_runs_missing_cells_only_and_resumes(tmp_path, capsys):
    results = tmp_path / "rows.jsonl"
    args = ["sweep", "--methods", "lsh", "--datasets", "toy", "--bits", "8,16", "--seeds", "0,1", "--jobs", "2",
            "--results", str(results), "--data.subset=300", "--logger.kind=none"]
    assert main(args) == 0
    rows = read_rows(results)
    assert sorted((r["bits"], r["seed"]) for r in rows) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert main(args) == 0 and "0 ran, 4 skipped" in capsys.readouterr().out  # nothing to do
    # A crash loses at most the unfinished cells: with one row gone, only that cell runs again.
    results.write_text("".join(json.dumps(r) + "\n" for r in rows[1:]))
    assert main(args) == 0 and "1 ran, 3 skipped" in capsys.readouterr().out
    assert len(read_rows(results)) == 4


def test_wandb_sweep_config(tmp_path):
    path = tmp_path / "grid.yaml"
    cells = [Cell(m, "toy", b, 0) for m in ("cagan", "sgrn") for b in (16, 32)]
    write_wandb_sweep(path, cells, ["--trainer.max_epochs=3"], tmp_path / "rows.jsonl")
    config = yaml.safe_load(path.read_text())
    assert config["method"] == "grid"
    assert config["parameters"] == {"method": {"values": ["cagan", "sgrn"]}, "dataset": {"values": ["toy"]},
                                    "bits": {"values": [16, 32]}, "seed": {"values": [0]}}
    assert config["command"][-1] == "--trainer.max_epochs=3" and "${args}" in config["command"]
    with pytest.raises(ValueError, match="per-dataset overrides"):
        write_wandb_sweep(path, cells, ["--toy:data.subset=5"], tmp_path / "rows.jsonl")


def fake_row(method: str, bits: int, seed: int, map_i2t: float, map_t2i: float, **method_overrides) -> dict:
    config = resolve(method, "toy", bits, seed, [f"--method.{k}={v}" for k, v in method_overrides.items()])
    curves = {"precision_at": {"1": 1.0, "10": 0.5}, "pr_precision": [1.0, 0.5], "pr_recall": [0.2, 1.0]}
    return {"method": method, "dataset": "toy", "dataset_config": "toy", "protocol": "random-200q-1000t",
            "backbone": "synthetic", "n_query": 200, "n_database": 1800, "n_train": 1000, "supervised": METHODS[method].supervised,
            "bits": bits, "seed": seed, "map_i2t": map_i2t, "map_t2i": map_t2i, "train_seconds": 1.0,
            "config_hash": f"{method}{bits}{seed}{method_overrides}", "config": {k: v for k, v in config.items() if k != "logger"},
            "curves_i2t": curves, "curves_t2i": curves}


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    for row in (fake_row("cca_itq", 16, 0, 0.50, 0.40), fake_row("cca_itq", 16, 1, 0.60, 0.40),
                fake_row("egath", 16, 0, 0.70, 0.30), fake_row("cagan", 16, 0, 0.20, 0.45, batch_norm=True)):
        append_row(path, row)
    return path


def test_tables_mean_std_bold_groups_and_files(rows_file, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{tables.BEGIN}\nold table\n{tables.END}\noutro\n")
    tables.build(rows_file, tmp_path, readme, {"variants": True})
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    # Unsupervised first; cca_itq: mean 0.55, sample std 0.0707 over two seeds; the best per column in bold.
    assert [line.split("|")[2].strip() for line in lines[1:]] == ["cagan (batch_norm=True)", "cca_itq", "egath"]
    assert "| 0.5500 ± 0.0707 | 0.4000 ± 0.0000 |" in lines[2]
    assert "**0.7000**" in lines[3] and "**0.4500**" in lines[1]
    csv = (tmp_path / "tables.csv").read_text().splitlines()
    assert csv[0].startswith("table,dataset,preset,supervised,method,metric,candidate,direction,bits,mean,std,seeds")
    assert csv[0].endswith("ci_low,ci_high,p_vs_best,tied_with_best") and len(csv) == 7
    latex = (tmp_path / "toy.tex").read_text()
    assert "\\textbf{0.7000}" in latex and "cca\\_itq" in latex and "$\\pm$" in latex
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="marker lines"):
        tables.build(rows_file, tmp_path, readme)


def test_tables_drop_variants_unless_asked_and_select(rows_file, tmp_path):
    tables.build(rows_file, tmp_path, None)
    assert "batch_norm" not in (tmp_path / "tables.csv").read_text()
    tables.build(rows_file, tmp_path, None, {"methods": ["egath"]})
    assert {line.split(",")[4] for line in (tmp_path / "tables.csv").read_text().splitlines()[1:]} == {"egath"}


def test_plots_are_pdf_and_png_files(rows_file, tmp_path):
    written = plots.build(rows_file, tmp_path / "plots", bits=16, selection={"variants": True})
    assert sorted(p.name for p in written if p.suffix == ".png") == ["toy_map_vs_bits.png", "toy_pr_16b.png",
                                                                      "toy_precision_at_k_16b.png"]
    assert all(p.read_bytes()[:4] in (b"\x89PNG", b"%PDF") for p in written) and len(written) == 6


def test_regression_gates_on_numbers_only():
    baseline = {"tolerance": 0.03, "slow_factor": 3.0, "methods": {"m": {"map_i2t": 0.50, "map_t2i": 0.40, "seconds": 10.0}}}
    assert failures(baseline, "m", {"map_i2t": 0.48, "map_t2i": 0.42, "seconds": 500.0}) == []  # slow is no failure
    found = failures(baseline, "m", {"map_i2t": 0.46, "map_t2i": 0.44, "seconds": 1.0})
    assert len(found) == 2 and "map_i2t 0.4600 is more than 0.03 away from the baseline 0.5000" in found[0]
    assert "map_t2i 0.4400" in found[1]  # an unexplained gain is a change too
    # Time only warns, relative to the machine's current speed (reference workload now / then).
    assert slow(baseline, "m", {"seconds": 30.0}, speed=1.0) is None
    assert "3.1 x the baseline" in slow(baseline, "m", {"seconds": 31.5}, speed=1.0)
    assert slow(baseline, "m", {"seconds": 31.5}, speed=2.0) is None  # a machine twice as busy


def test_regression_baselines_cover_every_method():
    for path in sorted(REGRESSION_DIR.glob("*.json")):
        baseline = json.loads(path.read_text())
        assert set(baseline["methods"]) == set(METHODS), path
        assert all({"map_i2t", "map_t2i", "seconds"} <= set(v) for v in baseline["methods"].values()), path
        assert baseline["dataset"] in ("toy", "wikipedia", "mirflickr25k_mini"), path  # embedded or generated data


def test_regress_checks_without_rewriting_the_baselines(tmp_path, monkeypatch):
    import benchmarks.regress

    seen = []
    monkeypatch.setattr(benchmarks.regress, "regress", lambda paths, rewrite=False: seen.append(rewrite) or 0)
    assert main(["regress", str(tmp_path / "x.json")]) == 0 and main(["regress", "--rewrite"]) == 0
    assert seen == [False, True]
