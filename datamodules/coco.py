"""MS-COCO 2014 (Lin et al. 2014): train2014 + val2014 images with at least one of the 80 labels.

Sources:
- `official` (default): train2014.zip, val2014.zip and annotations_trainval2014.zip (downloaded when
  absent, MD5-checked, resumable). Labels come from the instance annotations (80 categories in
  category-id order), texts from the caption annotations. Items are train2014 then val2014 images,
  each in image-id order, keeping those with at least one labelled instance (about 122,218).
- `mat`: the community index.mat / caption.mat / label.mat files (image paths relative to the root,
  one caption per item, multi-hot labels), as the CLIP-based hashing codebases ship them.

caption: `first` (ASSUMPTION: the caption with the smallest annotation id) or `all` (all captions
joined). text_backbone `clip` (default) or `minilm` encode it; `bow` is a binary bag of the
`bow_size` most frequent caption words (ASSUMPTION: the field's 2,000-d COCO text, built here).
"""

import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from common.errors import DataError
from datamodules.annotation_cache import cached_annotations
from datamodules.download import Remote, fetch_all, mirrored
from datamodules.encoded import EncodedDataModule
from datamodules.matfiles import mat_strings, mat_variables, read_mat
from datamodules.records import Annotations, CrossModalData, require_images
from datamodules.splits import MINI, SplitProtocol

BASE_URL = "http://images.cocodataset.org/"
REMOTES = (Remote(BASE_URL + "zips/train2014.zip", "train2014.zip", "0da8c0bd3d6becc4dcb32757491aca88"),
           Remote(BASE_URL + "zips/val2014.zip", "val2014.zip", "a3d79f5ed8d289b7a7554ce06a5782b3"),
           Remote(BASE_URL + "annotations/annotations_trainval2014.zip", "annotations_trainval2014.zip",
                  "0a379cfc70b0e71301e0f377548639bd", 252872794))
PARTS = ("train2014", "val2014")


def read_json(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"{path}: file not found (extract annotations_trainval2014.zip into the data folder)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from error


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class COCODataModule(EncodedDataModule):
    """MS-COCO 2014, the images with at least one of the 80 labels (about 122,218), captions as texts. Standard
    protocol: 5,000 queries, 10,000 training items, database = the rest.

    Args:
        source: `official` (train2014, val2014 and the annotations; downloaded when absent) or `mat` (the
            community index.mat / caption.mat / label.mat).
        download: download the official files when they are not in data_dir.
        base_url: where the official files are served (a mirror).
        checksums: {file name: MD5} of a mirror that serves other bytes.
        caption: `first` (the caption with the smallest annotation id) or `all` (all captions joined).
        bow_size: the vocabulary of the `bow` text backbone: the most frequent caption words.
    """

    name = "coco"
    protocols = {"standard": SplitProtocol("standard-5000q-10000t", n_query=5000, n_train=10000, n_val=1000),
                 "mini": MINI}

    def __init__(self, *args, source: Literal["official", "mat"] = "official", download: bool = True,
                 base_url: str = BASE_URL, checksums: dict[str, str] | None = None,
                 caption: Literal["first", "all"] = "first", bow_size: int = 2000, **kwargs):
        super().__init__(*args, **kwargs)
        self.source, self.download, self.caption, self.bow_size = source, download, caption, bow_size
        self.remotes = mirrored(REMOTES, BASE_URL, base_url, checksums)

    def fetch(self) -> None:
        if self.source == "official" and self.download:
            fetch_all(self.remotes, self.root, offline=(
                "without a network: an extracted folder with --data.download=false --data.data_dir=DIR, or the "
                "community index/caption/label files with --data.source=mat --data.data_dir=DIR"))

    def load(self) -> CrossModalData:
        annotations = self._read_official() if self.source == "official" else self._read_mat()
        require_images(annotations.images)
        if self.backbones["text"] == "bow":  # the caption words, over the most frequent ones
            counts = Counter(w for t in annotations.texts for w in set(words(t)))
            vocabulary = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:self.bow_size]]
            annotations = replace(annotations, texts=[words(t) for t in annotations.texts], vocabulary=vocabulary)
        return annotations.records(self.name, self.backbones["text"])

    def _read_official(self) -> Annotations:
        files = [self.root / "annotations" / f"{kind}_{part}.json" for part in PARTS for kind in ("instances", "captions")]
        return cached_annotations(self.cache_dir / "annotations", self.name, files,
                                  {"caption": self.caption, "version": 1}, self._parse_official)

    def _parse_official(self) -> Annotations:
        root = self.root
        ids, paths, texts, rows = [], [], [], []
        categories = None
        for part in PARTS:
            instances = read_json(root / "annotations" / f"instances_{part}.json")
            captions = read_json(root / "annotations" / f"captions_{part}.json")
            part_categories = sorted((c["id"], c["name"]) for c in instances["categories"])
            if categories is None:
                categories = part_categories
            elif part_categories != categories:
                raise DataError(f"{root / 'annotations'}: train and val instance files list different categories")
            column = {cid: j for j, (cid, _) in enumerate(categories)}
            labelled = defaultdict(set)
            for a in instances["annotations"]:
                labelled[a["image_id"]].add(column[a["category_id"]])
            texts_of = defaultdict(list)
            for a in sorted(captions["annotations"], key=lambda a: a["id"]):
                texts_of[a["image_id"]].append(a["caption"].strip())
            for image in sorted(instances["images"], key=lambda i: i["id"]):
                if not labelled[image["id"]]:
                    continue
                if not texts_of[image["id"]]:
                    raise DataError(f"{root / 'annotations' / f'captions_{part}.json'}: image {image['id']} has no caption")
                ids.append(f"{part}/{image['id']}")
                paths.append(str(root / part / image["file_name"]))
                chosen = texts_of[image["id"]]
                texts.append(chosen[0] if self.caption == "first" else " ".join(chosen))
                rows.append(sorted(labelled[image["id"]]))
        labels = np.zeros((len(rows), len(categories)), np.uint8)
        for i, row in enumerate(rows):
            labels[i, row] = 1
        return Annotations(ids=np.array(ids), labels=labels, label_names=tuple(name for _, name in categories),
                           images=paths, texts=texts, vocabulary=None, source=str(root))

    def _read_mat(self) -> Annotations:
        root = self.root
        index = mat_strings(read_mat(root / "index.mat", "index"))
        captions = mat_strings(read_mat(root / "caption.mat", "caption"))
        label_file = root / "label.mat"
        name = next((n for n in ("category", "label", "LAll") if label_file.exists() and n in mat_variables(label_file)), "category")
        labels = read_mat(label_file, name).astype(np.uint8)
        if not len(index) == len(captions) == len(labels):
            raise DataError(f"{root}: index.mat, caption.mat and label.mat have {len(index)}, {len(captions)} and "
                            f"{len(labels)} rows; they must match row for row")
        return Annotations(ids=np.array([Path(p).stem for p in index]), labels=labels,
                           label_names=tuple(f"class{j}" for j in range(labels.shape[1])),
                           images=[str(root / p) for p in index], texts=captions, vocabulary=None, source=str(root))
