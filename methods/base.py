"""The LightningModule every hashing method shares: encoding, the evaluation loop, logging."""

from abc import abstractmethod
from typing import ClassVar

import torch
from lightning import LightningModule
from torch import nn

from methods.heads import HashMLP, epoch_alpha
from metrics import MAP_KS, HammingRetrieval, RetrievalResult

DIRECTIONS = ("i2t", "t2i")  # image queries against the text database, and the reverse


class HashingModule(LightningModule):
    """A cross-modal hashing method: `encode_image` and `encode_text` map a batch to continuous codes.

    Evaluation (validation and test alike): the first loader holds the queries, the second the
    retrieval set. Query images are ranked against database texts (i2t) and query texts against
    database images (t2i). Results are logged as `<stage>/map_i2t`, `<stage>/map@50_t2i`, ... and
    kept whole (curves too) in `self.results[stage]`.
    """

    name: ClassVar[str]
    supervised: ClassVar[bool] = False  # reads labels during training
    fixed_batch: ClassVar[bool] = False  # needs every training batch full (drops the last one)

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, map_ks=MAP_KS):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be positive, got {bits}")
        self.bits, self.image_dim, self.text_dim, self.num_classes = bits, image_dim, text_dim, num_classes
        self.retrieval = nn.ModuleDict({d: HammingRetrieval(map_ks=map_ks) for d in DIRECTIONS})
        self.results: dict[str, dict[str, RetrievalResult]] = {}

    @abstractmethod
    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Continuous codes (batch, bits) of an image batch; evaluation takes their signs."""

    @abstractmethod
    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Continuous codes (batch, bits) of a text batch."""

    def _evaluation_step(self, batch: dict, dataloader_idx: int) -> None:
        database = dataloader_idx == 1
        image, text = self.encode_image(batch["image"]), self.encode_text(batch["text"])
        query_codes = {"i2t": image, "t2i": text}
        database_codes = {"i2t": text, "t2i": image}
        for direction, metric in self.retrieval.items():
            codes = database_codes[direction] if database else query_codes[direction]
            metric.update(batch["index"], codes, batch["labels"], database=database)

    def _evaluation_end(self, stage: str) -> None:
        self.results[stage] = {direction: metric.compute() for direction, metric in self.retrieval.items()}
        for direction, result in self.results[stage].items():
            for name, value in result.scalars(suffix=f"_{direction}").items():
                self.log(f"{stage}/{name}", value, sync_dist=False)
        for metric in self.retrieval.values():
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
    alpha = sqrt(epoch + 1) schedule (the DJSRH family). Subclasses give `losses(image, text, alpha)`,
    a dict of named terms with the total under "loss"."""

    def __init__(self, bits: int, image_dim: int, text_dim: int, num_classes: int, hidden: int = 4096,
                 batch_norm: bool = False, **kwargs):
        super().__init__(bits, image_dim, text_dim, num_classes, **kwargs)
        self.image_hash = HashMLP(image_dim, bits, hidden, batch_norm)
        self.text_hash = HashMLP(text_dim, bits, hidden, batch_norm)

    @abstractmethod
    def losses(self, image: torch.Tensor, text: torch.Tensor, alpha: float) -> dict[str, torch.Tensor]:
        """Loss terms of a training batch."""

    def encode_image(self, image):
        return self.image_hash(image)[0]

    def encode_text(self, text):
        return self.text_hash(text)[0]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch["image"], batch["text"], epoch_alpha(self.current_epoch))
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_epoch=True, on_step=False)
        return terms["loss"]


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

    def configure_optimizers(self):
        return None
