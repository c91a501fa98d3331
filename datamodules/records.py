"""The record types every dataset is read into: what its files say (Annotations), and the items a method sees
(CrossModalData)."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from common.errors import DataError
from datamodules.text import Texts, text_payload

Payload = np.ndarray | Sequence  # a feature matrix (n, d), or raw references (image paths, pixel arrays, strings)


class SelectedRows(Sequence):
    """Some rows of a lazy sequence (pixel arrays read one at a time), still read one at a time."""

    def __init__(self, items: Sequence, rows: np.ndarray):
        self.items, self.rows = items, np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return self.items[int(self.rows[i])]


def take(payload: Payload, rows) -> Payload:
    """The given rows of a feature matrix, a list of references (kept a list) or a lazy sequence (kept lazy)."""
    if isinstance(payload, np.ndarray):
        return payload[rows]
    return [payload[i] for i in rows] if isinstance(payload, list) else SelectedRows(payload, rows)


@dataclass(frozen=True)
class Annotations:
    """What a dataset's files say about its items, before any text representation is chosen.

    Attributes:
        ids: one id per item.
        labels: multi-hot labels (items x classes).
        label_names: the classes' names.
        images: an image file path, a pixel array or a feature row per item.
        texts: one tag list, one caption or one bag-of-words row per item (datamodules.text).
        vocabulary: the words of a bag's columns (tag lists and bags of words).
        source: the file(s) read, named in every error.
    """

    ids: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    images: Payload
    texts: Texts
    vocabulary: Sequence[str] | None
    source: str

    def take(self, rows) -> "Annotations":
        """The annotations of the given rows only."""
        texts = self.texts[rows] if isinstance(self.texts, np.ndarray) else [self.texts[i] for i in rows]
        return replace(self, ids=np.asarray(self.ids)[rows], labels=self.labels[rows], images=take(self.images, rows),
                       texts=texts)

    def records(self, name: str, text_backbone: str) -> "CrossModalData":
        """The items of dataset `name` with the texts as `text_backbone` takes them (datamodules.text)."""
        return CrossModalData(name=name, ids=np.asarray(self.ids), labels=self.labels, image=self.images,
                              text=text_payload(self.texts, self.vocabulary, text_backbone),
                              label_names=tuple(self.label_names), source=self.source)


def require_images(paths: list[str], hint: str = "") -> None:
    """One error naming the first missing image file and how many are missing."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise DataError(f"{missing[0]}: image not found ({len(missing)} of {len(paths)} missing){hint}")


@dataclass(frozen=True)
class CrossModalData:
    """All items of a dataset: an id, multi-hot labels and one image and one text payload per item.

    `source` names the file(s) the data came from, so every validation error can point at them.
    `official_split` maps roles ("query", "train") to item indices when the dataset defines its own split.
    """

    name: str
    ids: np.ndarray
    labels: np.ndarray
    image: Payload
    text: Payload
    label_names: tuple[str, ...]
    source: str
    official_split: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.ids)
        for what, payload in (("labels", self.labels), ("image payload", self.image), ("text payload", self.text)):
            if len(payload) != n:
                raise DataError(f"{self.source}: {len(payload)} rows of {what} but {n} items")
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.label_names):
            raise DataError(f"{self.source}: labels have shape {self.labels.shape}, "
                            f"expected ({n}, {len(self.label_names)}) for {len(self.label_names)} label names")
        if not np.isin(self.labels, (0, 1)).all():
            raise DataError(f"{self.source}: labels must be 0/1 multi-hot")
        empty = np.flatnonzero(self.labels.sum(1) == 0)
        if len(empty):
            raise DataError(f"{self.source}: {len(empty)} items have no positive label "
                            f"(first: item {empty[0]}, id {self.ids[empty[0]]})")
        for payload, what in ((self.image, "image"), (self.text, "text")):
            if isinstance(payload, np.ndarray) and not np.isfinite(payload).all():
                raise DataError(f"{self.source}: {what} features contain NaN or infinite values")
        for role, items in self.official_split.items():
            if len(items) and (items.min() < 0 or items.max() >= n):
                raise DataError(f"{self.source}: official {role} split refers to items outside 0..{n - 1}")

    def __len__(self) -> int:
        return len(self.ids)
