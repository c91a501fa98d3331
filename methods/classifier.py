"""The supervised floor: a plain label classifier per modality, its predicted label probabilities hashed by one
random projection both modalities share. Sablayrolles, Douze, Usunier and Jégou ("How should we evaluate
supervised hashing?", ICASSP 2017) showed that encoding a classifier's outputs beats supervised hashing methods
under the usual protocol: a supervised method has to beat this to have learned more than the labels."""

import torch
from torch import nn

from methods.base import GradientHashing


def classifier(dim: int, hidden: int, classes: int, dropout: float) -> nn.Module:
    """BatchNorm -> Linear(d, hidden) -> ReLU -> Dropout -> Linear(hidden, classes); hidden 0: linear."""
    if hidden == 0:
        return nn.Sequential(nn.BatchNorm1d(dim), nn.Dropout(dropout), nn.Linear(dim, classes))
    return nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, classes))


def projected_codes(probabilities: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """Continuous codes (p - 1/2) R: their signs are a SimHash of the predicted label vector, so items predicted
    to share labels get near codes, whichever modality predicted them."""
    return (probabilities - 0.5) @ projection


class LabelClassifier(GradientHashing):
    """Supervised floor: a label classifier per modality (binary cross-entropy on the multi-hot labels), its
    predicted label probabilities p hashed as sign((p - 1/2) R), R a classes x bits Gaussian matrix drawn from
    the run seed and shared by both modalities. No pairs, no retrieval loss.

    Design (the suite's; the paper encodes single-label predictions): the shared random projection turns any
    number of labels and code lengths into codes whose Hamming distance follows the angle between the
    predicted label vectors.

    Args:
        hidden: width of the classifiers' hidden layer (0: linear classifiers).
        dropout: dropout before the output layer.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
    """

    supervised = True

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, hidden: int = 1024,
                 dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 1e-5):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.save_hyperparameters()
        self.image_classifier = classifier(image_dim, hidden, num_classes, dropout)
        self.text_classifier = classifier(text_dim, hidden, num_classes, dropout)
        self.register_buffer("projection", torch.randn(num_classes, bits))

    def encode_image(self, image):
        return projected_codes(torch.sigmoid(self.image_classifier(image)), self.projection.to(image.dtype))

    def encode_text(self, text):
        return projected_codes(torch.sigmoid(self.text_classifier(text)), self.projection.to(text.dtype))

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        bce = nn.functional.binary_cross_entropy_with_logits
        labels = batch["labels"].to(batch["image"].dtype)
        terms = {"image": bce(self.image_classifier(batch["image"]), labels),
                 "text": bce(self.text_classifier(batch["text"]), labels)}
        terms["loss"] = terms["image"] + terms["text"]
        return terms

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
