"""Datamodules: the real Wikipedia files, saved splits, the synthetic toy set, and clear errors on bad input."""

import shutil

import numpy as np
import pytest
import scipy.io

from datamodules import DataError, ToyDataModule, WikipediaDataModule
from datamodules.splits import SplitProtocol


def test_wikipedia_reads_the_official_files(wikipedia_dir, tmp_path):
    dm = WikipediaDataModule(wikipedia_dir, cache_dir=tmp_path)
    dm.setup()
    assert (len(dm.split.query), len(dm.split.database), len(dm.split.train)) == (693, 2173, 2173)
    assert (dm.image_dim, dm.text_dim, dm.num_classes) == (128, 1000, 10)
    assert set(dm.split.query) == set(range(2173, 2866)) and len(dm.split.val) == 0
    assert (dm.data.labels.sum(1) == 1).all()  # single-label, one-hot
    assert not np.array_equal(dm.split.database, np.sort(dm.split.database))  # database order is shuffled
    batch = next(iter(dm.test_dataloader()[1]))
    assert set(batch) == {"index", "image", "text", "labels"}
    assert batch["index"][:3].tolist() == [0, 1, 2]  # position in the database order
    lda = WikipediaDataModule(wikipedia_dir, cache_dir=tmp_path, text_features="lda")
    lda.setup()
    assert lda.text_dim == 10


def test_split_is_saved_reused_and_checked(tmp_path):
    dm = ToyDataModule(cache_dir=tmp_path)
    dm.setup()
    path = dm.split_path()
    assert path.exists() and path.with_name(path.name + ".sha256").exists()
    again = ToyDataModule(cache_dir=tmp_path)
    again.setup()
    for role in ("query", "train", "database", "val"):
        assert np.array_equal(dm.split.role(role), again.split.role(role))
    split = dm.split
    assert len(np.intersect1d(split.query, split.database)) == 0
    assert np.isin(split.train, split.database).all()  # the field's convention
    assert not np.isin(split.val, split.train).any() and np.isin(split.val, split.database).all()
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    with pytest.raises(DataError, match="does not match its checksum"):
        ToyDataModule(cache_dir=tmp_path).setup()


def test_split_seed_changes_the_split_and_subset_scales_it(tmp_path):
    a, b = ToyDataModule(cache_dir=tmp_path), ToyDataModule(cache_dir=tmp_path, split_seed=1)
    small = ToyDataModule(cache_dir=tmp_path, subset=500)
    for dm in (a, b, small):
        dm.setup()
    assert not np.array_equal(a.split.query, b.split.query)
    assert (len(small.split.query), len(small.split.train), len(small.split.database)) == (50, 250, 450)


def test_toy_is_deterministic_and_learnable_by_design():
    a, b = ToyDataModule().load(), ToyDataModule().load()
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    chance = ((a.labels @ a.labels.T) > 0).mean()
    assert chance < 0.15


@pytest.fixture
def wikipedia_copy(wikipedia_dir, tmp_path):
    copy = tmp_path / "wikipedia"
    shutil.copytree(wikipedia_dir, copy)
    for f in copy.iterdir():
        f.chmod(0o644)
    return copy


def load(path):
    WikipediaDataModule(path, cache_dir=path.parent / "cache").setup()


def test_missing_file_is_named(wikipedia_copy):
    (wikipedia_copy / "testset_txt_img_cat.list").unlink()
    with pytest.raises(DataError, match="testset_txt_img_cat.list: file not found"):
        load(wikipedia_copy)


def test_wrong_variable_names_are_named(wikipedia_copy):
    mat = scipy.io.loadmat(wikipedia_copy / "raw_features.mat")
    scipy.io.savemat(wikipedia_copy / "raw_features.mat", {"img_tr": mat["I_tr"], "T_tfidf_tr": mat["T_tfidf_tr"]})
    with pytest.raises(DataError, match=r"raw_features.mat: missing variables \['I_tr', 'I_te', 'T_tfidf_te'\]"):
        load(wikipedia_copy)


def test_mismatched_row_counts_are_named(wikipedia_copy):
    listing = wikipedia_copy / "trainset_txt_img_cat.list"
    listing.write_text("\n".join(listing.read_text().splitlines()[:-5]) + "\n")
    with pytest.raises(DataError, match="I_tr has 2173 rows but .*trainset_txt_img_cat.list lists 2168 pairs"):
        load(wikipedia_copy)


def test_bad_category_line_is_named(wikipedia_copy):
    listing = wikipedia_copy / "testset_txt_img_cat.list"
    lines = listing.read_text().splitlines()
    lines[4] = lines[4].rsplit("\t", 1)[0] + "\t11"
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="testset_txt_img_cat.list:5: expected"):
        load(wikipedia_copy)


def test_labels_without_positive_are_refused():
    from datamodules.records import CrossModalData

    labels = np.array([[1, 0], [0, 0]], np.uint8)
    with pytest.raises(DataError, match="labels.mat: 1 items have no positive label"):
        CrossModalData(name="x", ids=np.array(["a", "b"]), labels=labels, image=np.zeros((2, 3)), text=np.zeros((2, 3)),
                       label_names=("p", "q"), source="labels.mat")


def test_protocol_too_large_for_the_data():
    data = ToyDataModule(n_items=100).load()
    with pytest.raises(DataError, match="cannot hold 90 queries and 20 training items"):
        SplitProtocol("big", n_query=90, n_train=20).make(data, seed=0)
