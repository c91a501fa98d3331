"""MIRFlickr-25K (Huiskes & Lew 2008): the 20,015-pair cross-modal subset with 24 labels and tags.

Three sources, one record set:
- `official` (default): the official archive and annotations (downloaded when absent, MD5-checked,
  resumable). Items with at least one of the 24 labels and at least one of the frequent tags listed in
  mirflickr/doc/common_tags.txt are kept, in image-number order; labels are the 24 annotation files
  without the `_r1` duplicates, in alphabetical order; the text is the item's processed tags
  (mirflickr/meta/tags/tags<k>.txt), as a bag of words over common_tags.txt in file order.
- `lists`: the community text lists all_imgs.txt / all_tags.txt / all_labels.txt with TagList.txt.
- `mat`: the DCMH .mat files, mirflickr25k-lall.mat (LAll) and mirflickr25k-yall.mat (YAll), with
  images from mirflickr25k-iall.mat (IAll, pixel arrays) or image features (XAll).
With `only_with_images`, rows whose image file is missing are dropped instead of refused: that is how
the real photos of the embedded 730-pair set (datamodules/mirflickr_mini.py) are read.
"""

import re
from pathlib import Path
from typing import Literal

import numpy as np

from common.errors import DataError
from datamodules.download import Remote, fetch_all, mirrored
from datamodules.encoded import EncodedDataModule, TextBackbone
from datamodules.matfiles import read_dcmh_mats
from datamodules.records import Annotations, CrossModalData, require_images
from datamodules.splits import SplitProtocol

LABELS = ("animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor", "lake", "male",
          "night", "people", "plant_life", "portrait", "river", "sea", "sky", "structures", "sunset", "transport",
          "tree", "water")
BASE_URL = "http://press.liacs.nl/mirflickr/mirflickr25k.v3b/"
ANNOTATIONS = "mirflickr25k_annotations_v080.zip"
REMOTES = (Remote(BASE_URL + "mirflickr25k.zip", "mirflickr25k.zip", "a23d0a8564ee84cda5622a6c2f947785", 3069184257),
           Remote(BASE_URL + ANNOTATIONS, ANNOTATIONS, "aa0138c79892b1b670184d142380948f", 207220))


def read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def read_vocabulary(path: Path) -> list[str]:
    """common_tags.txt ('tag count' lines) or TagList.txt (one tag per line)."""
    vocabulary = []
    for number, line in enumerate(read_lines(path), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
            raise DataError(f"{path}:{number}: expected 'tag' or 'tag count', got {line!r}")
        vocabulary.append(fields[0])
    if len(set(vocabulary)) != len(vocabulary):
        raise DataError(f"{path}: the vocabulary lists a tag twice")
    return vocabulary


class MIRFlickrDataModule(EncodedDataModule):
    """MIRFlickr-25K, the 20,015 pairs with one of 24 labels and one of the 1,386 frequent tags. Standard
    protocol: 2,000 queries, 10,000 training items, database = the rest (`mini`: 100 and 400, for the 730-image
    real subset and CI; `per-label`: DJSRH's and CAGAN's split).

    Args:
        source: `official` (the archive and annotations; downloaded when absent), `lists` (the community text
            lists all_imgs.txt, all_tags.txt, all_labels.txt, TagList.txt) or `mat` (the DCMH .mat files).
        download: download the official files when they are not in data_dir.
        base_url: where the official files are served (a mirror).
        checksums: {file name: MD5} of a mirror that serves other bytes.
        only_with_images: drop rows whose image file is missing instead of refusing them.
        image_dir: the folder of the images (relative to data_dir), for the lists source.
        text_backbone: `bow` (the tag bag of words, the field's choice), `clip` or `minilm` over the tags joined
            by spaces.
    """

    name = "mirflickr25k"
    protocols = {"standard": SplitProtocol("standard-2000q-10000t", n_query=2000, n_train=10000, n_val=1000),
                 "mini": SplitProtocol("mini-100q-400t", n_query=100, n_train=400, n_val=100),
                 # DJSRH's and CAGAN's code: 160 queries and 400 training items from the first label, 80 and 200
                 # from each later one (2,000 and 5,000 in all)
                 "per-label": SplitProtocol("per-label-2000q-5000t", n_train=5000, n_val=1000,
                                            per_label=((160, 400), (80, 200)))}

    def __init__(self, *args, source: Literal["official", "lists", "mat"] = "official", download: bool = True,
                 base_url: str = BASE_URL, checksums: dict[str, str] | None = None, only_with_images: bool = False,
                 image_dir: str | None = None, text_backbone: TextBackbone = "bow", **kwargs):
        super().__init__(*args, text_backbone=text_backbone, **kwargs)
        self.source, self.download, self.only_with_images = source, download, only_with_images
        self.image_dir = Path(image_dir) if image_dir else None
        self.remotes = mirrored(REMOTES, BASE_URL, base_url, checksums)

    def fetch(self) -> None:
        if self.source == "official" and self.download:
            fetch_all(self.remotes, self.root, offline=(
                "without a network: an extracted folder with --data.download=false --data.data_dir=DIR, the "
                "community files with --data.source=lists (or mat) --data.data_dir=DIR, or the embedded 730 real "
                "pairs with --dataset mirflickr25k_mini"))

    def load(self) -> CrossModalData:
        annotations = getattr(self, f"_read_{self.source}")()
        images = annotations.images
        if self.only_with_images and isinstance(images, list):
            keep = np.flatnonzero([Path(p).exists() for p in images])
            if not len(keep):
                raise DataError(f"{self.root}: none of the {len(images)} images exists (looked for e.g. {images[0]})")
            annotations = annotations.take(keep)
        elif isinstance(images, list):
            require_images(images, "; supply the images or set only_with_images=true")
        return annotations.records(self.name, self.backbones["text"])

    def _image_path(self, relative: str) -> str:
        if self.image_dir is None:
            return str(self.root / relative)
        return str((self.root / self.image_dir) / Path(relative).name)  # image_dir may be relative to the root

    def _read_official(self) -> Annotations:
        base = self.root / "mirflickr"
        vocabulary = read_vocabulary(base / "doc" / "common_tags.txt")
        tag_files = {int(m.group(1)): p for p in (base / "meta" / "tags").glob("tags*.txt")
                     if (m := re.fullmatch(r"tags(\d+)\.txt", p.name))}
        if not tag_files:
            raise DataError(f"{base / 'meta' / 'tags'}: no tags<k>.txt files (is the archive extracted here?)")
        numbers = sorted(tag_files)
        row = {k: i for i, k in enumerate(numbers)}
        labels = np.zeros((len(numbers), len(LABELS)), np.uint8)
        for j, label in enumerate(LABELS):
            path = self._annotation_file(label)
            for number, line in enumerate(read_lines(path), 1):
                if line.strip():
                    if not line.strip().isdigit() or int(line) not in row:
                        raise DataError(f"{path}:{number}: {line!r} is not the number of an image in the archive")
                    labels[row[int(line)], j] = 1
        common = set(vocabulary)
        tags = [[t.strip() for t in read_lines(tag_files[k]) if t.strip() in common] for k in numbers]
        selected = [i for i in range(len(numbers)) if labels[i].any() and tags[i]]
        return Annotations(ids=np.array([f"im{numbers[i]}" for i in selected]), labels=labels[selected],
                           label_names=LABELS, images=[str(base / f"im{numbers[i]}.jpg") for i in selected],
                           texts=[tags[i] for i in selected], vocabulary=vocabulary, source=str(self.root))

    def _annotation_file(self, label: str) -> Path:
        found = sorted(self.root.glob(f"{label}.txt")) + sorted(self.root.glob(f"*/{label}.txt"))
        found = [p for p in found if p.parent != self.root / "mirflickr"]  # the archive's own folder holds no labels
        if not found:
            raise DataError(f"{self.root}: annotation file {label}.txt not found "
                            f"(extract {ANNOTATIONS} here)")
        return found[0]

    def _read_lists(self) -> Annotations:
        root = self.root
        paths = [p.strip() for p in read_lines(root / "all_imgs.txt") if p.strip()]
        tags = [[t for t in line.strip().split(",") if t] for line in read_lines(root / "all_tags.txt")][:len(paths)]
        label_lines = [line.split() for line in read_lines(root / "all_labels.txt") if line.strip()]
        if not (len(paths) == len(tags) == len(label_lines)):
            raise DataError(f"{root}: all_imgs.txt, all_tags.txt and all_labels.txt have {len(paths)}, {len(tags)} "
                            f"and {len(label_lines)} rows; they must match row for row")
        bad = next((i for i, fields in enumerate(label_lines) if len(fields) != len(LABELS)
                    or set(fields) - {"0", "1"}), None)
        if bad is not None:
            raise DataError(f"{root / 'all_labels.txt'}:{bad + 1}: expected {len(LABELS)} flags 0/1")
        ids = []
        for number, path in enumerate(paths, 1):
            if not (match := re.search(r"im(\d+)", path)):
                raise DataError(f"{root / 'all_imgs.txt'}:{number}: {path!r} names no image im<number>.jpg")
            ids.append(f"im{int(match.group(1))}")
        return Annotations(ids=np.array(ids), labels=np.array(label_lines, np.uint8), label_names=LABELS,
                           images=[self._image_path(p) for p in paths], texts=tags,
                           vocabulary=read_vocabulary(root / "TagList.txt"), source=str(root))

    def _read_mat(self) -> Annotations:
        labels, bow, images = read_dcmh_mats(self.root, "mirflickr25k")
        return Annotations(ids=np.array([f"im{k}" for k in range(1, len(labels) + 1)]), labels=labels,
                           label_names=LABELS, images=images, texts=bow,
                           vocabulary=[str(j) for j in range(bow.shape[1])], source=str(self.root))
