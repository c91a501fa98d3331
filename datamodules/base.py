"""The LightningDataModule every dataset shares: one record set, one saved split, four loaders."""

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from common.errors import DataError
from datamodules.features import (
    CLIP_DEFAULT,
    ENCODERS,
    Extraction,
    cache_key,
    cached_features,
    make_encoder,
    text_encoders,
)
from datamodules.matfiles import read_mat
from datamodules.records import CrossModalData
from datamodules.splits import ROLES, Split, SplitProtocol, load_or_make_split

MODALITIES = ("image", "text")
ImageBackbone = Literal["clip", "efficientnet-lite0"]
TextBackbone = Literal["clip", "minilm", "bow"]  # bow: the dataset's own bag of words (tags, captions)
log = logging.getLogger("cmhb")


def default_cache_dir() -> Path:
    return Path(os.environ.get("CMH_CACHE", Path.home() / ".cache" / "graph-cmh-bench"))


class SplitDataset(Dataset):
    """The items of one split role. Each item is {index, image, text, labels}; `index` is the item's
    position in this role (for the database: its rank tie-break position). A modality given as a
    feature matrix is served from memory; one given as raw references (raw mode) goes through
    `preprocess[modality]` item by item (pixels, token ids)."""

    def __init__(self, data: CrossModalData, items: np.ndarray, preprocess: dict | None = None):
        self.items, self.preprocess = items, preprocess or {}
        self.payload = {}
        for modality in MODALITIES:
            payload = getattr(data, modality)
            if isinstance(payload, np.ndarray):
                self.payload[modality] = torch.as_tensor(np.asarray(payload[items], np.float32))
            elif modality in self.preprocess:
                self.payload[modality] = [payload[i] for i in items]
            else:
                raise ValueError(f"{data.source}: {modality} payload is raw but no preprocessing was given")
        self.labels = torch.as_tensor(data.labels[items], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.items)

    def feature_dim(self, modality: str) -> int | None:
        payload = self.payload[modality]
        return payload.shape[1] if isinstance(payload, torch.Tensor) else None

    def __getitem__(self, i: int) -> dict:
        item = {"index": i, "labels": self.labels[i]}
        for modality, payload in self.payload.items():
            item[modality] = payload[i] if isinstance(payload, torch.Tensor) else self.preprocess[modality](payload[i])
        return item


class RetrievalDataModule(LightningDataModule, ABC):
    """Base of every dataset: subclasses name themselves, give their protocol and `load()` their records.

    Loaders: train (shuffled, unlabeled use is the method's business), val and test, where val and
    test are two loaders each, queries then retrieval set: (val, train) and (query, database).

    Datasets whose payloads are raw (image paths, texts) are encoded once by `image_backbone` and
    `text_backbone` (datamodules.features.ENCODERS; `clip_model` names the CLIP checkpoint or folder)
    and cached; with `raw=True` batches carry the backbones' inputs instead (pixels, token ids).
    """

    name: str
    protocols: dict[str, SplitProtocol]  # the first is the default

    def __init__(self, data_dir: str | None = None, split_seed: int = 0, subset: PositiveInt | None = None,
                 batch_size: PositiveInt = 128, eval_batch_size: PositiveInt = 1024, num_workers: NonNegativeInt = 0,
                 drop_last: bool = False, cache_dir: str | None = None, image_backbone: ImageBackbone = "clip",
                 text_backbone: TextBackbone = "clip", clip_model: str = CLIP_DEFAULT, raw: bool = False,
                 feature_batch_size: PositiveInt = 64, feature_workers: NonNegativeInt = 0,
                 feature_device: str = "auto", feature_precision: Literal["32", "bf16", "16"] = "32",
                 protocol: str | None = None):
        super().__init__()
        if protocol is not None and protocol not in self.protocols:
            raise ValueError(f"{self.name}: unknown protocol {protocol!r}; known: {sorted(self.protocols)}")
        self.protocol = self.protocols[protocol or next(iter(self.protocols))]
        self.backbones = {"image": image_backbone, "text": text_backbone}
        self.clip_model, self.raw = clip_model, raw
        self.extraction = Extraction(feature_batch_size, feature_workers, feature_device, feature_precision)
        self.data_dir = Path(data_dir) if data_dir else None
        self.split_seed, self.subset = split_seed, subset
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.drop_last = drop_last
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.data: CrossModalData | None = None
        self.split: Split | None = None

    @abstractmethod
    def load(self) -> CrossModalData:
        """Read (or generate) every item of the dataset."""

    def split_key(self) -> tuple:
        """What, besides protocol, seed and subset, decides the split (generated data's parameters)."""
        return ()

    def split_path(self) -> Path:
        parts = [self.name, *map(str, self.split_key()), self.protocol.name, f"seed{self.split_seed}"]
        parts += [f"subset{self.subset}"] if self.subset else []
        return self.cache_dir / "splits" / ("-".join(parts) + ".npz")

    @property
    def root(self) -> Path:
        """The dataset's folder: data_dir, or data/<name> under the working directory."""
        return self.data_dir or Path("data") / self.name

    @property
    def train_labels(self) -> np.ndarray:
        """Labels of the training items (supervised methods build label graphs from them)."""
        return self.data.labels[self.split.train]

    def label_vectors(self, source: str) -> torch.Tensor:
        """One vector per label name, (classes, d): `minilm` encodes the names with all-MiniLM-L6-v2 (offline);
        a path reads a file of the authors' kind: `.npy` (classes x d) or `.mat` (variable `inp`)."""
        if source in ENCODERS and "text" in ENCODERS[source]:
            vectors = make_encoder(source, "text", self.clip_model).encode(list(self.data.label_names))
        else:
            path = Path(source)
            if path.suffix == ".npy":
                vectors = np.load(path)
            elif path.suffix == ".mat":
                vectors = read_mat(path, "inp")
            else:
                raise DataError(f"{source}: label vectors come from a text encoder ({', '.join(text_encoders())}) "
                                "or a .npy / .mat file")
            if vectors.ndim != 2 or vectors.shape[0] != self.num_classes:
                raise DataError(f"{path}: expected a ({self.num_classes}, d) matrix of label vectors, "
                                f"got shape {vectors.shape}")
        return torch.as_tensor(np.asarray(vectors), dtype=torch.float32)

    @property
    def backbone(self) -> str:
        """What produced the features, recorded in every result row."""
        return "+".join(self.backbones[m] if self.backbones[m] != "clip" else f"clip:{self.clip_model}"
                        for m in MODALITIES)

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        data = self.load()
        self.split = load_or_make_split(self.split_path(), self.protocol, data, self.split_seed, self.subset)
        preprocess = {}
        for modality in MODALITIES:
            payload = getattr(data, modality)
            if isinstance(payload, np.ndarray):
                continue
            encoder = make_encoder(self.backbones[modality], modality, self.clip_model)
            if self.raw:
                preprocess[modality] = encoder.preprocess
                continue
            # Only the items of the split are encoded (a subset run encodes only its subset).
            used = np.union1d(self.split.database, self.split.query)
            path = self.cache_dir / "features" / f"{cache_key(data.name, data.ids[used], encoder, self.extraction)}.npy"
            features = cached_features(encoder, [payload[i] for i in used], path, self.extraction)
            if len(used) < len(data):  # rows of items outside the subset stay zero (never served)
                full = np.zeros((len(data), features.shape[1]), np.float32)
                full[used] = features
                features = full
            data = replace(data, **{modality: features})
        self.data = data
        self.datasets = {role: SplitDataset(data, self.split.role(role), preprocess)
                         for role in ("query", "train", "database", "val")}
        for modality in MODALITIES:
            train = self.datasets["train"].payload[modality]
            if isinstance(train, torch.Tensor) and len(train) > 1 and (train == train[0]).all():
                log.warning(f"{data.source}: the {modality} features of every training item are the same "
                            f"({'all zero' if not train.any() else 'constant'}); a method cannot learn from them")

    @cached_property
    def fingerprint(self) -> str:
        """A checksum of the data the method sees: the split (every role's item indices), the items' ids and
        labels, and each modality's features (or raw references). Rows of different data never share it."""
        digest = hashlib.sha256()
        for role in ROLES:
            digest.update(self.split.role(role).astype(np.int64).tobytes())
        used = np.union1d(self.split.database, self.split.query)
        digest.update("\n".join(map(str, self.data.ids[used])).encode())
        digest.update(np.ascontiguousarray(self.data.labels[used], np.uint8).tobytes())
        for modality in MODALITIES:
            payload = getattr(self.data, modality)
            if isinstance(payload, np.ndarray):
                for start in range(0, len(used), 65536):  # in blocks: a memory-mapped cache is not read whole
                    digest.update(np.ascontiguousarray(payload[used[start:start + 65536]], np.float32).tobytes())
            else:
                digest.update("\n".join(str(payload[i]) for i in used).encode())
        return digest.hexdigest()[:16]

    @property
    def image_dim(self) -> int | None:
        """Feature dimension, or None in raw mode."""
        return self.datasets["train"].feature_dim("image")

    @property
    def text_dim(self) -> int | None:
        return self.datasets["train"].feature_dim("text")

    @property
    def num_classes(self) -> int:
        return len(self.data.label_names)

    def _loader(self, role: str, train: bool = False) -> DataLoader:
        return DataLoader(self.datasets[role], batch_size=self.batch_size if train else self.eval_batch_size,
                          shuffle=train, drop_last=train and self.drop_last, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> list[DataLoader]:
        return [self._loader("val"), self._loader("train")] if len(self.split.val) else []

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader("query"), self._loader("database")]

    def describe(self) -> dict:
        """What a result row records about the data. A subset run names its own sizes, never the full
        protocol's name."""
        split = self.split
        protocol = f"subset{self.subset}-{len(split.query)}q-{len(split.train)}t" if self.subset else self.protocol.name
        return {"dataset": self.name, "protocol": protocol, "backbone": self.backbone, "split_seed": self.split_seed,
                "subset": self.subset, "n_query": len(split.query), "n_database": len(split.database),
                "n_train": len(split.train), "data_fingerprint": self.fingerprint}

    def summary(self) -> str:
        """One line naming the data a run sees, with its real sizes."""
        d = self.describe()
        note = f"; {d['note']}" if "note" in d else ""
        return (f"{d['dataset']}: {d['n_query']} queries, {d['n_database']} database, {d['n_train']} training items "
                f"({d['protocol']}), features {d['backbone']}{note}")
