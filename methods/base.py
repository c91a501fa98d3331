"""The base classes every hashing method extends: what a method is to the suite, and how it is trained.

A method maps a batch of each modality to continuous codes (`encode_image`, `encode_text`); evaluation takes
their signs and ranks by Hamming distance (benchmarks.execution.evaluation scores them; a method never does).
A method whose paper retrieves with real-valued features also gives `embed_image` / `embed_text` and `hash_embedding`.
Constructor parameters without a default are taken from the data (`data_arguments`); the others are the
method's options, whose defaults live in the signature and nowhere else.
"""

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol

import numpy as np
import torch
from lightning import LightningModule

from common.errors import TrainingDiverged
from methods.heads import HashMLP, epoch_alpha


class TrainingData(Protocol):
    """What a method may read from the datamodule it is built for (methods never import datamodules)."""

    image_dim: int | None  # feature width, None when batches carry raw pixels
    text_dim: int | None
    num_classes: int
    batch_size: int
    drop_last: bool
    train_labels: np.ndarray  # (n_train, classes) multi-hot labels of the training items
    text_is_bag_of_words: bool  # binary text features (tag or word presence), not a dense embedding

    def label_vectors(self) -> torch.Tensor | None:
        """One vector per label name (classes, d), from the source the data's settings name, or None."""

    def train_features(self) -> dict[str, torch.Tensor]:
        """{"image": (n_train, d_I), "text": (n_train, d_T)} features of the training items, in the order of
        the training batches' `index`."""


class HashingModule(LightningModule, ABC):
    """A cross-modal hashing method.

    Subclasses implement `encode_image` and `encode_text` (continuous codes of a batch) and Lightning's
    `training_step` and `configure_optimizers`; most do so through GradientHashing (named loss terms) or
    ClosedFormHashing (a fit on the whole training set). Validation and test steps return what evaluation
    scores (`evaluation_outputs`); benchmarks.execution.evaluation turns it into numbers.

    Args:
        bits: code length.
        image_dim: width of the image features (None when batches carry pixels).
        text_dim: width of the text features (None when batches carry token ids).
        num_classes: number of labels.
    """

    supervised: ClassVar[bool] = False  # reads labels while training: listed in the tables' supervised group
    # Submodules (attribute names) and arguments from the data that encoding never uses (discriminators,
    # decoders, the training set's features): a saved run leaves them out, so its folder holds what hashes new
    # items and little more; a method loaded from it gets None for such an argument.
    training_only: ClassVar[tuple[str, ...]] = ()

    def __init__(self, bits: int, image_dim: int | None, text_dim: int | None, num_classes: int):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be positive, got {bits}")
        self.bits, self.image_dim, self.text_dim, self.num_classes = bits, image_dim, text_dim, num_classes

    @classmethod
    def check_widths(cls, bits: int, image_dim: int | None, text_dim: int | None) -> None:
        """Refuse feature widths this method cannot work with at `bits` (None: not known yet). The runner asks
        before features are extracted, so that a misfit fails in seconds rather than after an extraction.

        Raises:
            ValueError: the widths do not fit (nothing by default).
        """

    @classmethod
    def data_arguments(cls, data: TrainingData) -> dict:
        """The constructor arguments taken from the data: feature widths and the number of labels here;
        methods that read more (training labels, label vectors, the batch size, a choice decided by the kind
        of text) extend it. The runner announces and records the choices among them.

        Args:
            data: a set-up datamodule.

        Returns:
            {parameter: value}.
        """
        return {"image_dim": data.image_dim, "text_dim": data.text_dim, "num_classes": data.num_classes}

    @classmethod
    def from_datamodule(cls, data: TrainingData, bits: int, **options) -> "HashingModule":
        """The method for the (set-up) datamodule it will train on.

        Args:
            data: a set-up datamodule.
            bits: code length.
            **options: the method's options (they win over what the data gives).

        Returns:
            The method, untrained.
        """
        return cls(bits=bits, **{**cls.data_arguments(data), **options})

    @abstractmethod
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Continuous codes (batch, bits) of an image batch; evaluation takes their signs."""

    @abstractmethod
    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Continuous codes (batch, bits) of a text batch."""

    def embed_image(self, image: torch.Tensor) -> torch.Tensor:
        """Real-valued common features of an image batch (only a real-valued method has them)."""
        raise NotImplementedError(f"{type(self).__name__} has no real-valued features")

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        """Real-valued common features of a text batch (only a real-valued method has them)."""
        raise NotImplementedError(f"{type(self).__name__} has no real-valued features")

    def hash_embedding(self, embedding: torch.Tensor, modality: str) -> torch.Tensor:
        """Continuous codes from a real-valued method's features (`modality`: image or text)."""
        raise NotImplementedError(f"{type(self).__name__} has no real-valued features")

    @property
    def real_valued(self) -> bool:
        """Whether the method also retrieves with real-valued features (it overrides `embed_image`)."""
        return type(self).embed_image is not HashingModule.embed_image

    def evaluation_outputs(self, batch: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """What evaluation scores for a batch: {score kind: (image output, text output)}; `hamming` codes, and for
        a real-valued method its `cosine` features (the codes are then computed from those features, once)."""
        if not self.real_valued:
            return {"hamming": (self.encode_image(batch["image"]), self.encode_text(batch["text"]))}
        image, text = self.embed_image(batch["image"]), self.embed_text(batch["text"])
        return {"hamming": (self.hash_embedding(image, "image"), self.hash_embedding(text, "text")),
                "cosine": (image, text)}

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self.evaluation_outputs(batch)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        return self.evaluation_outputs(batch)


class GradientHashing(HashingModule):
    """A method trained by gradient descent on named loss terms: subclasses give `losses(batch)` and
    `configure_optimizers`. A term or a gradient that is not finite stops the run (TrainingDiverged)."""

    @abstractmethod
    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Named loss terms of a training batch, the total under "loss"."""

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        for term, value in terms.items():
            if not torch.isfinite(value).all():
                raise TrainingDiverged(f"loss term {term!r} is {value.item()} at epoch {self.current_epoch}, step "
                                       f"{self.global_step}; the run is stopped (a smaller learning rate may help)")
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_epoch=True, on_step=False, sync_dist=True)
        return terms["loss"]

    def on_after_backward(self) -> None:
        gradients = [(name, p.grad) for name, p in self.named_parameters() if p.grad is not None]
        if gradients and not torch.stack([g.isfinite().all() for _, g in gradients]).all():
            name = next(name for name, g in gradients if not g.isfinite().all())
            raise TrainingDiverged(f"the gradient of {name} is not finite at epoch {self.current_epoch}, "
                                   f"step {self.global_step}; the run is stopped")


def modality_sgd(method: HashingModule, image_lr: float, text_lr: float, momentum: float, weight_decay: float
                 ) -> torch.optim.SGD:
    """SGD with a learning rate of its own for each modality's network (`image_hash`, `text_hash`): the two
    optimisers of DJSRH's code and its descendants, stepped together on one loss, as one optimiser with two
    parameter groups (the same updates)."""
    return torch.optim.SGD([{"params": method.image_hash.parameters(), "lr": image_lr},
                            {"params": method.text_hash.parameters(), "lr": text_lr}],
                           momentum=momentum, weight_decay=weight_decay)


class HashMLPPair(GradientHashing):
    """Methods whose codes come from one hash MLP per modality, trained with tanh(alpha h) and the
    alpha = sqrt(epoch + 1) schedule (the DJSRH family). Subclasses give `pair_losses(image, text, alpha)`.

    Args:
        hidden: width of the hash MLPs' hidden layer.
        batch_norm: standardise the hash outputs per bit over the batch.
    """

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, hidden: int = 4096,
                 batch_norm: bool = False):
        super().__init__(bits, image_dim, text_dim, num_classes)
        self.image_hash = HashMLP(image_dim, bits, hidden, batch_norm)
        self.text_hash = HashMLP(text_dim, bits, hidden, batch_norm)

    @abstractmethod
    def pair_losses(self, image: torch.Tensor, text: torch.Tensor, alpha: float) -> dict[str, torch.Tensor]:
        """Named loss terms of a training batch of paired features, the total under "loss"."""

    def encode_image(self, image):
        return self.image_hash(image)[0]

    def encode_text(self, text):
        return self.text_hash(text)[0]

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.pair_losses(batch["image"], batch["text"], epoch_alpha(self.current_epoch))


class ClosedFormHashing(HashingModule):
    """A method solved in closed form from the whole training set: one epoch collects it, and after its last
    batch (before the epoch's validation) `fit` sets the parameters (float64 buffers). A non-finite result stops
    the run (TrainingDiverged)."""

    closed_form: ClassVar[bool] = True  # one pass: the runner gives it one epoch whatever was asked

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self._collected: list[dict] = []

    @abstractmethod
    def fit(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor) -> None:
        """Set the method's parameters from the full training set (float64 features)."""

    def training_step(self, batch: dict, batch_idx: int) -> None:
        self._collected.append({k: batch[k].detach() for k in ("image", "text", "labels")})
        if batch_idx == self.trainer.num_training_batches - 1:
            self.fit_collected()

    def fit_collected(self) -> None:
        """Fit the collected training set, then forget it."""
        image, text, labels = (torch.cat([b[k] for b in self._collected]) for k in ("image", "text", "labels"))
        self._collected.clear()
        self.fit(image.double(), text.double(), labels)
        broken = [name for name, b in self.named_buffers() if b.is_floating_point() and not b.isfinite().all()]
        if broken:
            raise TrainingDiverged(f"the closed-form fit gave non-finite {broken[0]}; the run is stopped")

    def configure_optimizers(self):
        return None

