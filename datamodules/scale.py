"""SYNTHETIC stand-ins with the exact shape of the benchmarks, for measuring speed and memory at full scale.

Each shape copies one benchmark's item count, split protocol (the real datamodule's), label count and
label density, and the feature widths of the suite's default backbones for it: CLIP ViT-B/32 images
(512-d) and, as the dataset's config file says, the tag bag of words (MIRFlickr 1,386-d, NUS-WIDE 1,000-d)
or CLIP text (512-d, MS-COCO). Labels drive both modalities (prototypes plus noise; tags a label owns),
so methods train as they would on real data. The numbers measured on it are speeds and memory, never
results: no config file names it, and it never writes a result row.

Label statistics: MIRFlickr's per-label frequencies and tags per item are those of the real label and tag
matrices (mirflickr25k-lall.mat / -yall.mat; a test checks them against the files). NUS-WIDE and MS-COCO
label matrices are not available offline: their labels per item (about 1.9 for NUS-WIDE's 21 and 10
concepts, about 2.9 for MS-COCO's 80 labels over the images that have one) are ASSUMPTIONS within
published figures, spread over the labels with Zipf-shaped frequencies.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from datamodules.base import RetrievalDataModule
from datamodules.coco import COCODataModule
from datamodules.mirflickr import MIRFlickrDataModule
from datamodules.nuswide import NUSWIDEDataModule, NUSWIDETC10DataModule
from datamodules.records import CrossModalData

# Column means of mirflickr25k-lall.mat (20,015 x 24), in the suite's label order.
MIRFLICKR_LABEL_FREQUENCY = (0.1323, 0.0089, 0.0322, 0.0493, 0.1614, 0.0290, 0.2305, 0.0776, 0.0406, 0.3158, 0.0352,
                             0.2370, 0.1121, 0.3921, 0.3704, 0.1369, 0.0405, 0.0566, 0.3406, 0.4228, 0.0919, 0.1224,
                             0.1989, 0.1441)
MIRFLICKR_TAGS_PER_ITEM = 4.64  # mean row sum of mirflickr25k-yall.mat


@dataclass(frozen=True)
class Shape:
    items: int
    protocol: object
    label_frequency: tuple[float, ...]
    text_dim: int  # the bag of words' vocabulary, or 512 for dense CLIP text
    tags_per_item: float = 0.0  # bag-of-words texts only


def zipf_frequencies(labels: int, per_item: float) -> tuple[float, ...]:
    """Label frequencies falling as 1 / rank, scaled to `per_item` labels per item on average."""
    weights = 1 / np.arange(1, labels + 1)
    return tuple(np.minimum(weights / weights.sum() * per_item, 0.9).tolist())


SHAPES = {
    "mirflickr25k": Shape(20015, MIRFlickrDataModule.protocols["standard"], MIRFLICKR_LABEL_FREQUENCY, 1386,
                          MIRFLICKR_TAGS_PER_ITEM),
    "nuswide": Shape(195834, NUSWIDEDataModule.protocols["standard"], zipf_frequencies(21, 1.9), 1000, 5.0),
    "nuswide_tc10": Shape(186577, NUSWIDETC10DataModule.protocols["standard"], zipf_frequencies(10, 1.9), 1000, 5.0),
    "coco": Shape(122218, COCODataModule.protocols["standard"], zipf_frequencies(80, 2.9), 512),
}


def make_scale(shape: Shape, image_dim: int, seed: int, block: int = 16384) -> CrossModalData:
    """Label-driven synthetic items of `shape`, generated block by block (float32, no float64 temporaries)."""
    rng = np.random.default_rng(seed)
    frequency = np.asarray(shape.label_frequency, np.float32)
    classes = len(frequency)
    labels = (rng.random((shape.items, classes), np.float32) < frequency).astype(np.uint8)
    empty = np.flatnonzero(labels.sum(1) == 0)
    labels[empty, rng.choice(classes, len(empty), p=frequency / frequency.sum())] = 1
    prototypes = rng.standard_normal((classes, image_dim), np.float32)
    image = np.empty((shape.items, image_dim), np.float32)
    text = np.zeros((shape.items, shape.text_dim), np.float32)
    owned = rng.integers(0, shape.text_dim, (classes, 20))  # the tags each label tends to bring
    text_prototypes = rng.standard_normal((classes, shape.text_dim), np.float32)
    for start in range(0, shape.items, block):
        rows = slice(start, start + block)
        y = labels[rows].astype(np.float32)
        image[rows] = y @ prototypes + 2 * rng.standard_normal((len(y), image_dim), np.float32)
        if shape.tags_per_item:  # a bag of words: half of the tags from the item's labels, half at random
            per_tag = shape.tags_per_item / 2 / shape.text_dim
            text[rows] = rng.random((len(y), shape.text_dim), np.float32) < per_tag
            hit = (y[:, :, None] * (rng.random((len(y), classes, 20), np.float32) < shape.tags_per_item / 2 /
                                    (20 * max(frequency.sum(), 1)))).astype(bool)
            item, label, slot = np.nonzero(hit)
            text[start + item, owned[label, slot]] = 1
        else:
            text[rows] = y @ text_prototypes + 2 * rng.standard_normal((len(y), shape.text_dim), np.float32)
    return CrossModalData(name="scale", ids=np.arange(shape.items).astype(str), labels=labels, image=image, text=text,
                          label_names=tuple(f"label{c}" for c in range(classes)), source="<synthetic scale data>")


class ScaleDataModule(RetrievalDataModule):
    """SYNTHETIC data in the exact shape of one benchmark (module docstring), for speed and memory only."""

    name = "scale"
    protocols = {"standard": None}

    def __init__(self, *args, shape: Literal["mirflickr25k", "nuswide", "nuswide_tc10", "coco"] = "nuswide",
                 image_width: int = 512, data_seed: int = 0, **kwargs):
        self.protocols = {"standard": SHAPES[shape].protocol}
        super().__init__(*args, **kwargs)
        self.shape, self.image_width, self.data_seed = shape, image_width, data_seed

    @property
    def backbone(self) -> str:
        return f"synthetic-{self.shape}-shape"

    def split_key(self) -> tuple:
        return self.shape, self.image_width, self.data_seed

    def load(self) -> CrossModalData:
        return make_scale(SHAPES[self.shape], self.image_width, self.data_seed)
