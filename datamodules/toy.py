"""SYNTHETIC multi-label dataset generated in memory, for tests and quick runs. Not a benchmark.

Each item has 1-2 of `n_classes` labels. The labels drive both modalities through different random
maps: the image is a dense vector, tanh(labels A_I) B_I + noise + a common offset (real embeddings'
pairwise cosines are mostly positive); the text is a bag of tags drawn from tag preferences of the
item's labels, with some random tags. The modalities share only their semantics; a method that
learns it clearly beats chance, which stays low (~7%).
"""

import numpy as np

from datamodules.base import RetrievalDataModule
from datamodules.records import CrossModalData
from datamodules.splits import SplitProtocol


def make_toy(n_items: int, n_classes: int, image_dim: int, text_dim: int, noise: float, offset: float,
             seed: int, tags_per_item: int = 8) -> CrossModalData:
    rng = np.random.default_rng(seed)
    labels = np.zeros((n_items, n_classes), np.uint8)
    labels[np.arange(n_items), rng.integers(0, n_classes, n_items)] = 1
    second = rng.random(n_items) < 0.3
    labels[np.flatnonzero(second), rng.integers(0, n_classes, second.sum())] = 1
    y = labels.astype(np.float32)
    image = np.tanh(y @ rng.normal(size=(n_classes, 64))) @ rng.normal(size=(64, image_dim)) / 8
    image += noise * rng.normal(size=image.shape)
    # Real embeddings share a common direction (pairwise cosines mostly positive); so do these.
    image += offset * np.linalg.norm(image, axis=1).mean() * rng.normal(size=image_dim) / np.sqrt(image_dim)
    # Texts are bags of tags: each label favours a few tags; a fraction `noise / 4` of tags is random.
    tag_weights = np.exp(2.5 * rng.normal(size=(n_classes, text_dim)))
    text = np.zeros((n_items, text_dim), np.float32)
    for i in range(n_items):
        p = y[i] @ tag_weights
        p = (1 - noise / 4) * p / p.sum() + noise / 4 / text_dim
        text[i, rng.choice(text_dim, tags_per_item, replace=False, p=p)] = 1
    return CrossModalData(name="toy", ids=np.array([f"toy{i}" for i in range(n_items)]), labels=labels,
                          image=image.astype(np.float32), text=text,
                          label_names=tuple(f"class{c}" for c in range(n_classes)), source="<synthetic toy data>")


class ToyDataModule(RetrievalDataModule):
    """SYNTHETIC multi-label data generated in memory (module docstring), for tests and quick runs, never for
    tables: 2,000 items, 200 queries, 1,000 training items.

    Args:
        n_items: number of items.
        n_classes: number of labels.
        image_dim: width of the image vectors.
        text_dim: size of the tag vocabulary.
        noise: scale of the image noise (and a quarter of it: the share of random tags).
        offset: scale of the direction all image vectors share.
        data_seed: seed of the generator (the split has its own, split_seed).
    """

    name = "toy"
    backbone = "synthetic"
    protocols = {"standard": SplitProtocol("random-200q-1000t", n_query=200, n_train=1000, n_val=200)}

    def __init__(self, *args, n_items: int = 2000, n_classes: int = 24, image_dim: int = 128, text_dim: int = 256,
                 noise: float = 1.0, offset: float = 1.0, data_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 <= noise <= 4:  # a quarter of it is the share of random tags
            raise ValueError(f"noise must be between 0 and 4, got {noise}")
        if not abs(offset) < 1e6 or min(n_items, n_classes, image_dim, text_dim) < 1:
            raise ValueError("n_items, n_classes, image_dim and text_dim must be positive and offset a moderate number")
        self.generator = dict(n_items=n_items, n_classes=n_classes, image_dim=image_dim, text_dim=text_dim,
                              noise=noise, offset=offset, seed=data_seed)

    def split_key(self) -> tuple:
        return tuple(self.generator.values())

    def load(self) -> CrossModalData:
        return make_toy(**self.generator)
