"""The label protocols (docs/protocol.md, "Unseen classes" and "Noisy labels") on splits small enough to check by
hand: which items leave training, which labels a method is told of, what the noise changes and what it leaves."""

import re

import numpy as np
import pandas as pd
import pytest

from benchmarks.campaigns.label_reference import sweeps
from benchmarks.campaigns.oracle import identity
from benchmarks.campaigns.tuning import study_name
from benchmarks.cli import main
from benchmarks.execution.evaluation import RetrievalEvaluation
from benchmarks.execution.results import read_records
from benchmarks.reports.label_protocols import (chances, crossings, noise_effects, runs, surviving_advantage,
                                                unseen_gaps, write)
from benchmarks.reports.plots import figures
from benchmarks.reports.tables import BEGIN, END, build, selected, table_names
from benchmarks.spec.config import resolve, tuned_file
from datamodules.label_protocols import CLASS_NOISE, VECTOR_NOISE, corrupt, held_out_labels, label_view
from datamodules.splits import Split
from training import fit_and_test

# Six items, labels A B C (columns 0 1 2):
#   0: A      1: B      2: A C      3: C      4: B      5: A B
LABELS = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0], [1, 1, 0]])
SPLIT = Split(query=np.array([3, 5]), train=np.array([0, 2, 4]), database=np.array([0, 1, 2, 4]), val=np.array([1]))


def test_held_out_labels_are_a_share_drawn_with_the_split_seed():
    assert len(held_out_labels(10, 0.3, 0)) == 3  # Wikipedia's 3 of 10
    assert len(held_out_labels(10, 0.01, 0)) == 1 and len(held_out_labels(3, 0.99, 0)) == 2  # at least 1, never all
    assert held_out_labels(24, 0.3, 5).tolist() == held_out_labels(24, 0.3, 5).tolist()
    assert any(held_out_labels(24, 0.3, 0).tolist() != held_out_labels(24, 0.3, s).tolist() for s in range(1, 5))


def test_unseen_labels_leave_training_and_stay_in_the_scored_roles(monkeypatch):
    # Hold out C (column 2): item 2 (A C) leaves training; item 3 (C) stays a query with every column.
    monkeypatch.setattr("datamodules.label_protocols.held_out_labels", lambda n, share, seed: np.array([2]))
    view = label_view(LABELS, SPLIT, 0.3, 0.0, seed=0)
    assert view.split.train.tolist() == [0, 4] and view.split.val.tolist() == [1]
    assert view.split.query.tolist() == [3, 5] and view.split.database.tolist() == [0, 1, 2, 4]
    assert view.seen.tolist() == [0, 1] and view.unseen.tolist() == [2]
    assert view.served["train"].tolist() == [[1, 0], [0, 1]]  # the seen columns only
    assert view.served["query"].tolist() == [[0, 0, 1], [1, 1, 0]]  # every column, for scoring
    assert view.unseen_items(LABELS[SPLIT.database]).tolist() == [False, False, True, False]


def test_the_closed_set_serves_every_label_unchanged():
    view = label_view(LABELS, SPLIT, 0.0, 0.0, seed=0)
    assert view.split == SPLIT and view.unseen.size == 0 and view.noise_model is None
    for role in ("query", "train", "database", "val"):
        assert (view.served[role] == LABELS[SPLIT.role(role)]).all()


def test_single_label_noise_moves_a_share_to_another_class():
    labels = np.eye(4, dtype=int)[np.arange(4000) % 4]
    noisy, model, flagged = corrupt(labels, 0.5, seed=1)
    assert model == CLASS_NOISE and (noisy.sum(1) == 1).all()
    changed = (noisy != labels).any(1)
    assert (changed == flagged).all()  # a corrupted item never keeps its class
    assert flagged.mean() == pytest.approx(0.5, abs=0.03)
    moved_to = noisy[changed].argmax(1)  # uniformly over the 3 other classes: about 1/4 of the moves per class
    assert np.bincount(moved_to, minlength=4) / changed.sum() == pytest.approx([0.25] * 4, abs=0.03)
    assert corrupt(labels, 0.0, seed=1)[2].sum() == 0


def test_multi_label_noise_copies_another_items_different_vector():
    rng = np.random.default_rng(0)
    labels = (rng.random((3000, 6)) < 0.3).astype(int)
    labels[labels.sum(1) == 0, 0] = 1
    noisy, model, flagged = corrupt(labels, 0.2, seed=3)
    assert model == VECTOR_NOISE and flagged.mean() == pytest.approx(0.2, abs=0.03)
    assert ((noisy != labels).any(1) == flagged).all()
    vectors = {tuple(v) for v in labels}
    assert all(tuple(v) in vectors for v in noisy[flagged])  # another item's vector, whole
    assert noisy.mean() == pytest.approx(labels.mean(), abs=0.01)  # the label density is kept


def test_noise_reaches_training_and_validation_only():
    labels = np.eye(3, dtype=int)[np.arange(300) % 3]
    split = Split(query=np.arange(0, 50), train=np.arange(50, 250), database=np.arange(50, 300),
                  val=np.arange(250, 300))
    view = label_view(labels, split, 0.0, 0.8, seed=0)
    assert (view.served["query"] == labels[:50]).all() and (view.served["database"] == labels[50:]).all()
    assert (view.served["train"] != labels[50:250]).any(1).mean() == pytest.approx(0.8, abs=0.1)
    assert view.corrupted == pytest.approx(0.8, abs=0.1) and view.noise_model == CLASS_NOISE


@pytest.mark.slow
def test_egath_loses_to_label_noise_on_the_toy_set():
    shrink = ("--data.subset=800",)
    clean = fit_and_test("egath", epochs=3, overrides=shrink)
    noisy = fit_and_test("egath", epochs=3, overrides=(*shrink, "--data.label_noise=0.8"))
    for direction in ("i2t", "t2i"):
        assert noisy[direction] < clean[direction] - 0.05, (noisy, clean)


def test_queries_are_scored_per_group_against_the_whole_database_and_their_own_group():
    # Labels A B C, C held out. Queries: q0 = A (seen), q1 = C (unseen). Database: d0 A, d1 C, d2 A C (unseen), d3 B.
    evaluation = RetrievalEvaluation(map_ks=())
    evaluation.collected = {"hamming_i2t": {
        "query_codes": np.array([[-1., 1.], [1., -1.]]), "query_labels": np.array([[1, 0, 0], [0, 0, 1]]),
        "database_codes": np.array([[1., 1.], [-1., -1.], [1., -1.], [-1., 1.]]),
        "database_labels": np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]])}}
    groups = {name: (queries, database, results["hamming"]["i2t"].map) for name, queries, database, results in
              evaluation.score_groups(lambda labels: labels[:, 2] == 1)}
    # q0's Hamming distances to d0..d3: 1 1 2 0 (ties in database order): d3 d0 d1 d2, relevant d0 and d2 at ranks
    # 2 and 4; against the seen database (d0, d3): d3 d0. q1's: 1 1 0 2: d2 d0 d1 d3, relevant d2 and d1 at 1 and 3;
    # against the unseen database (d1, d2): d2 d1, both relevant.
    assert groups == {"seen@all": (1, 4, pytest.approx((1 / 2 + 2 / 4) / 2)),
                      "unseen@all": (1, 4, pytest.approx((1 + 2 / 3) / 2)),
                      "seen@seen": (1, 2, pytest.approx(1 / 2)), "unseen@unseen": (1, 2, pytest.approx(1.0))}


def test_a_tuned_preset_is_kept_per_label_protocol_and_the_closed_set_one_serves_the_rest(tmp_path):
    for name, lr in (("classifier-toy", 0.001), ("classifier-toy-noise0.5", 0.002)):
        (tmp_path / f"{name}.yaml").write_text(f"study: {{name: {name}}}\nmethod: {{lr: {lr}}}\n")

    def tuned(*overrides):
        spec = resolve("classifier", "toy", 32, 0, list(overrides), preset="tuned", tuned=tmp_path)
        return spec.study["name"], spec.settings["method"]["lr"]

    assert tuned() == ("classifier-toy", 0.001)
    assert tuned("--data.label_noise=0.5") == ("classifier-toy-noise0.5", 0.002)
    assert tuned("--data.label_noise=0.2") == tuned("--data.unseen_labels=0.3") == ("classifier-toy", 0.001)
    assert tuned_file("classifier", "toy", tmp_path, "noise0.5") == tmp_path / "classifier-toy-noise0.5.yaml"
    assert study_name("classifier", "toy", 32, []) == "classifier-toy-32b"
    assert study_name("classifier", "toy", 32, ["--data.unseen_labels=0.3", "--data.label_noise=.50"]) == \
        "classifier-toy-32b-unseen0.3-noise0.5"


@pytest.mark.slow
def test_rows_under_a_label_protocol_say_so_and_have_tables_of_their_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = ["bench", "--method", "egath", "--dataset", "toy", "--bits", "32", "--data.subset=800",
             "--trainer.max_epochs=1", "--logger.kind=none"]
    for protocol in ((), ("--data.unseen_labels=0.3",), ("--data.label_noise=0.8",)):
        assert main([*bench, *protocol]) == 0
    closed, unseen, noisy = read_records(tmp_path / "runs" / "results.jsonl")
    assert closed.label_protocol == {} and closed.groups == [] and closed.protocol == "subset800-80q-400t"
    assert closed.variant == unseen.variant == noisy.variant  # a protocol of the data, not a variant
    assert unseen.label_protocol["unseen_share"] == 0.3 and len(unseen.label_protocol["unseen_labels"]) == 7  # of 24
    assert unseen.protocol == "subset800-80q-254t-unseen7of24" and closed.n_train == 400  # 146 carry one
    assert [g.group for g in unseen.groups] == ["seen@all", "unseen@all", "seen@seen", "unseen@unseen"]
    assert sum(g.n_query for g in unseen.groups[:2]) == unseen.n_query
    assert noisy.label_protocol["noise_model"] and noisy.label_protocol["corrupted"] == pytest.approx(0.8, abs=0.1)
    assert table_names([closed, unseen, noisy]) == ["toy", "toy [unseen labels 0.3]", "toy [label noise 0.8]"]
    drawn, notes = figures(selected([closed, unseen, noisy], variants=True).labelled, bits=32)
    assert sorted(drawn) == ["toy_map_vs_bits", "toy_pr_32b", "toy_precision_at_k_32b"]  # the closed set's only
    assert len([note for note in notes if "a label protocol's table" in note]) == 6  # 2 tables, 4 query groups
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    build(tmp_path / "runs" / "results.jsonl", tmp_path, readme, {"variants": True})
    shown = readme.read_text()  # the closed set's table; the protocols' six, each in a file of its own, linked
    assert shown.count("| egath") == 1 and "(toy--label-noise-0-8.md)" in shown
    assert len(re.findall(r"\]\(toy-[a-z0-9-]+\.md\)", shown)) == 6 and (tmp_path / "toy--label-noise-0-8.md").is_file()


def test_the_oracle_keeps_a_protocols_runs_apart_from_the_closed_sets():
    spec = resolve("egath", "toy", 32, 0, ["--data.label_noise=0.8"])
    assert identity(spec)["dataset"] == "toy-noise0.8" and identity(resolve("egath", "toy", 32, 0))["dataset"] == "toy"


def test_a_method_falls_below_where_it_is_significantly_worse_not_merely_lower():
    effects = pd.DataFrame({"dataset": "d", "direction": "i2t", "method": ["a"] * 4 + ["b"] * 2,
                            "noise": [0, 0.2, 0.5, 0.8, 0, 0.8], "difference": [0.1, -0.01, -0.05, -0.2, 0.2, 0.1],
                            "p": [0.001, 0.4, 0.01, 0.001, 0.001, 0.001]})
    found = crossings(effects).set_index("method")
    assert found.loc["a", "below from"] == 0.2 and found.loc["a", "significantly below from"] == 0.5
    assert np.isnan(found.loc["b", "below from"]) and found.loc["b", "rates measured"] == "0, 0.8"


def test_the_unseen_report_weighs_each_group_against_its_chance_and_the_best_unsupervised_method():
    # Two queries per group, one run each: unsupervised u1, u2; supervised s (values by hand).
    lines = []
    for base, supervised, seen, unseen in (("u1", False, [0.5, 0.3], [0.6, 0.6]), ("u2", False, [0.3, 0.3], [0.7, 0.7]),
                                           ("s", True, [0.9, 0.7], [0.6, 0.8])):
        for group, ap, chance in (("seen@all", seen, 0.2), ("unseen@all", unseen, 0.5)):
            lines.append({"dataset": "d", "direction": "i2t", "query_group": group, "base": base,
                          "supervised": supervised, "value": np.mean(ap), "ap": np.array(ap), "chance": chance,
                          "n_query": 2, "unseen_labels": 0.3, "label_noise": 0.0, "seed": 0, "split_seed": 0})
    frame = pd.DataFrame(lines)
    s = surviving_advantage(frame).set_index("method").loc["s"]
    assert s["best unsupervised on seen@all"] == "u1" and s["advantage seen@all"] == pytest.approx(0.8 - 0.4)
    assert s["best unsupervised on unseen@all"] == "u2" and s["advantage unseen@all"] == pytest.approx(0.7 - 0.7)
    assert s["p seen@all"] == pytest.approx(0.5, abs=0.02)  # two positive differences: 1 of 4 sign patterns
    gap = unseen_gaps(frame).set_index("method").loc["s"]
    assert gap["seen - unseen"] == pytest.approx(0.8 - 0.7) and gap["above chance"] == pytest.approx(0.6 - 0.2)
    assert chances(frame).set_index("group").chance.to_dict() == {"seen@all": 0.2, "unseen@all": 0.5}


@pytest.mark.slow
def test_the_label_protocols_report_reads_the_rows_it_summarises(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = ["--dataset", "toy", "--bits", "32", "--data.subset=800", "--logger.kind=none"]
    for method, protocol in (("lsh", ""), ("classifier", ""), ("classifier", "--data.label_noise=0.8"),
                             ("classifier", "--data.unseen_labels=0.3")):
        assert main(["bench", "--method", method, *bench, *([protocol] if protocol else [])]) == 0
    rows = read_records(tmp_path / "runs" / "results.jsonl")
    every = {"variants": True}  # --data.subset makes them variants
    written = write(tmp_path / "runs" / "results.jsonl", tmp_path / "labels.md", tmp_path / "plots", 32, every)
    assert written == [tmp_path / "labels.md", tmp_path / "plots" / "label_noise.png"]
    frame = runs(tmp_path / "runs" / "results.jsonl", 32, every)
    effects = noise_effects(frame).set_index(["direction", "noise"])
    for direction in ("i2t", "t2i"):
        clean, noisy = effects.loc[(direction, 0.0)], effects.loc[(direction, 0.8)]
        assert clean["mean"] == rows[1].map(direction) and noisy["mean"] == rows[2].map(direction)
        assert clean["best unsupervised"] == "lsh" and clean["its mean"] == rows[0].map(direction)
        assert 0 < noisy.p <= 1 and noisy["mean"] < clean["mean"]
    gaps = unseen_gaps(frame).set_index("direction")
    assert gaps.loc["i2t", "all queries"] == rows[3].map("i2t") and gaps.loc["i2t", "closed set"] == rows[1].map("i2t")
    assert gaps.loc["i2t", "seen@all"] == next(s.map for s in rows[3].groups[0].scores if s.direction == "i2t"
                                               and s.kind == "hamming")


def test_the_label_reference_runs_every_method_unseen_and_the_supervised_ones_noisy():
    runs_of = sweeps(["lsh", "egath", "sgrn"], tunable={"egath", "sgrn"}, supervised={"egath"})
    assert [(r[1], r[r.index("--presets") + 1], r[-1]) for r in runs_of] == [
        ("egath,sgrn", "tuned", "--data.unseen_labels=0.3"), *(("egath", "tuned", f"--data.label_noise={rate}")
                                                                for rate in (0.2, 0.5, 0.8)),
        ("lsh", "common", "--data.unseen_labels=0.3")]
    assert all(r[r.index("--bits") + 1] == "32" and r[r.index("--datasets") + 1] == "mirflickr25k_mini,wikipedia"
               for r in runs_of)
