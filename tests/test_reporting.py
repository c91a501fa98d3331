"""Research-grade reporting: saved runs re-evaluated exactly, significance marking, LaTeX, figures, galleries."""

import itertools
import re
import shutil
import subprocess

import numpy as np
import pytest

from benchmarks import artifacts, plots, tables
from benchmarks.cli import main
from benchmarks.results import append_row, read_records
from benchmarks.significance import bootstrap_interval, sign_flip_p_value

from records import fake_record


def bench(tmp_path, *args: str):
    results = tmp_path / "rows.jsonl"
    assert main(["bench", *args, "--logger.kind=none", f"--logger.save_dir={tmp_path / 'runs'}",
                 f"--results={results}"]) == 0
    return read_records(results)[-1]


@pytest.mark.slow
def test_a_saved_run_is_re_evaluated_exactly_and_encodes_new_features(tmp_path, capsys):
    record = bench(tmp_path, "--method", "dagnn", "--dataset", "toy", "--bits", "16", "--data.subset=400",
                   "--trainer.max_epochs=1", "--data.label_vectors=none", "--logger.save_features=true")
    capsys.readouterr()
    assert main(["evaluate", record.run_dir]) == 0
    out = capsys.readouterr().out
    assert re.search(r"all \d+ numbers equal the run's row", out)
    found, saved = artifacts.evaluate(record.run_dir)
    recomputed = {(s.kind, s.direction): s.map for s in found}
    assert recomputed["hamming", "i2t"] == record.map("i2t")
    assert recomputed["cosine", "t2i"] == record.score("cosine", "t2i").map
    # The trained method hashes features it never saw; on the database's own features it gives the saved codes.
    from datamodules.toy import ToyDataModule

    data = ToyDataModule(subset=400, cache_dir=str(tmp_path / "cache"))
    data.setup()
    np.save(tmp_path / "images.npy", data.data.image[data.split.database])
    assert main(["encode", record.run_dir, "--features", str(tmp_path / "images.npy"), "--modality", "image",
                 "--out", str(tmp_path / "codes.npy")]) == 0
    _, arrays = artifacts.read(record.run_dir)
    saved_codes = artifacts.unpack(arrays["t2i_database_codes"], 16)
    assert np.array_equal(np.load(tmp_path / "codes.npy"), saved_codes)


def test_sign_flip_test_by_hand():
    """d = (0.1, 0.2, -0.05, 0.3): |sum| = 0.55. Of the 16 sign patterns, four reach |sum| >= 0.55: the observed
    one (0.55), the one flipping -0.05 (0.65), and their negations. p = 4 / 16."""
    d = [0.1, 0.2, -0.05, 0.3]
    sums = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product((-1, 1), repeat=4)]
    assert sorted(sums)[-4:] == pytest.approx([0.55, 0.55, 0.65, 0.65])
    assert sign_flip_p_value(d) == 0.25
    assert sign_flip_p_value([0.0, 0.0]) == 1.0
    assert sign_flip_p_value(np.full(40, 0.01)) < 0.001  # 40 queries all in one direction: significant
    low, high = bootstrap_interval(np.linspace(0, 1, 101))
    assert low < 0.5 < high and high - low < 0.15


def test_a_difference_below_the_noise_ties_with_the_best(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.random(100)
    path = tmp_path / "rows.jsonl"
    append_row(path, fake_record("egath", 16, 0, base.mean(), base.mean(), base))  # best
    noisy = np.clip(base - 0.005 + rng.normal(0, 0.05, 100), 0, 1)
    append_row(path, fake_record("dagnn", 16, 0, noisy.mean(), noisy.mean(), noisy))  # noise
    worse = np.clip(base - 0.2, 0, 1)
    append_row(path, fake_record("cca_itq", 16, 0, worse.mean(), worse.mean(), worse))  # clearly worse
    tables.build(path, tmp_path, None)
    summary = {line.split(",")[4]: line for line in (tmp_path / "tables.csv").read_text().splitlines()[1:]
               if ",i2t,16," in line}
    assert summary["egath"].endswith("True") and summary["dagnn"].endswith("True")
    assert summary["cca_itq"].endswith("False")
    latex = (tmp_path / "toy.tex").read_text()
    assert "\\textbf{" in latex.split("egath")[1].split("\\\\")[0] and "\\textbf{" in latex.split("dagnn")[1][:60]
    assert "\\textbf{" not in latex.split("cca\\_itq")[1].split("\\\\")[0]
    assert "sign-flip permutation test over the 200 queries" in latex  # the rows' query count


def test_latex_is_a_booktabs_fragment_that_compiles(tmp_path):
    path = tmp_path / "rows.jsonl"
    for method, bits in itertools.product(("cca_itq", "egath"), (16, 32)):
        ap = np.random.default_rng(bits).random(20)
        append_row(path, fake_record(method, bits, 0, ap.mean(), ap.mean(), ap))
    tables.build(path, tmp_path, None)
    latex = (tmp_path / "toy.tex").read_text()
    body = latex.split("\\toprule")[1].split("\\bottomrule")[0]
    assert "\\cline" not in latex and latex.count("\\toprule") == latex.count("\\bottomrule") == 1
    assert "I$\\to$T" in latex and "T$\\to$I" in latex and "I->T" not in latex
    rows = [line for line in body.splitlines() if line.endswith("\\\\") and "multicolumn" not in line]
    assert {line.count("&") for line in rows} == {4}  # method + 2 directions x 2 code lengths, every row
    assert not re.search(r"\\\\\s*\\\\", body)  # no empty header row
    if shutil.which("pdflatex") is None:
        pytest.skip("no TeX engine installed: the structure was checked, the compile was not")
    document = tmp_path / "paper.tex"
    document.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                        f"\\input{{{tmp_path / 'toy.tex'}}}\n\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]


def test_figures_keep_one_colour_per_method(tmp_path):
    path = tmp_path / "rows.jsonl"
    for method in ("cca_itq", "egath"):
        ap = np.random.default_rng(0).random(20)
        append_row(path, fake_record(method, 16, 0, ap.mean(), ap.mean(), ap))
    drawn, _ = plots.figures(tables.selected(read_records(path)).labelled, bits=16)
    colours = {bars.get_label(): bars.lines[0].get_color() for bars in drawn["toy_map_vs_bits"].axes[0].containers}
    pr = {line.get_label(): line.get_color() for line in drawn["toy_pr_16b"].axes[0].get_lines()}
    assert colours == {method: pr[method] for method in colours} and len(set(colours.values())) == 2
    assert plots.color("cagan") == plots.color("cagan (batch_norm=True)") != plots.color("sgrn")


@pytest.mark.slow
def test_a_run_on_photos_writes_its_gallery(photo_lists, tiny_clip, tmp_path):
    record = bench(tmp_path, "--method", "lsh", "--dataset", "mirflickr25k", "--bits", "16",
                f"--data.data_dir={photo_lists}", "--data.source=lists", "--data.image_dir=images",
                f"--data.clip_model={tiny_clip}", "--data.protocol=mini", "--data.subset=60",
                f"--data.cache_dir={tmp_path / 'cache'}")
    gallery = record.gallery
    assert gallery.endswith("gallery.png") and open(gallery, "rb").read(4) == b"\x89PNG"


def test_published_numbers_are_labelled_reference_rows_never_bold(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_row(path, fake_record("cca_itq", 16, 0, 0.3, 0.3, np.full(10, 0.3), dataset="mirflickr25k"))
    readme = tmp_path / "README.md"
    readme.write_text(f"{tables.BEGIN}\n{tables.END}\n")
    tables.build(path, tmp_path, readme)
    lines = [line for line in readme.read_text().splitlines() if "DJSRH" in line]
    assert len(lines) == 1 and "published: mAP@50" in lines[0] and "0.810" in lines[0] and "**" not in lines[0]
    assert "| published " in lines[0]
