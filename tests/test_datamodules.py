"""Datamodules: the real Wikipedia files, saved splits, the synthetic toy set, and clear errors on bad input."""

import shutil

import numpy as np
import pytest
import scipy.io
import torch

from common.errors import DataError
from datamodules.mirflickr_mini import MIRFlickrMiniDataModule
from datamodules.splits import SplitProtocol
from datamodules.toy import ToyDataModule
from datamodules.wikipedia import EMBEDDED, WikipediaDataModule

from conftest import SHARED_DATA


def test_wikipedia_reads_the_embedded_official_files(tmp_path):
    dm = WikipediaDataModule(cache_dir=tmp_path)
    dm.setup()
    assert (len(dm.split.query), len(dm.split.database), len(dm.split.train)) == (693, 2173, 2000)
    assert (dm.image_dim, dm.text_dim, dm.num_classes) == (128, 1000, 10)
    assert set(dm.split.query) == set(range(2173, 2866)) and len(dm.split.val) == 173
    official = WikipediaDataModule(cache_dir=tmp_path, protocol="official")  # the field's: all 2,173 train
    official.setup()
    assert (len(official.split.train), len(official.split.val)) == (2173, 0)
    assert (dm.data.labels.sum(1) == 1).all()  # single-label, one-hot
    assert not np.array_equal(dm.split.database, np.sort(dm.split.database))  # database order is shuffled
    batch = next(iter(dm.test_dataloader()[1]))
    assert set(batch) == {"index", "image", "text", "labels"}
    assert batch["index"][:3].tolist() == [0, 1, 2]  # position in the database order
    lda = WikipediaDataModule(cache_dir=tmp_path, text_features="lda")
    lda.setup()
    assert lda.text_dim == 10


@pytest.mark.shared_data("wikipedia")
def test_embedded_wikipedia_files_are_the_official_ones():
    for path in EMBEDDED.iterdir():
        assert path.read_bytes() == (SHARED_DATA / "wikipedia" / path.name).read_bytes(), path.name


def test_embedded_mini_set_reads_with_its_protocol(tmp_path):
    dm = MIRFlickrMiniDataModule(cache_dir=tmp_path)
    dm.setup()
    assert (len(dm.split.query), len(dm.split.train), len(dm.split.database), len(dm.split.val)) == (100, 400, 630, 100)
    assert (dm.image_dim, dm.text_dim, dm.num_classes) == (1280, 1386, 24)
    assert dm.data.text.max() == 1 and dm.data.labels.sum(1).min() >= 1
    assert "not the benchmark" in dm.summary() and dm.describe()["backbone"] == "efficientnet-lite0+bow"
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "mirflickr25k_mini.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(DataError, match="copy/mirflickr25k_mini.npz: not a complete embedded-set file"):
        MIRFlickrMiniDataModule(str(tmp_path / "copy"), cache_dir=tmp_path).setup()


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



@pytest.mark.parametrize("damage", ["altered", "empty checksum", "no checksum"])
def test_a_damaged_split_file_is_named_and_made_again(damage, tmp_path, caplog):
    dm = ToyDataModule(cache_dir=tmp_path)
    dm.setup()
    path = dm.split_path()
    checksum = path.with_name(path.name + ".sha256")
    {"altered": lambda: path.write_bytes(path.read_bytes()[:-3] + b"xyz"), "empty checksum": lambda: checksum.write_text(""),
     "no checksum": checksum.unlink}[damage]()
    again = ToyDataModule(cache_dir=tmp_path)
    again.setup()
    assert f"{path}: split file not used: it does not match its checksum file" in caplog.text
    assert all(np.array_equal(dm.split.role(r), again.split.role(r)) for r in ("query", "train", "database", "val"))
    assert ToyDataModule(cache_dir=tmp_path).setup() is None and caplog.text.count("split file not used") == 1


def test_split_seed_changes_the_split_and_subset_scales_it(tmp_path):
    a, b = ToyDataModule(cache_dir=tmp_path), ToyDataModule(cache_dir=tmp_path, split_seed=1)
    small = ToyDataModule(cache_dir=tmp_path, subset=500)
    for dm in (a, b, small):
        dm.setup()
    assert not np.array_equal(a.split.query, b.split.query)
    assert (len(small.split.query), len(small.split.train), len(small.split.database)) == (50, 250, 450)


def test_the_training_features_are_in_the_order_of_the_training_batches_index(tmp_path):
    dm = ToyDataModule(cache_dir=tmp_path, batch_size=64)
    dm.setup()
    features, batch = dm.train_features(), next(iter(dm.train_dataloader()))
    assert features["image"].shape == (len(dm.split.train), dm.image_dim)
    for modality in ("image", "text"):
        assert torch.equal(features[modality][batch["index"]], batch[modality])


def test_toy_is_deterministic_and_learnable_by_design():
    a, b = ToyDataModule().load(), ToyDataModule().load()
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    chance = ((a.labels @ a.labels.T) > 0).mean()
    assert chance < 0.15


@pytest.fixture
def wikipedia_copy(tmp_path):
    copy = tmp_path / "wikipedia"
    shutil.copytree(EMBEDDED, copy)
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
