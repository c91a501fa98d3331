"""Augmented views of training images, as CAGAN's code makes them, encoded once by a frozen backbone."""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from datamodules.encoders import Encoder, ImageEncoder, load_image, shorter_side


@dataclass(frozen=True)
class Augmentation:
    """Random views of a training image, as CAGAN's code makes them for frozen-backbone features: a horizontal
    flip with probability 1/2, the shorter side resized to `resize`, a random `crop` x `crop` square. View
    `v` of item `i` is the same on every run (seeded by `seed`, `i`, `v`)."""

    views: int
    resize: int = 256
    crop: int = 224
    seed: int = 0

    @property
    def key(self) -> str:
        return f"flip-resize{self.resize}-crop{self.crop}-{self.views}views-seed{self.seed}"

    def __call__(self, image: Image.Image, item: int, view: int) -> Image.Image:
        rng = np.random.default_rng([self.seed, item, view])
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = shorter_side(image, self.resize, Image.Resampling.BILINEAR)
        left, top = rng.integers(0, image.width - self.crop + 1), rng.integers(0, image.height - self.crop + 1)
        return image.crop((left, top, left + self.crop, top + self.crop))


class AugmentedViews(Encoder):
    """An image encoder applied to augmented views: items are (image, item number, view number)."""

    modality = "image"

    def __init__(self, encoder: ImageEncoder, augmentation: Augmentation):
        self.encoder, self.augmentation = encoder, augmentation

    @property
    def key(self) -> str:
        return f"{self.encoder.key}+{self.augmentation.key}"

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def preprocess(self, item) -> torch.Tensor:
        image, number, view = item
        return self.encoder.pixels(self.augmentation(load_image(image), number, view))

    def forward(self, batch):
        return self.encoder.forward(batch)

    def load(self):
        return self.encoder.net
