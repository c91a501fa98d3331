"""The one record type every dataset is read into."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import DataError

Payload = np.ndarray | list  # a feature matrix (n, d), or raw references (image paths, tag or caption strings)


def take(payload, rows) -> Payload:
    """The given rows of a feature matrix, or of a sequence of raw references (kept a list)."""
    return payload[rows] if isinstance(payload, np.ndarray) else [payload[i] for i in rows]


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
