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
    Augmentation,
    AugmentedViews,
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


def word_vectors(path: Path, names: tuple[str, ...]) -> np.ndarray:
    """The mean word vector of each name's words, read from a GloVe-format text file in one pass."""
    words = {name: name.lower().replace("_", " ").split() for name in names}
    wanted = {w for ws in words.values() for w in ws}
    found = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            word, _, rest = line.rstrip().partition(" ")
            if word in wanted:
                try:
                    found[word] = np.array(rest.split(), np.float32)
                except ValueError as error:
                    raise DataError(f"{path}:{number}: not a word followed by numbers ({error})") from error
    missing = [name for name, ws in words.items() if not any(w in found for w in ws)]
    if missing:
        raise DataError(f"{path}: no vector for any word of the label names {missing}")
    return np.stack([np.mean([found[w] for w in ws if w in found], axis=0) for ws in words.values()])


def default_cache_dir() -> Path:
    return Path(os.environ.get("CMH_CACHE", Path.home() / ".cache" / "graph-cmh-bench"))


class SplitDataset(Dataset):
    """The items of one split role, served a batch at a time: `__getitems__` takes a batch's positions and
    returns the whole batch {index, image, text, labels}, slicing each feature matrix (in memory, or a
    memory-mapped cache) once per batch, with no per-item dicts. `index` is the item's position in this
    role (for the database: its rank tie-break position). A modality given as raw references (raw mode)
    goes through `preprocess[modality]` item by item (pixels, token ids). With `views` (K, items, d) set,
    each item's image is one of its K augmented views' features, drawn anew every time it is served."""

    def __init__(self, data: CrossModalData, items: np.ndarray, preprocess: dict | None = None):
        self.items, self.preprocess = np.asarray(items), preprocess or {}
        self.views: np.ndarray | None = None
        self.payload = {modality: getattr(data, modality) for modality in MODALITIES}
        for modality, payload in self.payload.items():
            if not isinstance(payload, np.ndarray) and modality not in self.preprocess:
                raise ValueError(f"{data.source}: {modality} payload is raw but no preprocessing was given")
        self.labels = torch.as_tensor(data.labels[self.items], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.items)

    def feature_dim(self, modality: str) -> int | None:
        payload = self.payload[modality]
        return payload.shape[1] if isinstance(payload, np.ndarray) else None

    def __getitems__(self, positions: list[int]) -> dict:
        positions = np.asarray(positions, np.int64)
        rows = self.items[positions]
        batch = {"index": torch.from_numpy(positions), "labels": self.labels[positions]}
        for modality, payload in self.payload.items():
            batch[modality] = torch.from_numpy(np.asarray(payload[rows], np.float32)) \
                if isinstance(payload, np.ndarray) else \
                torch.stack([self.preprocess[modality](payload[i]) for i in rows])
        if self.views is not None:
            view = torch.randint(len(self.views), (len(positions),)).numpy()
            batch["image"] = torch.from_numpy(np.asarray(self.views[view, positions], np.float32))
        return batch

    def __getitem__(self, i: int) -> dict:
        return {key: value[0] for key, value in self.__getitems__([i]).items()}


def as_batch(batch: dict) -> dict:
    """The collate step of a SplitDataset loader: `__getitems__` already made the batch."""
    return batch


class RetrievalDataModule(LightningDataModule, ABC):
    """Base of every dataset: subclasses name themselves, give their protocol and `load()` their records.

    Loaders: train (shuffled, unlabeled use is the method's business), val and test, where val and
    test are two loaders each, queries then retrieval set: (val, train) and (query, database).

    Datasets whose payloads are raw (image paths, texts) are encoded once by `image_backbone` and
    `text_backbone` (datamodules.features.ENCODERS; `clip_model` names the CLIP checkpoint or folder,
    `clip_text_tokens` its text length) and cached; with `raw=True` batches carry the backbones' inputs
    instead (pixels, token ids). `augment_views` K > 0 also encodes K augmented views of each training
    image once (datamodules.features.Augmentation) and serves one of them, drawn per item and epoch, in
    training batches: the frozen-backbone form of training on augmented images. `queries_are_database`
    makes the queries the database too (the protocol gets a `-queries-as-database` name).
    """

    name: str
    protocols: dict[str, SplitProtocol]  # the first is the default

    def __init__(self, data_dir: str | None = None, split_seed: int = 0, subset: PositiveInt | None = None,
                 batch_size: PositiveInt = 128, eval_batch_size: PositiveInt = 1024, num_workers: NonNegativeInt = 0,
                 drop_last: bool = False, cache_dir: str | None = None, image_backbone: ImageBackbone = "clip",
                 text_backbone: TextBackbone = "clip", clip_model: str = CLIP_DEFAULT, raw: bool = False,
                 feature_batch_size: PositiveInt = 32, feature_workers: NonNegativeInt = 0,
                 feature_device: str = "auto", feature_precision: Literal["32", "bf16", "16"] = "32",
                 protocol: str | None = None, queries_are_database: bool = False, augment_views: NonNegativeInt = 0,
                 clip_text_tokens: PositiveInt = 77):
        super().__init__()
        if protocol is not None and protocol not in self.protocols:
            raise ValueError(f"{self.name}: unknown protocol {protocol!r}; known: {sorted(self.protocols)}")
        self.protocol = self.protocols[protocol or next(iter(self.protocols))]
        if queries_are_database:
            self.protocol = replace(self.protocol, name=f"{self.protocol.name}-queries-as-database",
                                    queries_are_database=True)
        self.backbones = {"image": image_backbone, "text": text_backbone}
        self.clip_model, self.clip_text_tokens, self.raw = clip_model, clip_text_tokens, raw
        self.augmentation = Augmentation(augment_views, seed=split_seed) if augment_views else None
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
        """One vector per label name, (classes, d): `minilm` (or `clip`) encodes the names with that text encoder
        (offline); a path reads word vectors: a GloVe text file (`word v1 ... vd` per line; a name of several
        words, split at `_` and spaces, gets the mean of its words' vectors), `.npy` (classes x d) or `.mat`
        (variable `inp`, the dual adversarial GNN authors' files)."""
        if source in ENCODERS and "text" in ENCODERS[source]:
            return torch.as_tensor(make_encoder(source, "text", self.clip_model, self.clip_text_tokens).encode(
                list(self.data.label_names)))
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{source}: no such file; label vectors come from a text encoder "
                            f"({', '.join(text_encoders())}) or a word-vector file (.txt GloVe, .npy, .mat)")
        if path.suffix == ".npy":
            vectors = np.load(path)
        elif path.suffix == ".mat":
            vectors = read_mat(path, "inp")
        else:
            vectors = word_vectors(path, self.data.label_names)
        if vectors.ndim != 2 or vectors.shape[0] != self.num_classes:
            raise DataError(f"{path}: expected a ({self.num_classes}, d) matrix of label vectors, got shape "
                            f"{vectors.shape}")
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
        self.has_photos = not isinstance(data.image, np.ndarray)  # image files (or pixels), not only features
        self.split = load_or_make_split(self.split_path(), self.protocol, data, self.split_seed, self.subset)
        preprocess, augmented = {}, None
        used = self.used_items()
        for modality in MODALITIES:
            payload = getattr(data, modality)
            if isinstance(payload, np.ndarray):
                continue
            encoder = make_encoder(self.backbones[modality], modality, self.clip_model, self.clip_text_tokens)
            if self.raw:
                preprocess[modality] = encoder.preprocess
                continue
            # Only the items of the split are encoded (a subset run encodes only its subset).
            features = self._features(encoder, data.name, data.ids[used], [payload[i] for i in used])
            if modality == "image" and self.augmentation:
                train = self.split.train
                views = self._features(AugmentedViews(encoder, self.augmentation), data.name, data.ids[train],
                                       [(payload[i], i, v) for v in range(self.augmentation.views) for i in train])
                augmented = views.reshape(self.augmentation.views, len(train), -1)
            if len(used) < len(data):  # rows of items outside the subset stay zero (never served)
                full = np.zeros((len(data), features.shape[1]), np.float32)
                full[used] = features
                features = full
            data = replace(data, **{modality: features})
        self.data = data
        self.datasets = {role: SplitDataset(data, self.split.role(role), preprocess)
                         for role in ("query", "train", "database", "val")}
        self.datasets["train"].views = augmented  # None unless augmented views of raw images were computed
        for modality in MODALITIES:
            train = getattr(data, modality)
            train = train[self.split.train] if isinstance(train, np.ndarray) else None
            if train is not None and len(train) > 1 and (train == train[0]).all():
                log.warning(f"{data.source}: the {modality} features of every training item are the same "
                            f"({'all zero' if not train.any() else 'constant'}); a method cannot learn from them")

    def used_items(self) -> np.ndarray:
        """The dataset items some role of the split holds, in item order."""
        return np.unique(np.concatenate([self.split.role(role) for role in ROLES]))

    @cached_property
    def fingerprint(self) -> str:
        """A checksum of the data the method sees: the split (every role's item indices), the items' ids and
        labels, and each modality's features (or raw references). Rows of different data never share it."""
        digest = hashlib.sha256()
        for role in ROLES:
            digest.update(self.split.role(role).astype(np.int64).tobytes())
        used = self.used_items()
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

    def _features(self, encoder, dataset: str, ids: np.ndarray, items: list) -> np.ndarray:
        key = cache_key(dataset, ids, encoder, self.extraction)
        return cached_features(encoder, items, self.cache_dir / "features" / f"{key}.npy", self.extraction)

    @property
    def image_dim(self) -> int | None:
        """Feature dimension, or None in raw mode."""
        return self.datasets["train"].feature_dim("image")

    @property
    def text_dim(self) -> int | None:
        return self.datasets["train"].feature_dim("text")

    @property
    def text_is_bag_of_words(self) -> bool:
        """Whether the texts are binary presence vectors (tags, caption words) rather than dense embeddings."""
        text = self.data.text
        return isinstance(text, np.ndarray) and bool(np.isin(text[self.split.train], (0, 1)).all())

    @property
    def num_classes(self) -> int:
        return len(self.data.label_names)

    def _loader(self, role: str, train: bool = False) -> DataLoader:
        return DataLoader(self.datasets[role], batch_size=self.batch_size if train else self.eval_batch_size,
                          collate_fn=as_batch, pin_memory=torch.cuda.is_available(),
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
