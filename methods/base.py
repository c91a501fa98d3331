"""The LightningModule every hashing method shares: encoding, the evaluation loop, logging."""

import time
from abc import abstractmethod
from typing import ClassVar, Protocol

import numpy as np
import torch
from lightning import LightningModule
from torch import nn

from common.errors import TrainingDiverged
from methods.heads import HashMLP, epoch_alpha
from metrics import MAP_KS, CosineResult, CosineRetrieval, HammingRetrieval, RetrievalResult

DIRECTIONS = ("i2t", "t2i")  # image queries against the text database, and the reverse


class TrainingData(Protocol):
    """What a method may read from the datamodule it is built for (methods never import datamodules)."""

    image_dim: int | None  # feature width, None when batches carry raw pixels
    text_dim: int | None
    num_classes: int
    batch_size: int
    drop_last: bool
    train_labels: np.ndarray  # (n_train, classes) multi-hot labels of the training items
    text_is_bag_of_words: bool  # binary text features (tag or word presence), not a dense embedding

    def label_vectors(self, source: str) -> torch.Tensor:
        """One vector per label name (classes, d) from `source` (an encoder name or a file of word vectors)."""


class HashingModule(LightningModule):
    """A cross-modal hashing method: `encode_image` and `encode_text` map a batch to continuous codes.

    Evaluation (validation and test alike): the first loader holds the queries, the second the
    retrieval set. Query images are ranked against database texts (i2t) and query texts against
    database images (t2i). Results are logged as `<stage>/map_i2t`, `<stage>/map@50_t2i`, ... and
    kept whole (curves too) in `self.results[stage]`; the seconds the last evaluation's metrics took (both
    directions, after encoding) in `self.metric_seconds`. A `real_valued` method also gives `embed_image` /
    `embed_text` (its real-valued common features) and `hash_embedding` (codes from them); the features'
    cosine mAP@all is logged as
    `<stage>/cosine_map_i2t` ... and kept in `self.cosine_results[stage]`.
    """

    name: ClassVar[str]
    supervised: ClassVar[bool] = False  # reads labels during training
    real_valued: ClassVar[bool] = False  # also retrieves with real-valued features (embed_image / embed_text)

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, map_ks=MAP_KS):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be positive, got {bits}")
        self.bits, self.image_dim, self.text_dim, self.num_classes = bits, image_dim, text_dim, num_classes
        self.choices: dict[str, str] = {}  # settings decided from the data (from_datamodule), announced and recorded
        self.retrieval = nn.ModuleDict({d: HammingRetrieval(map_ks=map_ks) for d in DIRECTIONS})
        self.results: dict[str, dict[str, RetrievalResult]] = {}
        if self.real_valued:
            self.cosine = nn.ModuleDict({d: CosineRetrieval() for d in DIRECTIONS})
            self.cosine_results: dict[str, dict[str, CosineResult]] = {}

    @classmethod
    def from_datamodule(cls, data: TrainingData, bits: int, **options) -> "HashingModule":
        """The method for the (set-up) datamodule it will train on. Constructor parameters without a default
        come from the data here; `options` are the others (the config's `method` section). Methods that need
        more of the data (training labels, label vectors, the batch size) extend this."""
        arguments = dict(bits=bits, image_dim=data.image_dim, text_dim=data.text_dim, num_classes=data.num_classes,
                         **options)
        model = cls(**arguments)
        model.arguments = arguments  # with the trained state, enough to rebuild the method (benchmarks.artifacts)
        return model

    @abstractmethod
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Continuous codes (batch, bits) of an image batch; evaluation takes their signs."""

    @abstractmethod
    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Continuous codes (batch, bits) of a text batch."""

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Named loss terms of a training batch, the total under "loss" (methods trained by gradient)."""
        raise NotImplementedError(f"{type(self).__name__} is not trained by gradient descent")

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        for term, value in terms.items():
            if not torch.isfinite(value).all():
                raise TrainingDiverged(f"{self.name}: loss term {term!r} is {value.item()} at epoch {self.current_epoch}, "
                                       f"step {self.global_step}; the run is stopped (a smaller learning rate may help)")
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_epoch=True, on_step=False)
        return terms["loss"]

    def on_after_backward(self) -> None:
        gradients = [(name, p.grad) for name, p in self.named_parameters() if p.grad is not None]
        if gradients and not torch.stack([g.isfinite().all() for _, g in gradients]).all():
            name = next(name for name, g in gradients if not g.isfinite().all())
            raise TrainingDiverged(f"{self.name}: the gradient of {name} is not finite at epoch {self.current_epoch}, "
                                   f"step {self.global_step}; the run is stopped")

    def hash_embedding(self, embedding: torch.Tensor, modality: str) -> torch.Tensor:
        """Continuous codes from a real-valued method's features (`modality`: image or text)."""
        raise NotImplementedError(f"{type(self).__name__} is not real-valued")

    def _evaluation_step(self, batch: dict, dataloader_idx: int) -> None:
        database = dataloader_idx == 1
        if self.real_valued:  # the features once; the codes are computed from them
            image, text = self.embed_image(batch["image"]), self.embed_text(batch["text"])
            self._update(self.cosine, image, text, batch, database)
            codes = self.hash_embedding(image, "image"), self.hash_embedding(text, "text")
        else:
            codes = self.encode_image(batch["image"]), self.encode_text(batch["text"])
        self._update(self.retrieval, *codes, batch, database)

    @staticmethod
    def _update(metrics: nn.ModuleDict, image: torch.Tensor, text: torch.Tensor, batch: dict, database: bool) -> None:
        # i2t: image queries against database texts; t2i the reverse.
        items = {"i2t": text if database else image, "t2i": image if database else text}
        for direction, metric in metrics.items():
            metric.update(batch["index"], items[direction], batch["labels"], database=database)

    def _evaluation_end(self, stage: str) -> None:
        start = time.perf_counter()
        self.results[stage] = {direction: metric.compute() for direction, metric in self.retrieval.items()}
        self.metric_seconds = {"hamming": time.perf_counter() - start}
        for direction, result in self.results[stage].items():
            for name, value in result.scalars(suffix=f"_{direction}").items():
                self.log(f"{stage}/{name}", value, sync_dist=False)
        if self.real_valued:
            start = time.perf_counter()
            self.cosine_results[stage] = {direction: metric.compute() for direction, metric in self.cosine.items()}
            self.metric_seconds["cosine"] = time.perf_counter() - start
            for direction, result in self.cosine_results[stage].items():
                self.log(f"{stage}/cosine_map_{direction}", result.map, sync_dist=False)
        # What was scored, kept for saving (query and database codes or features, with labels, in index order).
        self.evaluated = {direction: metric.collected() for direction, metric in self.retrieval.items()}
        if self.real_valued:
            self.evaluated.update({f"cosine_{d}": metric.collected() for d, metric in self.cosine.items()})
        for metric in [*self.retrieval.values(), *(self.cosine.values() if self.real_valued else ())]:
            metric.reset()

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluation_step(batch, dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluation_step(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._evaluation_end("val")

    def on_test_epoch_end(self) -> None:
        self._evaluation_end("test")


class HashMLPPair(HashingModule):
    """Methods whose codes come from one hash MLP per modality, trained with tanh(alpha h) and the
    alpha = sqrt(epoch + 1) schedule (the DJSRH family). Subclasses give `pair_losses(image, text, alpha)`,
    a dict of named terms with the total under "loss"."""

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, hidden: int = 4096,
                 batch_norm: bool = False, **kwargs):
        super().__init__(bits, image_dim, text_dim, num_classes, **kwargs)
        self.image_hash = HashMLP(image_dim, bits, hidden, batch_norm)
        self.text_hash = HashMLP(text_dim, bits, hidden, batch_norm)

    @abstractmethod
    def pair_losses(self, image: torch.Tensor, text: torch.Tensor, alpha: float) -> dict[str, torch.Tensor]:
        """Loss terms of a training batch."""

    def encode_image(self, image):
        return self.image_hash(image)[0]

    def encode_text(self, text):
        return self.text_hash(text)[0]

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.pair_losses(batch["image"], batch["text"], epoch_alpha(self.current_epoch))


class ClosedFormHashing(HashingModule):
    """A method solved in closed form from the whole training set: one epoch collects it, then `fit`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self._collected: list[dict] = []

    @abstractmethod
    def fit(self, image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor) -> None:
        """Set the method's parameters from the full training set."""

    def training_step(self, batch: dict, batch_idx: int) -> None:
        self._collected.append({k: batch[k].detach() for k in ("image", "text", "labels")})

    def on_train_epoch_end(self) -> None:
        image, text, labels = (torch.cat([b[k] for b in self._collected]) for k in ("image", "text", "labels"))
        self._collected.clear()
        self.fit(image.double(), text.double(), labels)
        broken = [name for name, b in self.named_buffers() if b.is_floating_point() and not b.isfinite().all()]
        if broken:
            raise TrainingDiverged(f"{self.name}: the closed-form fit gave non-finite {broken[0]}; the run is stopped")

    def configure_optimizers(self):
        return None
