"""`mirflickr25k_mini`: 730 REAL MIRFlickr-25K pairs embedded in the package, so the suite runs offline.

The pairs are the rows of the 20,015-pair cross-modal subset whose image is one of im1..im1000 (the real
photos the project's test data holds). What is embedded (datamodules/embedded/mirflickr25k_mini.npz):
ImageNet EfficientNet-Lite0 features of the real photos (1,280-d, the photos themselves are not
bundled), the real tags as a bag of words over the 1,386-tag vocabulary, the 24 real labels and the
item ids. It is a small real set for quick runs and tests, NOT the MIRFlickr-25K benchmark.

Rebuild the embedded file from the real photos, tags and labels (the community text lists):
    python -m datamodules.mirflickr_mini PATH/TO/mirflickr25k [--out FILE]
"""

import argparse
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from common.errors import DataError
from common.files import atomic_write_bytes
from datamodules.encoded import EncodedDataModule, TextBackbone
from datamodules.encoders import make_encoder
from datamodules.extraction import cached_features
from datamodules.mirflickr import LABELS, MIRFlickrDataModule, read_vocabulary
from datamodules.records import Annotations, CrossModalData
from datamodules.splits import SplitProtocol

EMBEDDED = Path(__file__).parent / "embedded" / "mirflickr25k_mini.npz"
IMAGE_BACKBONE = "efficientnet-lite0"
FIELDS = ("ids", "labels", "image", "tags", "vocabulary", "label_names", "meta")


def read_embedded(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an embedded-set file, each checked for presence and shape."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in FIELDS}
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found (the embedded MIRFlickr set; rebuild it with "
                        "`python -m datamodules.mirflickr_mini PATH/TO/mirflickr25k`)") from error
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a complete embedded-set file ({error})") from error
    n = len(arrays["ids"])
    expected = {"labels": (n, len(arrays["label_names"])), "tags": (n, len(arrays["vocabulary"]))}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise DataError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}")
    if arrays["image"].ndim != 2 or len(arrays["image"]) != n:
        raise DataError(f"{path}: image features have shape {arrays['image'].shape}, expected ({n}, d)")
    return arrays


class MIRFlickrMiniDataModule(EncodedDataModule):
    """The embedded 730 real MIRFlickr-25K pairs (module docstring): 100 queries, 400 training items,
    database = the other 630, 100 of them for validation. Not the benchmark (that is `mirflickr25k`).

    Args:
        data_dir: a folder holding another `mirflickr25k_mini.npz` (default: the embedded file).
        image_backbone: the embedded image features' backbone (they are EfficientNet-Lite0's; nothing else).
        text_backbone: `bow` (the tag bag of words) or a sentence encoder (`minilm`, `clip`) over the tags
            joined by spaces.
    """

    name = "mirflickr25k_mini"
    prepares = False  # the image features are embedded; only a sentence encoder's texts would be encoded
    protocols = {"mini": SplitProtocol("mini-100q-400t", n_query=100, n_train=400, n_val=100)}

    def __init__(self, *args, image_backbone: Literal["efficientnet-lite0"] = IMAGE_BACKBONE,
                 text_backbone: TextBackbone = "bow", **kwargs):
        super().__init__(*args, image_backbone=image_backbone, text_backbone=text_backbone, **kwargs)

    @property
    def path(self) -> Path:
        return self.data_dir / EMBEDDED.name if self.data_dir else EMBEDDED

    def describe(self) -> dict:
        return {**super().describe(), "note": "embedded 730-pair real subset of MIRFlickr-25K, not the benchmark "
                                              "(that is --dataset mirflickr25k)"}

    def load(self) -> CrossModalData:
        arrays = read_embedded(self.path)
        return Annotations(ids=arrays["ids"], labels=arrays["labels"], label_names=tuple(arrays["label_names"].tolist()),
                           images=arrays["image"].astype(np.float32), texts=arrays["tags"],
                           vocabulary=arrays["vocabulary"].tolist(), source=str(self.path)
                           ).records(self.name, self.backbones["text"])


def build(source: Path, out: Path = EMBEDDED) -> dict[str, np.ndarray]:
    """Recompute the embedded arrays from the real MIRFlickr text lists and photos under `source`
    (all_imgs.txt, all_tags.txt, all_labels.txt, TagList.txt and images/im<k>.jpg) and write them to `out`."""
    lists = MIRFlickrDataModule(data_dir=str(source), source="lists", only_with_images=True, image_dir="images",
                                image_backbone=IMAGE_BACKBONE, text_backbone="bow")
    data = lists.load()
    encoder = make_encoder(IMAGE_BACKBONE, "image")
    with tempfile.TemporaryDirectory() as scratch:
        image = cached_features(encoder, data.image, Path(scratch) / "features.npy")
    arrays = {"ids": data.ids.astype(str), "labels": data.labels.astype(np.uint8), "image": image.astype(np.float32),
              "tags": data.text.astype(np.uint8), "vocabulary": np.array(read_vocabulary(source / "TagList.txt")),
              "label_names": np.array(LABELS),
              "meta": np.array(json.dumps({"image_backbone": encoder.key, "text": "tag bag of words (TagList.txt)",
                                           "built_from": "all_imgs/all_tags/all_labels.txt + images/im<k>.jpg"}))}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(out, buffer.getvalue())
    return arrays


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Rebuild the embedded MIRFlickr-25K mini set from the real files.")
    parser.add_argument("source", type=Path, help="folder with the text lists, TagList.txt and images/")
    parser.add_argument("--out", type=Path, default=EMBEDDED)
    args = parser.parse_args()
    built = build(args.source, args.out)
    print(f"wrote {args.out}: {len(built['ids'])} pairs, image features {built['image'].shape[1]}-d, "
          f"{built['tags'].shape[1]} tags, {built['labels'].shape[1]} labels")
