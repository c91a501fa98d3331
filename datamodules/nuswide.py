"""NUS-WIDE (Chua et al. 2009): 269,648 Flickr images, 81 concepts, 1,000 tags. Images are not
distributed officially, so nothing is downloaded: the user supplies the files.

Sources:
- `official` (default): the official lists under the data folder,
    ImageList/Imagelist.txt, Groundtruth/AllLabels/Labels_<concept>.txt, NUS_WID_Tags/AllTags1k.txt and
    NUS_WID_Tags/TagList1k.txt, with the images under Flickr/<concept>/<file>.jpg (as Imagelist.txt names them).
  The `concepts` most frequent concepts are kept (ties by name), and the items with at least one of them:
  21 concepts -> 195,834 pairs (`nuswide`), 10 -> 186,577 (`nuswide_tc10`, the unsupervised papers').
- `mat`: the DCMH files <mat_prefix>-lall.mat / -yall.mat / -iall.mat.
Text: the 1,000-d tag bag of words (`bow`, default), or the present tags joined by spaces for `clip` / `minilm`.
"""

from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from common.errors import DataError
from datamodules.annotation_cache import cached_annotations
from datamodules.encoded import EncodedDataModule, TextBackbone
from datamodules.matfiles import read_dcmh_mats
from datamodules.records import Annotations, CrossModalData, require_images
from datamodules.splits import MINI, SplitProtocol

IMAGE_HELP = ("NUS-WIDE images are not distributed officially: request them from the dataset's authors and "
              "place them under {folder} as Flickr/<concept>/<file>.jpg, the paths ImageList/Imagelist.txt names; "
              "or use source=mat with the community .mat files (IAll pixels or XAll features)")


def read_flags(path: Path, rows: int | None = None) -> np.ndarray:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        flags = np.loadtxt(path, dtype=np.uint8, ndmin=2)
    except ValueError as error:
        raise DataError(f"{path}: expected rows of 0/1 flags ({error})") from error
    if rows is not None and len(flags) != rows:
        raise DataError(f"{path}: {len(flags)} rows, but ImageList/Imagelist.txt lists {rows} images")
    if flags.max(initial=0) > 1:
        raise DataError(f"{path}: flags must be 0 or 1")
    return flags


class NUSWIDEDataModule(EncodedDataModule):
    """NUS-WIDE with the 21 most frequent concepts (195,834 pairs): 2,100 queries, 10,500 training items.

    Args:
        source: `official` (the official lists and the images under data_dir; nothing is downloaded) or `mat`
            (the DCMH .mat files).
        text_backbone: `bow` (the 1,000-d tag bag of words), `clip` or `minilm` over the present tags joined by
            spaces.
    """

    name = "nuswide"
    concepts = 21
    mat_prefix = "nus-wide"
    protocols = {"standard": SplitProtocol("standard-2100q-10500t", n_query=2100, n_train=10500, n_val=1000),
                 "mini": MINI}

    def __init__(self, *args, source: Literal["official", "mat"] = "official", text_backbone: TextBackbone = "bow",
                 **kwargs):
        super().__init__(*args, text_backbone=text_backbone, **kwargs)
        self.source = source

    def load(self) -> CrossModalData:
        annotations = self._read_official() if self.source == "official" else self._read_mat()
        labels, names = annotations.labels, annotations.label_names
        concepts = sorted(sorted(range(len(names)), key=lambda j: (-int(labels[:, j].sum()), names[j]))[:self.concepts])
        annotations = replace(annotations, labels=labels[:, concepts], label_names=tuple(names[j] for j in concepts))
        annotations = annotations.take(np.flatnonzero(annotations.labels.any(1)))
        if isinstance(annotations.images, list):
            require_images(annotations.images, ". " + IMAGE_HELP.format(folder=self.root))
        return annotations.records(self.name, self.backbones["text"])

    def _read_official(self) -> Annotations:
        root = self.root
        files = [root / "ImageList" / "Imagelist.txt", *sorted((root / "Groundtruth" / "AllLabels").glob("Labels_*.txt")),
                 root / "NUS_WID_Tags" / "AllTags1k.txt"]
        files += [tags] if (tags := root / "NUS_WID_Tags" / "TagList1k.txt").exists() else []
        return cached_annotations(self.cache_dir / "annotations", "nuswide", files, {"version": 1},
                                  self._parse_official)

    def _parse_official(self) -> Annotations:
        root = self.root
        listing = root / "ImageList" / "Imagelist.txt"
        if not listing.exists():
            raise DataError(f"{listing}: file not found (the official NUS-WIDE image list)")
        entries = [line.strip().replace("\\", "/") for line in listing.read_text().splitlines() if line.strip()]
        relative = ["/".join(e.split("/")[-2:]) for e in entries]  # <concept>/<file>.jpg
        label_files = sorted((root / "Groundtruth" / "AllLabels").glob("Labels_*.txt"))
        if not label_files:
            raise DataError(f"{root / 'Groundtruth' / 'AllLabels'}: no Labels_<concept>.txt files")
        labels = np.concatenate([read_flags(p, len(entries)) for p in label_files], axis=1)
        bow = read_flags(root / "NUS_WID_Tags" / "AllTags1k.txt", len(entries))
        tag_list = root / "NUS_WID_Tags" / "TagList1k.txt"
        vocabulary = tag_list.read_text().split() if tag_list.exists() else [f"tag{j}" for j in range(bow.shape[1])]
        if len(vocabulary) != bow.shape[1]:
            raise DataError(f"{tag_list}: {len(vocabulary)} tags but AllTags1k.txt has {bow.shape[1]} columns")
        return Annotations(ids=np.array(relative), labels=labels,
                           label_names=tuple(p.stem.removeprefix("Labels_") for p in label_files),
                           images=[str(root / "Flickr" / r) for r in relative], texts=bow, vocabulary=vocabulary,
                           source=str(root))

    def _read_mat(self) -> Annotations:
        labels, bow, images = read_dcmh_mats(self.root, self.mat_prefix)
        return Annotations(ids=np.arange(len(labels)).astype(str), labels=labels,
                           label_names=tuple(f"concept{j}" for j in range(labels.shape[1])), images=images,
                           texts=(bow > 0).astype(np.uint8), vocabulary=[f"tag{j}" for j in range(bow.shape[1])],
                           source=str(self.root))


class NUSWIDETC10DataModule(NUSWIDEDataModule):
    """NUS-WIDE TC-10, the 10 most frequent concepts (186,577 pairs): 2,000 queries, 5,000 training items."""

    name = "nuswide_tc10"
    concepts = 10
    mat_prefix = "nus-wide-tc10"
    protocols = {"standard": SplitProtocol("standard-2000q-5000t", n_query=2000, n_train=5000, n_val=1000),
                 "mini": MINI,
                 # CAGAN's code: 200 queries and 500 training items from each of the 10 labels in turn
                 "per-label": SplitProtocol("per-label-2000q-5000t", n_train=5000, n_val=1000,
                                            per_label=((200, 500), (200, 500)))}
