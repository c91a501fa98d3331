"""The LightningDataModule every dataset shares: one record set, one saved split, four loaders.

As Lightning means it: `prepare_data` does what touches the disk or the network once (downloads, feature
extraction into the cache; the runner calls it on one process per node, or one in all with
`prepare_data_per_node = False`), `setup` only loads, on every process.
"""

import hashlib
import logging
from abc import ABC, abstractmethod
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from common.errors import DataError
from common.files import default_cache_dir
from datamodules.label_protocols import label_view
from datamodules.records import CrossModalData
from datamodules.splits import ROLES, Split, SplitProtocol, load_or_make_split

MODALITIES = ("image", "text")
log = logging.getLogger("cmhb")


class SplitDataset(Dataset):
    """The items of one split role, served a batch at a time: `__getitems__` takes a batch's positions and
    returns the whole batch {index, image, text, labels}, slicing each feature matrix (in memory, or a
    memory-mapped cache) once per batch, with no per-item dicts. `index` is the item's position in this
    role (for the database: its rank tie-break position). A modality given as raw references (raw mode)
    goes through `preprocess[modality]` item by item (pixels, token ids). With `views` (K, items, d) set,
    each item's image is one of its K augmented views' features, drawn anew every time it is served."""

    def __init__(self, data: CrossModalData, items: np.ndarray, preprocess: dict | None = None,
                 labels: np.ndarray | None = None):
        self.items, self.preprocess = np.asarray(items), preprocess or {}
        self.views: np.ndarray | None = None
        self.payload = {modality: getattr(data, modality) for modality in MODALITIES}
        for modality, payload in self.payload.items():
            if not isinstance(payload, np.ndarray) and modality not in self.preprocess:
                raise ValueError(f"{data.source}: {modality} payload is raw but no preprocessing was given")
        self.labels = torch.as_tensor(data.labels[self.items] if labels is None else labels, dtype=torch.float32)

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
    """Base of every dataset: subclasses name themselves, give their protocols and `load()` their items.

    Loaders: train (shuffled; unlabeled use is the method's business), val and test, where val and test are
    two loaders each, queries then retrieval set: (val, train) and (query, database).

    Args:
        data_dir: the folder of the dataset's files (default: data/<name> under the working directory).
        split_seed: seed of the split: which items are queries, training and validation items, and the
            database order (which breaks ranking ties).
        subset: draw this many items (seeded by the split seed) and scale the protocol's sizes to them.
        protocol: the split protocol's name (default: the dataset's first).
        queries_are_database: rank the queries against themselves (the protocol's name gets
            `-queries-as-database`).
        batch_size: training batch size.
        eval_batch_size: batch size of evaluation (speed only).
        num_workers: DataLoader worker processes (speed only).
        drop_last: drop the last, incomplete training batch.
        cache_dir: where splits and features are cached (default: $CMH_CACHE, else ~/.cache/graph-cmh-bench).
        label_vectors: where the vectors of the label names come from, for methods that use them: a text
            encoder (`minilm`, `clip`), a word-vector file (a GloVe .txt, .npy, the dual adversarial GNN
            authors' .mat), or `none` (such a method then learns its own).
        unseen_labels: the share of labels held out of training (0: the closed set): training and validation
            items that carry one are dropped, methods are told of the other labels only, and the test scores
            the queries in seen and unseen groups too (docs/protocol.md, "Unseen classes").
        label_noise: the probability that a training or validation item's labels are wrong (0: clean); the
            queries' and the database's labels stay clean (docs/protocol.md, "Noisy labels").
    """

    name: ClassVar[str]
    protocols: ClassVar[dict[str, SplitProtocol]]  # the first is the default
    prepares: ClassVar[bool] = False  # downloads or encodes something in prepare_data (a sweep prepares it first)

    def __init__(self, data_dir: str | None = None, split_seed: int = 0, subset: PositiveInt | None = None,
                 protocol: str | None = None, queries_are_database: bool = False, batch_size: PositiveInt = 128,
                 eval_batch_size: PositiveInt = 1024, num_workers: NonNegativeInt = 0, drop_last: bool = False,
                 cache_dir: str | None = None, label_vectors: str = "minilm", unseen_labels: float = 0.0,
                 label_noise: float = 0.0):
        super().__init__()
        for option, value, what in (("unseen_labels", unseen_labels, "the share of labels held out of training"),
                                    ("label_noise", label_noise, "the probability that a training label is wrong")):
            if not 0 <= value < 1:
                raise ValueError(f"--data.{option}={value}: {what} must be at least 0 and below 1")
        if protocol is not None and protocol not in self.protocols:
            raise ValueError(f"{self.name}: unknown protocol {protocol!r}; known: {sorted(self.protocols)}")
        self.protocol = self.protocols[protocol or next(iter(self.protocols))]
        if queries_are_database:
            self.protocol = replace(self.protocol, name=f"{self.protocol.name}-queries-as-database",
                                    queries_are_database=True)
        self.data_dir = Path(data_dir) if data_dir else None
        self.split_seed, self.subset = split_seed, subset
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.drop_last = drop_last
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.label_vector_source = label_vectors
        self.unseen_share, self.noise_rate = unseen_labels, label_noise
        self.data: CrossModalData | None = None
        self.split: Split | None = None

    @abstractmethod
    def load(self) -> CrossModalData:
        """Read (or generate) every item of the dataset: features, or raw references an EncodedDataModule
        encodes."""

    def fetch(self) -> None:
        """Download or extract what `load` reads (by `prepare_data`, once); nothing for local data."""

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
    def backbone(self) -> str:
        """What produced the features, recorded in every result row."""
        raise NotImplementedError

    def prepare_data(self, check=lambda dims: None) -> None:
        """Download, extract and encode into the caches what `setup` will load (once per node); `check` sees the
        feature widths the run will have (planned_dims) after the download and before any extraction."""
        self.fetch()
        check(self.planned_dims())
        records = self.records()
        self.encode(records, load_or_make_split(self.split_path(), self.protocol, records, self.split_seed, self.subset),
                    compute=True)

    def planned_dims(self) -> dict[str, int | None]:
        """Each modality's feature width as the run will see it, known before any extraction (after `fetch`):
        {modality: width, or None where it is not known yet (raw mode)}."""
        records = self.records()
        return {m: getattr(records, m).shape[1] if isinstance(getattr(records, m), np.ndarray) else None
                for m in MODALITIES}

    def records(self) -> CrossModalData:
        """`load()`, once per process (prepare_data and setup both need it)."""
        if getattr(self, "_records", None) is None:
            self._records = self.load()
        return self._records

    def encode(self, records: CrossModalData, split: Split, compute: bool) -> tuple[CrossModalData, dict, object]:
        """(the records with features in place of raw items, preprocessing for raw mode, augmented training views)
        : nothing to do for a dataset of features."""
        return records, {}, None

    def setup(self, stage: str | None = None) -> None:
        """Load the items, the saved split and the cached features (prepare_data made them).

        Raises:
            DataError: damaged data, or features that were never prepared.
        """
        if self.data is not None:
            return
        records = self.records()
        self.has_photos = not isinstance(records.image, np.ndarray)  # image files (or pixels), not only features
        split = load_or_make_split(self.split_path(), self.protocol, records, self.split_seed, self.subset)
        self.data, preprocess, views = self.encode(records, split, compute=False)
        self.label_view = label_view(self.data.labels, split, self.unseen_share, self.noise_rate, self.split_seed)
        self.split = self.label_view.split
        if not len(self.split.train):
            raise DataError(f"{self.data.source}: every training item carries a held-out label "
                            f"(--data.unseen_labels={self.unseen_share}); hold out fewer labels")
        self.datasets = {role: SplitDataset(self.data, self.split.role(role), preprocess, self.label_view.served[role])
                         for role in ROLES}
        self.datasets["train"].views = views
        for modality in MODALITIES:
            train = getattr(self.data, modality)
            train = train[self.split.train] if isinstance(train, np.ndarray) else None
            if train is not None and len(train) > 1 and (train == train[0]).all():
                log.warning(f"{self.data.source}: the {modality} features of every training item are the same "
                            f"({'all zero' if not train.any() else 'constant'}); a method cannot learn from them")

    def used_items(self, split: Split | None = None) -> np.ndarray:
        """The dataset items some role of the split holds, in item order."""
        split = split or self.split
        return np.unique(np.concatenate([split.role(role) for role in ROLES]))

    @property
    def train_labels(self) -> np.ndarray:
        """Labels of the training items as methods see them (supervised methods build label graphs from them):
        the seen labels' columns, noisy under label noise."""
        return self.label_view.served["train"]

    def train_features(self) -> dict[str, torch.Tensor]:
        """Both modalities' features of every training item, in the order of the training batches' `index` (the
        un-augmented image features), for methods whose targets span the whole training set.

        Raises:
            ValueError: a modality given as raw references (pixels or token ids), not features.
        """
        payloads = {modality: getattr(self.data, modality) for modality in MODALITIES}
        if raw := [m for m, payload in payloads.items() if not isinstance(payload, np.ndarray)]:
            raise ValueError(f"{self.data.source}: the {raw[0]} items are raw, not features; a method that reads "
                             "the whole training set needs a feature backbone")
        return {m: torch.from_numpy(np.asarray(payload[self.split.train], np.float32)) for m, payload in payloads.items()}

    def text_encoder(self, name: str):
        """The text encoder of a backbone name, or None (label vectors may name one)."""
        from datamodules.encoders import ENCODERS, make_encoder

        return make_encoder(name, "text") if "text" in ENCODERS.get(name, {}) else None

    def label_vectors(self) -> torch.Tensor | None:
        """One vector per label name (classes, d), as the `label_vectors` setting says, or None for `none`."""
        from datamodules.label_vectors import read_label_vectors

        names = [self.data.label_names[i] for i in self.label_view.seen]
        return read_label_vectors(self.label_vector_source, names, self.text_encoder)

    @cached_property
    def fingerprint(self) -> str:
        """A checksum of the data the method sees: the items' ids and labels and each modality's features (or
        raw references), over the items the split uses (all of them, unless a subset). The split itself is
        named by its protocol, split seed and subset, so runs on other splits of the same data share it; rows
        of different data never do."""
        digest = hashlib.sha256()
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

    @property
    def image_dim(self) -> int | None:
        """Image feature width, or None in raw mode."""
        return self.datasets["train"].feature_dim("image")

    @property
    def text_dim(self) -> int | None:
        """Text feature width, or None in raw mode."""
        return self.datasets["train"].feature_dim("text")

    @property
    def text_is_bag_of_words(self) -> bool:
        """Whether the texts are binary presence vectors (tags, caption words) rather than dense embeddings."""
        text = self.data.text
        return isinstance(text, np.ndarray) and bool(np.isin(text[self.split.train], (0, 1)).all())

    @property
    def num_classes(self) -> int:
        """The labels a method is told of (the seen ones, under unseen classes)."""
        return len(self.label_view.seen)

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
        split, labels = self.split, self.label_protocol()
        protocol = f"subset{self.subset}-{len(split.query)}q-{len(split.train)}t" if self.subset else self.protocol.name
        if "unseen_labels" in labels:
            protocol += f"-unseen{len(labels['unseen_labels'])}of{self.num_classes + len(labels['unseen_labels'])}"
        if "label_noise" in labels:
            protocol += f"-noise{self.noise_rate:g}"
        return {"dataset": self.name, "protocol": protocol, "backbone": self.backbone, "split_seed": self.split_seed,
                "subset": self.subset, "n_query": len(split.query), "n_database": len(split.database),
                "n_train": len(split.train), "n_val": len(split.val), "data_fingerprint": self.fingerprint,
                "label_protocol": labels}

    def label_protocol(self) -> dict:
        """What a result row records of the label protocols: the held-out labels' names and share, the noise rate,
        its model and the share of training and validation items it changed; empty for the closed set with clean
        labels."""
        view, out = self.label_view, {}
        if len(view.unseen):
            out.update(unseen_labels=[self.data.label_names[i] for i in view.unseen], unseen_share=self.unseen_share)
        if self.noise_rate:
            out.update(label_noise=self.noise_rate, noise_model=view.noise_model, corrupted=round(view.corrupted, 4))
        return out

    def summary(self) -> str:
        """One line naming the data a run sees, with its real sizes."""
        d = self.describe()
        note = f"; {d['note']}" if "note" in d else ""
        return (f"{d['dataset']}: {d['n_query']} queries, {d['n_database']} database, {d['n_train']} training items "
                f"({d['protocol']}), features {d['backbone']}{note}")
