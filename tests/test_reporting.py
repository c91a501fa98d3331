"""Research-grade reporting: saved runs re-evaluated exactly, significance marking, LaTeX, figures, galleries."""

import csv
import itertools
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.cli import main
from benchmarks.execution import artifacts
from benchmarks.execution.record import Scores
from benchmarks.execution.results import append_row, read_records
from benchmarks.reports import plots, tables
from benchmarks.reports.significance import bootstrap_interval, sign_flip_p_value
from benchmarks.spec.registry import names
from common.errors import DataError
from datamodules.splits import Split
from methods.dagnn import DAGNN

from layout import overlapping
from plugins import LINEAR_HASH, LINEAR_HASH_YAML, install
from records import fake_record


def bench(tmp_path, *args: str):
    results = tmp_path / "rows.jsonl"
    assert main(["bench", *args, "--logger.kind=none", f"--logger.save_dir={tmp_path / 'runs'}",
                 f"--results={results}"]) == 0
    return read_records(results)[-1]


@pytest.mark.slow
def test_a_saved_run_is_re_evaluated_exactly_and_encodes_new_features(tmp_path, capsys):
    # The default label vectors come from the data (MiniLM): a tensor the method also keeps as a buffer.
    record = bench(tmp_path, "--method", "dagnn", "--dataset", "toy", "--bits", "16", "--data.subset=400",
                   "--trainer.max_epochs=1", "--logger.save_features=true")
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
    # ... from the weights encoding uses: the discriminators, decoders and label GCN stay out of the folder.
    from safetensors import safe_open

    with safe_open(Path(record.run_dir) / "method.safetensors", "pt") as weights:
        parts = {key.split(".")[1] for key in weights.keys() if key.startswith("state.")}
    assert "image_encoder" in parts and "image_hash" in parts and not parts & set(DAGNN.training_only)


def test_a_saved_method_round_trips_and_one_missing_weights_that_encoding_needs_is_refused(tmp_path):
    given = {"image_dim": 6, "text_dim": 5, "num_classes": 3, "train_labels": torch.eye(3)[[0, 1, 2, 0]],
             "label_vectors": None}
    split = Split(*(np.arange(3),) * 4)
    # The P-GNN graph is a view (a transposed buffer): saved as a contiguous copy.
    model = DAGNN(bits=8, graph="probabilistic", **given).eval()
    record = fake_record("dagnn", 8, 0, 0.5, 0.5, graph="probabilistic")
    artifacts.save(tmp_path / "run", record, model, given, {}, split, False)
    loaded, features = artifacts.load_method(tmp_path / "run"), torch.randn(4, 6)
    assert torch.equal(loaded.encode_image(features), model.encode_image(features))
    model.image_encoder = torch.nn.Identity()  # the folder then lacks weights that encoding uses
    artifacts.save(tmp_path / "damaged", record, model, given, {}, split, False)
    with pytest.raises(DataError, match="do not fit dagnn .missing or unknown: image_encoder"):
        artifacts.load_method(tmp_path / "damaged")


def test_a_run_saved_without_weights_keeps_its_codes_and_says_it_cannot_encode(tmp_path):
    given = {"image_dim": 6, "text_dim": 5, "num_classes": 3, "train_labels": torch.eye(3)[[0, 1, 2, 0]],
             "label_vectors": None}
    model, record = DAGNN(bits=8, **given).eval(), fake_record("dagnn", 8, 0, 0.5, 0.5)
    side = {"codes": np.ones((3, 8), np.int8), "labels": np.eye(3)}
    collected = {f"hamming_{d}": {f"{part}_{k}": v for part in ("query", "database") for k, v in side.items()}
                 for d in ("i2t", "t2i")}
    artifacts.save(tmp_path / "run", record, model, given, collected, Split(*(np.arange(3),) * 4), False,
                   save_weights=False)
    assert not (tmp_path / "run" / "method.safetensors").exists()
    assert artifacts.read(tmp_path / "run")[0].map("i2t") == 0.5  # the folder verifies; its codes and row read
    with pytest.raises(DataError, match="saved without its weights .--logger.save_weights=false."):
        artifacts.load_method(tmp_path / "run")
    # A folder saved with weights that lost them is damaged, not "saved without".
    artifacts.save(tmp_path / "full", record, model, given, collected, Split(*(np.arange(3),) * 4), False)
    (tmp_path / "full" / "method.safetensors").unlink()
    with pytest.raises(DataError, match="method.safetensors: missing"):
        artifacts.read(tmp_path / "full")


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
    assert "sign-flip permutation test over the 100 queries" in latex  # the rows' query count


def test_hash_lookup_tables_average_the_runs_that_record_empty_balls(tmp_path):
    """Two egath runs: precision within radius 2 of 0.7 and 0.5, empty balls 10% and 30% -> 0.6000 (20% empty).
    lsh: every ball empty -> no precision. cca_itq's row predates empty balls: left out of the lookup table."""
    path = tmp_path / "rows.jsonl"

    def lookup(record, precision, empty):
        return replace(record, scores=[replace(s, pr_precision=[1.0, 0.9, precision], pr_empty=[] if empty is None
                                               else [0.9, 0.5, empty]) for s in record.scores])
    append_row(path, lookup(fake_record("egath", 16, 0, 0.5, 0.5), 0.7, 0.1))
    append_row(path, lookup(fake_record("egath", 16, 1, 0.5, 0.5), 0.5, 0.3))
    append_row(path, lookup(fake_record("lsh", 16, 0, 0.1, 0.1), 0.0, 1.0))
    append_row(path, lookup(fake_record("cca_itq", 16, 0, 0.3, 0.3), 0.4, None))
    tables.build(path, tmp_path, None, lookup=True)
    text = (tmp_path / "toy_lookup.md").read_text()
    cells = {line.split("|")[3].strip(): line.split("|")[4].strip() for line in text.splitlines() if line.count("|") > 4}
    assert cells["egath"] == "0.6000 (20% empty)" and cells["lsh"] == "– (100% empty)" and "cca_itq" not in cells
    assert "\\toprule" in (tmp_path / "toy_lookup.tex").read_text()
    numbers = {line.split(",")[4]: line for line in (tmp_path / "tables.csv").read_text().splitlines() if ",i2t,16," in line}
    assert ",0.4,," in numbers["cca_itq"]  # the precision stays in the CSV; its empty share is unknown


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
    assert {line.count("&") for line in rows} == {5}  # method, family + 2 directions x 2 code lengths, every row
    assert not re.search(r"\\\\\s*\\\\", body)  # no empty header row
    if shutil.which("pdflatex") is None:
        pytest.skip("no TeX engine installed: the structure was checked, the compile was not")
    document = tmp_path / "paper.tex"
    document.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                        f"\\input{{{tmp_path / 'toy.tex'}}}\n\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", document.name], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]


def every_methods_rows(path: Path) -> None:
    """Rows of every declared method (common and tuned presets, 16/32/64 bits, two seeds), a real-valued method's
    cosine scores among them, and one collapsed run."""
    rng = np.random.default_rng(0)
    for method in names("methods"):
        for preset in ("common", "tuned"):
            for bits in (16, 32, 64):
                for seed in (0, 1):
                    ap = rng.random(20)
                    record = replace(fake_record(method, bits, seed, ap.mean(), ap.mean() * 0.9, ap), preset=preset,
                                     config_hash=f"{method}-{preset}-{bits}-{seed}")
                    if method == "dagnn":
                        record = replace(record, scores=[*record.scores, *(Scores("cosine", d, 0.6, ap=ap.tolist())
                                                                          for d in ("i2t", "t2i"))])
                    if (method, preset, bits, seed) == ("cagan", "common", 16, 1):
                        record = replace(record, collapsed=["i2t"])
                    append_row(path, record)


def test_figures_stay_readable_with_thirteen_methods_and_both_presets(tmp_path, site):
    extra = ("djsrh", "ucch", "dgcpn", "dcmh", "dchmt")  # five more methods through the door: thirteen
    install(site, "fivehash", {"fivehash/__init__.py": "", "fivehash/linhash.py": LINEAR_HASH,
                               **{f"fivehash/{name}.yaml": LINEAR_HASH_YAML.replace("myhash", "fivehash")
                                  for name in extra}}, {"methods": {name: "fivehash" for name in extra}})
    assert len(names("methods")) >= 13
    rows = tmp_path / "rows.jsonl"
    every_methods_rows(rows)
    labelled = tables.selected(read_records(rows)).labelled
    # Colours never repeat across the declared methods (13 or more), and a method keeps its colour.
    assert len(set(plots.palette(20))) == 20 and len({plots.colour(m) for m in names("methods")}) == len(names("methods"))
    for presets in (None, ["common", "tuned"]):
        drawn, _ = plots.figures(labelled, bits=64, presets=presets)
        for stem, (figure, points) in drawn.items():
            assert overlapping(figure) == [], stem
            for panel in {p.panel for p in points}:
                styles = {p.series: (p.colour, p.linestyle, p.marker) for p in points if p.panel == panel}
                assert len(set(styles.values())) == len(styles), (stem, panel, styles)
            assert all(p.colour == plots.colour(p.method) for p in points)
            shown = {(p.method, p.preset, p.kind) for p in points}
            if presets is None:  # each method once, at its tuned preset
                assert {preset for _, preset, _ in shown} == {"tuned"}
            else:
                assert ("cagan", "common", "hamming") in shown
                assert ("dagnn", "tuned", "cosine") in shown or not stem.endswith("map_vs_bits")

    written = plots.build(rows, tmp_path / "plots", 64, presets=["common", "tuned"])
    lines = list(csv.DictReader(open(tmp_path / "plots" / "toy_map_vs_bits.csv")))
    assert tuple(lines[0]) == plots.COLUMNS and len(written) == 9
    flagged = {(p["series"], p["panel"], p["x"]) for p in lines if p["collapsed"] == "True"}
    assert flagged == {("cagan", "unsupervised, image \u2192 text", "16")}  # one run of the two collapsed
    cosine = [p for p in lines if p["kind"] == "cosine"]
    assert cosine and {p["marker"] for p in cosine} == {plots.COSINE_MARKER}
    figure, points = plots.figures(labelled, bits=64, presets=["common"])[0]["toy_map_vs_bits"]
    hollow = [line for line in figure.axes[0].get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [16]  # drawn hollow


@pytest.mark.slow
def test_a_run_on_photos_writes_its_gallery(photo_lists, tiny_clip, tmp_path):
    record = bench(tmp_path, "--method", "lsh", "--dataset", "mirflickr25k", "--bits", "16",
                f"--data.data_dir={photo_lists}", "--data.source=lists", "--data.image_dir=images",
                f"--data.clip_model={tiny_clip}", "--data.protocol=mini", "--data.subset=60",
                f"--data.cache_dir={tmp_path / 'cache'}")
    gallery = record.gallery
    assert gallery.endswith("gallery.png") and open(gallery, "rb").read(4) == b"\x89PNG"
    from benchmarks.execution.gallery import IRRELEVANT, RELEVANT, figure

    drawn = figure(record.run_dir)
    rows = [drawn.axes[i * 11:(i + 1) * 11] for i in range(6)]  # 3 queries per direction, the query + top 10
    assert [row[0].get_title() for row in rows] == ["query"] * 6 and len(drawn.axes) == 66
    assert rows[0][0].images and not rows[3][0].images  # an image query (I->T), then a text query (T->I)
    for row in rows:
        for rank, ax in enumerate(row[1:], 1):  # each result framed by whether it shares a label with the query
            colour = matplotlib_colour(ax.spines["top"])
            assert colour in (RELEVANT, IRRELEVANT)
            assert ax.get_title() == f"{rank} {'relevant' if colour == RELEVANT else 'not relevant'}"


def matplotlib_colour(spine) -> str:
    from matplotlib.colors import to_hex

    return to_hex(spine.get_edgecolor())


def test_published_numbers_are_labelled_reference_rows_never_bold(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_row(path, fake_record("cca_itq", 16, 0, 0.3, 0.3, np.full(10, 0.3), dataset="mirflickr25k"))
    readme = tmp_path / "README.md"
    readme.write_text(f"{tables.BEGIN}\n{tables.END}\n")
    tables.build(path, tmp_path, readme)
    lines = [line for line in readme.read_text().splitlines() if "DJSRH" in line]
    assert len(lines) == 1 and "published: mAP@50" in lines[0] and "0.810" in lines[0] and "**" not in lines[0]
    assert "| published " in lines[0]


def test_a_real_valued_published_number_stands_in_every_code_length(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("method,dataset,bits,direction,metric,protocol,backbone,value,source\n"
                    "ALGCN,toy,,i2t,mAP,its split,VGG,0.747,its README\nUCCH,toy,64,i2t,mAP,its split,VGG,0.7,its README\n")
    lines = tables.published("toy", "common", [16, 32], path)
    assert list(lines.bits) == [16, 32] and set(lines.text) == {"0.747"}  # UCCH has no 16 or 32 bits here


def test_a_saved_run_hashes_new_images_with_its_own_backbone(tmp_path, capsys):
    """The embedded set's run encodes new photos with EfficientNet-Lite0 (its backbone) and hashes them; its
    texts are a bag of words over the dataset's vocabulary, which new texts cannot be: said in one line."""
    from PIL import Image

    record = bench(tmp_path, "--method", "lsh", "--bits", "16")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b.jpg", "a.png", "notes.txt"):
        if name.endswith("txt"):
            (photos / name).write_text("not an image")
        else:
            Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photos / name)
    capsys.readouterr()
    assert main(["encode", record.run_dir, "--images", str(photos), "--out", str(tmp_path / "codes.npy")]) == 0
    codes = np.load(tmp_path / "codes.npy")
    assert codes.shape == (2, 16) and set(np.unique(codes)) <= {-1, 1}
    (tmp_path / "texts.txt").write_text("sky clouds\nportrait people\n")
    assert main(["encode", record.run_dir, "--texts", str(tmp_path / "texts.txt"), "--out", str(tmp_path / "t.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "efficientnet-lite0+bow, which cannot encode new items" in err
