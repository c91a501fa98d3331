"""MS-COCO 2014 and NUS-WIDE from miniature folders in their official layouts."""

import json
import os
import zipfile

import numpy as np
import pytest
import torch

from common.errors import DataError
from datamodules import coco, nuswide
from datamodules.coco import COCODataModule
from datamodules.download import md5_file
from datamodules.nuswide import NUSWIDEDataModule, NUSWIDETC10DataModule

from archives import build_coco_archives, build_nuswide_folder
from conftest import SHARED_DATA
from servers import FileServer

MIR = SHARED_DATA / "mirflickr25k"
pytestmark = pytest.mark.shared_data("mirflickr25k")


def test_coco_official_archives_downloaded_selected_and_featurized(tmp_path):
    served = tmp_path / "served"
    expected = build_coco_archives(MIR, served)
    checksums = {p.name: md5_file(p) for p in served.rglob("*.zip")}
    with FileServer(served) as server:
        dm = COCODataModule(tmp_path / "coco", base_url=server.url, checksums=checksums, protocol="mini",
                            image_backbone="efficientnet-lite0", text_backbone="minilm", cache_dir=tmp_path / "cache")
        dm.prepare_data()
        dm.setup()
    data = dm.data
    assert list(data.ids) == expected["ids"]  # unlabelled images dropped; train then val, by image id
    assert np.array_equal(data.labels, expected["labels"]) and data.label_names == ("person", "car", "dog")
    assert (dm.image_dim, dm.text_dim) == (1280, 384)
    raw = COCODataModule(tmp_path / "coco", download=False, cache_dir=tmp_path / "cache").load()
    assert raw.text == expected["captions"]
    joined = COCODataModule(tmp_path / "coco", download=False, caption="all", cache_dir=tmp_path / "cache").load()
    assert joined.text[0] == expected["captions"][0] + " " + expected["captions"][0].replace("caption 1", "caption 2")
    bow = COCODataModule(tmp_path / "coco", download=False, text_backbone="bow", bow_size=5,
                         cache_dir=tmp_path / "cache").load()
    assert bow.text.shape == (len(expected["ids"]), 5) and set(np.unique(bow.text)) <= {0, 1}



def test_parsed_annotations_are_cached_until_a_file_changes(tmp_path, monkeypatch, caplog):
    build_coco_archives(MIR, tmp_path / "served")
    for archive in (tmp_path / "served").rglob("*.zip"):
        zipfile.ZipFile(archive).extractall(tmp_path / "coco")
    first = COCODataModule(tmp_path / "coco", download=False, cache_dir=tmp_path / "cache").load()
    parsed = []
    monkeypatch.setattr(coco, "read_json", lambda path: parsed.append(path) or json.loads(path.read_text()))
    again = COCODataModule(tmp_path / "coco", download=False, cache_dir=tmp_path / "cache").load()
    assert parsed == [] and list(again.ids) == list(first.ids) and again.text == first.text
    assert np.array_equal(again.labels, first.labels) and again.image == first.image
    COCODataModule(tmp_path / "coco", download=False, caption="all", cache_dir=tmp_path / "cache").load()
    assert len(parsed) == 4  # another reader setting: parsed again
    captions = tmp_path / "coco" / "annotations" / "captions_val2014.json"
    os.utime(captions, ns=(captions.stat().st_atime_ns, captions.stat().st_mtime_ns + 10**9))
    COCODataModule(tmp_path / "coco", download=False, cache_dir=tmp_path / "cache").load()
    assert len(parsed) == 8  # a changed file: parsed again
    for cached in (tmp_path / "cache" / "annotations").glob("coco-*.npz"):
        cached.write_bytes(b"damaged")
    with caplog.at_level("WARNING", logger="cmhb"):
        COCODataModule(tmp_path / "coco", download=False, cache_dir=tmp_path / "cache").load()
    assert len(parsed) == 12 and "damaged or incomplete annotation cache" in caplog.text
    # NUS-WIDE's flag files likewise: the second load reads none of them.
    build_nuswide_folder(MIR, tmp_path / "nus")
    first = NUSWIDEDataModule(tmp_path / "nus", cache_dir=tmp_path / "cache").load()
    monkeypatch.setattr(nuswide, "read_flags", lambda *a: pytest.fail("parsed again"))
    again = NUSWIDEDataModule(tmp_path / "nus", cache_dir=tmp_path / "cache").load()
    assert np.array_equal(again.text, first.text) and again.text.dtype == np.uint8 and again.image == first.image


def test_coco_missing_annotation_is_named(tmp_path):
    with pytest.raises(DataError, match="instances_train2014.json: file not found"):
        COCODataModule(tmp_path, download=False).load()


@pytest.mark.parametrize("module,concepts", [(NUSWIDEDataModule, 21), (NUSWIDETC10DataModule, 10)])
def test_nuswide_keeps_the_most_frequent_concepts(module, concepts, tmp_path):
    labels = build_nuswide_folder(MIR, tmp_path / "nus")
    top = sorted(sorted(range(25), key=lambda j: (-int(labels[:, j].sum()), j))[:concepts])
    dm = module(tmp_path / "nus", protocol="mini", image_backbone="efficientnet-lite0", cache_dir=tmp_path / "cache")
    dm.prepare_data()
    dm.setup()
    rows = np.flatnonzero(labels[:, top].any(1))
    assert np.array_equal(dm.data.labels, labels[np.ix_(rows, top)])
    assert dm.data.label_names == tuple(f"c{j:02d}" for j in top)
    assert 3 not in [int(i.split("_")[0].split("/")[1]) for i in dm.data.ids]
    assert (dm.image_dim, dm.text_dim, dm.num_classes) == (1280, 1000, concepts)
    # The tag bag of words is held as uint8 flags (a quarter of float32's memory) and served as float32.
    assert dm.data.text.dtype == np.uint8 and dm.datasets["train"][0]["text"].dtype == torch.float32


def test_nuswide_missing_images_say_what_to_supply_and_where(tmp_path):
    build_nuswide_folder(MIR, tmp_path / "nus", with_images=False)
    with pytest.raises(DataError, match=r"image not found \(\d+ of \d+ missing\)\. NUS-WIDE images are not "
                                        r"distributed officially.*Flickr/<concept>/<file>.jpg"):
        NUSWIDEDataModule(tmp_path / "nus").load()


def test_nuswide_row_count_mismatch_is_named(tmp_path):
    build_nuswide_folder(MIR, tmp_path / "nus")
    tags = tmp_path / "nus" / "NUS_WID_Tags" / "AllTags1k.txt"
    tags.write_text("\n".join(tags.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match="AllTags1k.txt: 47 rows, but ImageList/Imagelist.txt lists 48 images"):
        NUSWIDEDataModule(tmp_path / "nus").load()


def test_coco_community_mat_files(tmp_path):
    """index.mat / caption.mat / label.mat as the CLIP-based hashing codebases ship them."""
    import scipy.io

    photos = sorted((MIR / "images").glob("im*.jpg"))[:3]
    for photo in photos:
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / photo.name).write_bytes(photo.read_bytes())
    scipy.io.savemat(tmp_path / "index.mat", {"index": np.array([f"images/{p.name}" for p in photos], dtype=object)})
    scipy.io.savemat(tmp_path / "caption.mat", {"caption": np.array(["a dog", "two cats", "a red car"], dtype=object)})
    scipy.io.savemat(tmp_path / "label.mat", {"category": np.array([[1, 0], [0, 1], [1, 1]], np.uint8)})
    data = COCODataModule(tmp_path, source="mat").load()
    assert data.text == ["a dog", "two cats", "a red car"] and data.labels.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert data.image == [str(tmp_path / "images" / p.name) for p in photos]
    scipy.io.savemat(tmp_path / "caption.mat", {"caption": np.array(["a dog", "two cats"], dtype=object)})
    with pytest.raises(DataError, match="have 3, 2 and 3 rows"):
        COCODataModule(tmp_path, source="mat").load()


def test_nuswide_dcmh_mat_files_with_lazy_iall_pixels(tmp_path):
    """The .mat source keeps IAll lazy (read one image at a time) through the concept selection."""
    import h5py
    import scipy.io

    rng = np.random.default_rng(0)
    labels = (rng.random((12, 12)) < 0.3).astype(np.uint8)
    labels[0] = 0  # no label among any concept: dropped
    scipy.io.savemat(tmp_path / "nus-wide-tc10-lall.mat", {"LAll": labels})
    scipy.io.savemat(tmp_path / "nus-wide-tc10-yall.mat", {"YAll": (rng.random((12, 30)) < 0.2).astype(np.uint8)})
    pixels = rng.integers(0, 255, (8, 6, 3, 12), dtype=np.uint8)  # MATLAB order: h x w x 3 x n
    with h5py.File(tmp_path / "nus-wide-tc10-iall.mat", "w") as f:
        f["IAll"] = pixels.transpose(3, 2, 1, 0)
    data = NUSWIDETC10DataModule(tmp_path, source="mat").load()
    rows = np.flatnonzero(data.labels.any(1))
    assert len(data) == len(rows) and len(data) < 12
    kept = [int(i) for i in data.ids]
    assert np.array_equal(data.image[1], pixels[..., kept[1]])
