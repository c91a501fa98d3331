"""MIRFlickr-25K from its official layout (served locally), the community formats, and real features."""

import collections

import numpy as np
import pytest
import scipy.io

from common.errors import DataError
from datamodules.download import md5_file
from datamodules.mirflickr import LABELS, MIRFlickrDataModule
from datamodules.mirflickr_mini import EMBEDDED, MIRFlickrMiniDataModule, read_embedded
from datamodules.text import bag_of_words

from archives import build_mirflickr_archives, read_mirflickr_lists
from conftest import SHARED_DATA
from servers import FileServer
from training import chance, fit_and_test

MIR = SHARED_DATA / "mirflickr25k"
pytestmark = pytest.mark.shared_data("mirflickr25k")


def columns(matrix: np.ndarray) -> collections.Counter:
    return collections.Counter(col.tobytes() for col in np.ascontiguousarray(matrix.T.astype(np.uint8)))


def test_bag_of_words_from_raw_tags_is_yall_up_to_a_column_permutation():
    _, tags, labels = read_mirflickr_lists(MIR)
    bow = bag_of_words(tags, (MIR / "TagList.txt").read_text().split())
    yall = scipy.io.loadmat(MIR / "mirflickr25k-yall.mat")["YAll"]
    assert bow.shape == yall.shape == (20015, 1386)
    assert columns(bow) == columns(yall)
    assert np.array_equal(np.sort(bow.sum(1)), np.sort(yall.sum(1))) and np.array_equal(bow.sum(1), yall.sum(1))


def test_text_lists_and_mat_files_agree_row_for_row(tmp_path):
    lists = MIRFlickrDataModule(MIR, source="lists", only_with_images=False, image_dir=str(MIR / "images"),
                                cache_dir=tmp_path)
    annotations = lists._read_lists()
    lall = scipy.io.loadmat(MIR / "mirflickr25k-lall.mat")["LAll"]
    assert np.array_equal(annotations.labels, lall)
    assert len(annotations.ids) == 20015 and annotations.vocabulary == (MIR / "TagList.txt").read_text().split()
    (tmp_path / "mat").mkdir()
    for name in ("mirflickr25k-lall.mat", "mirflickr25k-yall.mat"):
        (tmp_path / "mat" / name).symlink_to(MIR / name)
    with pytest.raises(DataError, match="mirflickr25k-iall.mat not found"):
        MIRFlickrDataModule(tmp_path / "mat", source="mat", cache_dir=tmp_path).load()


def test_missing_images_get_one_clear_message(tmp_path):
    dm = MIRFlickrDataModule(MIR, source="lists", cache_dir=tmp_path)  # images are under images/, not mirflickr/
    with pytest.raises(DataError, match=r"mirflickr/im1.jpg: image not found \(20015 of 20015 missing\)"):
        dm.load()


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """The miniature official archive downloaded from a local server, selected and featurized once."""
    served = build_mirflickr_archives(MIR, tmp_path_factory.mktemp("served"))
    checksums = {p.name: md5_file(p) for p in served.iterdir()}
    root, cache = tmp_path_factory.mktemp("mirflickr"), tmp_path_factory.mktemp("cache")
    with FileServer(served) as server:
        dm = MIRFlickrDataModule(root, source="official", base_url=server.url, checksums=checksums,
                                 image_backbone="efficientnet-lite0", protocol="mini", cache_dir=str(cache))
        dm.prepare_data()
        dm.setup()
    return dm


@pytest.mark.slow
def test_official_layout_selection_matches_the_community_lists(official):
    numbers, tags, labels = read_mirflickr_lists(MIR)
    have = {int(p.stem[2:]) for p in (MIR / "images").glob("im*.jpg")}
    rows = [i for i, k in enumerate(numbers) if k in have]
    data = official.data
    assert len(data) == len(rows) == 730  # the 6 extra items lack a label or a frequent tag
    assert list(data.ids) == [f"im{numbers[i]}" for i in rows]
    assert np.array_equal(data.labels, labels[rows]) and data.label_names == LABELS
    vocabulary = (MIR / "TagList.txt").read_text().split()
    assert np.array_equal(data.text, bag_of_words([tags[i] for i in rows], vocabulary))
    assert data.image.shape == (730, 1280) and np.isfinite(data.image).all()  # real EfficientNet-Lite0 features
    assert official.describe()["backbone"] == "efficientnet-lite0+bow"


@pytest.mark.slow
def test_features_are_computed_once(official, monkeypatch):
    from datamodules import encoders

    def refuse(self, batch):
        raise AssertionError("features were computed again")

    monkeypatch.setattr(encoders.EfficientNetLite0Encoder, "forward", refuse)
    again = MIRFlickrDataModule(official.root, source="official", download=False, image_backbone="efficientnet-lite0",
                                protocol="mini", cache_dir=str(official.cache_dir))
    again.prepare_data()
    again.setup()
    assert np.array_equal(again.data.image, official.data.image)


@pytest.mark.slow
def test_cca_itq_beats_random_codes_on_the_real_subset(official):
    floor = chance(official)
    for direction, value in fit_and_test("cca_itq", "mirflickr25k", bits=32, data=official).items():
        assert value > floor + 0.03, (direction, value, floor)


@pytest.mark.slow
def test_embedded_mini_set_is_the_real_subset(official):
    """The bundled mirflickr25k_mini arrays are what `python -m datamodules.mirflickr_mini` computes from the
    real photos, tags and labels: the same rows, labels, tags and EfficientNet-Lite0 features."""
    embedded = read_embedded(EMBEDDED)
    data = official.data
    assert list(embedded["ids"]) == list(data.ids)
    assert np.array_equal(embedded["labels"], data.labels) and np.array_equal(embedded["tags"], data.text)
    assert list(embedded["vocabulary"]) == (MIR / "TagList.txt").read_text().split()
    np.testing.assert_allclose(embedded["image"], data.image, atol=1e-4)
    mini = MIRFlickrMiniDataModule(cache_dir=str(official.cache_dir))
    mini.setup()
    assert np.array_equal(mini.split.query, official.split.query)  # the same split protocol on the same rows
