"""Sign random projections (Charikar 2002) per modality: the training-free floor of every table."""

import torch

from methods.base import ClosedFormHashing


class LSH(ClosedFormHashing):
    """Sign random projections per modality, h(x) = sign((x - mean) W), W drawn from N(0, 1) by the run seed.

    Only the feature means come from the training set (without centring, non-negative features such as bags of
    words map every item to one code). The two modalities share no projection, so cross-modal mAP sits at
    chance: the floor of every table.
    """

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.register_buffer("image_projection", torch.randn(image_dim, bits, dtype=torch.float64))
        self.register_buffer("text_projection", torch.randn(text_dim, bits, dtype=torch.float64))
        self.register_buffer("image_mean", torch.zeros(image_dim, dtype=torch.float64))
        self.register_buffer("text_mean", torch.zeros(text_dim, dtype=torch.float64))

    def fit(self, image, text, labels):
        self.image_mean.copy_(image.mean(0))
        self.text_mean.copy_(text.mean(0))

    def encode_image(self, image):
        return (image.double() - self.image_mean) @ self.image_projection

    def encode_text(self, text):
        return (text.double() - self.text_mean) @ self.text_projection
