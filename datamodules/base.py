"""The LightningDataModule every dataset shares: one record set, one saved split, four loaders."""

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from datamodules.records import CrossModalData
from datamodules.splits import Split, SplitProtocol, load_or_make_split


def default_cache_dir() -> Path:
    return Path(os.environ.get("CMH_CACHE", Path.home() / ".cache" / "graph-cmh-bench"))


class SplitDataset(Dataset):
    """The items of one split role. Each item is {index, image, text, labels}; `index` is the item's
    position in this role (for the database: its rank tie-break position)."""

    def __init__(self, data: CrossModalData, items: np.ndarray):
        self.items = items
        self.image = torch.as_tensor(np.asarray(data.image[items], np.float32))
        self.text = torch.as_tensor(np.asarray(data.text[items], np.float32))
        self.labels = torch.as_tensor(data.labels[items], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return {"index": i, "image": self.image[i], "text": self.text[i], "labels": self.labels[i]}


class RetrievalDataModule(LightningDataModule, ABC):
    """Base of every dataset: subclasses name themselves, give their protocol and `load()` their records.

    Loaders: train (shuffled, unlabeled use is the method's business), val and test, where val and
    test are two loaders each, queries then retrieval set: (val, train) and (query, database).
    """

    name: str
    protocol: SplitProtocol
    backbone: str  # what produced the features, recorded in every result row

    def __init__(self, data_dir: str | None = None, split_seed: int = 0, subset: int | None = None,
                 batch_size: int = 128, eval_batch_size: int = 1024, num_workers: int = 0,
                 drop_last: bool = False, cache_dir: str | None = None):
        super().__init__()
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

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = self.load()
            self.split = load_or_make_split(self.split_path(), self.protocol, self.data, self.split_seed, self.subset)
            self.datasets = {role: SplitDataset(self.data, self.split.role(role))
                             for role in ("query", "train", "database", "val")}

    @property
    def image_dim(self) -> int:
        return self.datasets["train"].image.shape[1]

    @property
    def text_dim(self) -> int:
        return self.datasets["train"].text.shape[1]

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
        """What a result row records about the data."""
        return {"dataset": self.name, "protocol": self.protocol.name, "backbone": self.backbone,
                "split_seed": self.split_seed,
                "subset": self.subset, "n_query": len(self.split.query), "n_database": len(self.split.database),
                "n_train": len(self.split.train)}
