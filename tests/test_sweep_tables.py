"""Sweeps resume by config hash; tables, plots and regression checks from result rows."""

import re
from dataclasses import replace

import numpy as np
import pytest
import yaml

from benchmarks.campaigns.regress import failures, slow
from benchmarks.campaigns.sweep import Cell, cell_overrides, grid, report, write_wandb_sweep
from benchmarks.cli import main
from benchmarks.execution.results import append_row, read_records
from benchmarks.reports import plots, tables
from benchmarks.reports.gains import gains_markdown, tuning_gains
from common.errors import ConfigError

from records import fake_record


def test_overrides_scoped_to_one_dataset_or_method():
    overrides = ["--method.lr=0.1", "--wikipedia:data.data_dir=/data/wiki", "--toy:data.subset=50",
                 "--cagan:method.batch_norm=true"]
    assert cell_overrides(overrides, Cell("sgrn", "wikipedia", 16, 0)) == ["--method.lr=0.1", "--data.data_dir=/data/wiki"]
    assert cell_overrides(overrides, Cell("cagan", "mirflickr25k", 16, 0)) == ["--method.lr=0.1",
                                                                              "--method.batch_norm=true"]


@pytest.mark.slow
def test_sweep_runs_missing_cells_only_and_resumes(tmp_path, capsys):
    results = tmp_path / "rows.jsonl"
    args = ["sweep", "--methods", "lsh", "--datasets", "toy", "--bits", "8,16", "--seeds", "0,1", "--jobs", "2",
            "--results", str(results), "--data.subset=300", "--logger.kind=none"]
    assert main(args) == 0
    out = capsys.readouterr().out
    records = read_records(results)
    assert sorted((r.bits, r.seed) for r in records) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert "mAP@all of the grid's cells" in out and f"{records[0].map('i2t'):.4f}" in out  # the grid's numbers
    assert re.search(r"4 run folders, [\d.]+ MB", out)  # what the sweep leaves on disk
    # Nothing to do; with the default logger, the grid's summary table goes to an offline wandb run.
    assert main(args[:-1]) == 0 and "0 ran, 4 skipped" in capsys.readouterr().out
    assert any((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    # A crash loses at most the unfinished cells: with one row gone, only that cell runs again.
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[1:]) + "\n")
    assert main(args) == 0 and "1 ran, 3 skipped" in capsys.readouterr().out
    assert len(read_records(results)) == 4
    # Cells another sweep held are done once their rows are there (two identical sweeps started together).
    cells, overrides = grid(["lsh"], ["toy"], [8, 16], [0, 1]), ["--data.subset=300", "--logger.kind=none"]
    assert report(cells, {}, [], dict.fromkeys(cells, "elsewhere"), results, "g", overrides) == 0
    assert report(cells, {}, [], dict.fromkeys(cells, "elsewhere"), tmp_path / "none.jsonl", "g", overrides) == 4
    assert "4 still running in another process (run the same command when it ends)" in capsys.readouterr().out


def test_wandb_sweep_config(tmp_path):
    path = tmp_path / "grid.yaml"
    cells = [Cell(m, "toy", b, 0) for m in ("cagan", "sgrn") for b in (16, 32)]
    write_wandb_sweep(path, cells, ["--trainer.max_epochs=3"], tmp_path / "rows.jsonl")
    config = yaml.safe_load(path.read_text())
    assert config["method"] == "grid"
    assert config["parameters"] == {"method": {"values": ["cagan", "sgrn"]}, "dataset": {"values": ["toy"]},
                                    "bits": {"values": [16, 32]}, "seed": {"values": [0]}}
    assert config["command"][-1] == "--trainer.max_epochs=3" and "${args}" in config["command"]
    assert config["metric"]["name"] == "val/map"  # validation, never a test number
    with pytest.raises(ConfigError, match="per-dataset or per-method overrides"):
        write_wandb_sweep(path, cells, ["--toy:data.subset=5"], tmp_path / "rows.jsonl")


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    for record in (fake_record("cca_itq", 16, 0, 0.50, 0.40), fake_record("cca_itq", 16, 1, 0.60, 0.40),
                   fake_record("egath", 16, 0, 0.70, 0.30), fake_record("cagan", 16, 0, 0.20, 0.45, batch_norm=True)):
        append_row(path, record)
    return path


def test_tables_mean_std_bold_groups_and_files(rows_file, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{tables.BEGIN}\nold table\n{tables.END}\noutro\n")
    tables.build(rows_file, tmp_path, readme, {"variants": True})
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old table" not in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    # Unsupervised first, chance last, graph methods before floors in a group; cca_itq: mean 0.55, sample std
    # 0.0707 over two seeds; the best per column in bold.
    assert [line.split("|")[3].strip() for line in lines[1:]] == ["cagan (batch_norm=True)", "cca_itq", "egath",
                                                                 "chance (random ranking)"]
    assert [line.split("|")[2].strip() for line in lines[1:]] == ["graph", "floor", "graph", ""]
    assert lines[4].split("|")[4].strip() == "0.1000"  # the records' chance
    assert "| 0.5500 ± 0.0707 | 0.4000 ± 0.0000 |" in lines[2]
    assert "**0.7000**" in lines[3] and "**0.4500**" in lines[1]
    csv = (tmp_path / "tables.csv").read_text().splitlines()
    assert csv[0].startswith("table,dataset,preset,supervised,base,family,method,metric,candidate,direction,bits,mean,"
                             "std,seeds")
    assert csv[0].endswith("ci_low,ci_high,p_vs_best,tied_with_best") and len(csv) == 7
    latex = (tmp_path / "toy.tex").read_text()
    assert "\\textbf{0.7000}" in latex and "cca\\_itq" in latex and "$\\pm$" in latex
    readme.write_text("no markers")
    with pytest.raises(ConfigError, match="marker lines"):
        tables.build(rows_file, tmp_path, readme)


def test_tuning_gains_pair_each_methods_presets_over_the_same_queries(tmp_path):
    path = tmp_path / "rows.jsonl"
    common = np.linspace(0.2, 0.6, 20)
    for record in (fake_record("cca_itq", 16, 0, 0.40, 0.40, ap=common),
                   replace(fake_record("cca_itq", 16, 0, 0.45, 0.40, ap=common + 0.05), preset="tuned",
                           config_hash="tuned"),
                   fake_record("egath", 16, 0, 0.70, 0.30, ap=common)):  # no tuned runs: not in the comparison
        append_row(path, record)
    frame = tables.frame_of(tables.selected(read_records(path)).labelled)
    gains = tuning_gains(tables.summarize(frame))
    assert sorted(zip(gains.method, gains.direction)) == [("cca_itq", "i2t"), ("cca_itq", "t2i")]
    i2t = gains[gains.direction == "i2t"].iloc[0]
    # Every query gains 0.05: all 2^20 sign patterns but the two extreme ones fall short.
    assert i2t.change == pytest.approx(0.05) and i2t.p == pytest.approx(2 / 10_001, abs=1e-3)
    markdown = gains_markdown(gains, "toy")
    assert "| cca_itq  | 0.4000" in markdown and "+0.0000 to +0.0500" in markdown and "| 1 / 1 / 0 " in markdown
    assert gains_markdown(gains, "wikipedia") == ""


def test_tables_drop_variants_unless_asked_and_select(rows_file, tmp_path):
    written = tables.build(rows_file, tmp_path, None)
    assert "batch_norm" not in (tmp_path / "tables.csv").read_text()
    assert written[-1] == "left out 1 rows with changed settings (variants); `--variants` shows them"
    tables.build(rows_file, tmp_path, None, {"methods": ["egath"]})
    assert {line.split(",")[4] for line in (tmp_path / "tables.csv").read_text().splitlines()[1:]} == {"egath"}


def test_figures_show_each_method_with_its_numbers(rows_file, tmp_path):
    drawn, notes = plots.figures(tables.selected(read_records(rows_file), variants=True).labelled, bits=16)
    assert sorted(drawn) == ["toy_map_vs_bits", "toy_pr_16b", "toy_precision_at_k_16b"] and notes == []
    figure, points = drawn["toy_map_vs_bits"]
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["unsupervised, image \u2192 text", "unsupervised, text \u2192 image",
                      "supervised, image \u2192 text", "supervised, text \u2192 image"]  # a row per group
    assert figure.axes[2].get_xlabel() == "code length (bits)" and "mAP@all" in figure.axes[0].get_ylabel()
    legends = [[text.get_text() for text in figure.axes[i].get_legend().get_texts()] for i in (1, 3)]
    assert legends == [["cagan (batch_norm=True)", "cca_itq"], ["egath"]]  # one legend per row, in name order
    assert "chance (random ranking)" in [text.get_text() for text in figure.legends[0].get_texts()]
    cca = [p for p in points if p.series == "cca_itq" and p.panel == "unsupervised, image \u2192 text"]
    assert [(p.x, p.y, p.error) for p in cca] == [(16, pytest.approx(0.55), pytest.approx(0.0707, abs=1e-4))]
    chance = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert chance[0].get_ydata()[0] == pytest.approx(0.1)
    pr, pr_points = drawn["toy_pr_16b"]
    assert "mean of 2 runs per point" in pr._suptitle.get_text()
    assert {p.series for p in pr_points} == {"cagan (batch_norm=True)", "cca_itq", "egath"}
    written = plots.build(rows_file, tmp_path / "plots", bits=32, selection={"variants": True})
    assert written[-1].startswith("toy: no 32-bit run of cagan (batch_norm=True), cca_itq, egath")
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["toy_map_vs_bits.csv", "toy_map_vs_bits.pdf",
                                                                      "toy_map_vs_bits.png"]


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


def test_regress_checks_without_rewriting_the_baselines(tmp_path, monkeypatch, capsys):
    import benchmarks.campaigns.regress

    seen = []
    monkeypatch.setattr(benchmarks.campaigns.regress, "regress",
                        lambda paths, rewrite=False, only=None, out=None: seen.append((rewrite, only)) or 0)
    assert main(["regress", str(tmp_path / "x.json")]) == 0 and main(["regress", "--rewrite"]) == 0
    assert main(["regress", "--rewrite", "--methods", "cagan,dagnn"]) == 0
    assert seen == [(False, None), (True, None), (True, ["cagan", "dagnn"])]
    assert main(["regress", "--methods", "cagn"]) == 2
    assert "error: --methods: unknown ['cagn']" in capsys.readouterr().err
