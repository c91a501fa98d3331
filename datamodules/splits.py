"""Named split protocols (protocol.md), materialised once as index files with a checksum."""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import DataError
from common.files import load_npz, write_checked_stream
from datamodules.records import CrossModalData

ROLES = ("query", "train", "database", "val")
log = logging.getLogger("cmhb")


@dataclass(frozen=True)
class Split:
    """Item indices per role. The database is in its shuffled order: position breaks ranking ties."""

    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    val: np.ndarray

    def role(self, name: str) -> np.ndarray:
        return getattr(self, name)


@dataclass(frozen=True)
class SplitProtocol:
    """query / train / val sizes, or `official=True` to take the dataset's own query and train roles.

    The database is every item but the queries (for an official split: the official training items),
    shuffled once with the split seed; the training set is a subset of the database and the
    validation set is carved from the database minus the training set (for an official split, `n_val` of the
    official training items are held out of training).

    per_label ((first test, first train), (test, train)): the queries and training items are drawn label by
    label, as DJSRH's and CAGAN's code draws them: the first label gives `first test` queries and
    `first train` training items, every later label `test` and `train` more among its items not drawn yet;
    the training set is then filled up to `n_train` from the database.
    queries_are_database: the queries are also the database (the test-as-database evaluation of the dual
    adversarial GNN's code); the training set is drawn from the other items.
    """

    name: str
    n_query: int = 0
    n_train: int = 0
    n_val: int = 0
    official: bool = False
    per_label: tuple[tuple[int, int], tuple[int, int]] | None = None
    queries_are_database: bool = False

    def make(self, data: CrossModalData, seed: int, subset: int | None = None) -> Split:
        rng = np.random.default_rng(seed)
        n = len(data)
        items = np.arange(n)
        scale = 1.0
        if subset is not None:
            if not 0 < subset <= n:
                raise ValueError(f"subset={subset} must be in 1..{n} for {data.name}")
            items = np.sort(rng.choice(n, subset, replace=False))
            scale = subset / n
        if self.official:
            if set(data.official_split) != {"query", "train"}:
                raise DataError(f"{data.source}: protocol {self.name} needs an official query and train split")
            query = np.intersect1d(data.official_split["query"], items)
            database = rng.permutation(np.intersect1d(data.official_split["train"], items))
            # The validation items are held out of the official training set (they stay in the database).
            train = database[round(self.n_val * scale):].copy()
        elif self.per_label:
            query, train = self._per_label(data, items, rng, scale)
            database = rng.permutation(np.setdiff1d(items, query))
            fill = rng.permutation(np.setdiff1d(database, train))[:max(0, round(self.n_train * scale) - len(train))]
            train = np.concatenate([train, fill])
        else:
            sizes = [max(1, round(s * scale)) for s in (self.n_query, self.n_train)]
            if sizes[0] + sizes[1] > len(items):
                raise DataError(f"{data.source}: {len(items)} items cannot hold {sizes[0]} queries and "
                                f"{sizes[1]} training items (protocol {self.name})")
            order = rng.permutation(items)
            query, database = order[:sizes[0]], order[sizes[0]:]
            train = rng.permutation(database)[:sizes[1]]
        spare = np.setdiff1d(database, train)  # validation items: never queries, never training items
        if self.queries_are_database:
            database = rng.permutation(query)
        val = rng.permutation(spare)[:round(self.n_val * scale)]
        return Split(query=query, train=train, database=database, val=val)


    def _per_label(self, data: CrossModalData, items: np.ndarray, rng, scale: float):
        used = np.zeros(len(data), bool)
        query, train = [], []
        for label in range(data.labels.shape[1]):
            n_test, n_train = (round(n * scale) for n in self.per_label[0 if label == 0 else 1])
            candidates = rng.permutation(items[data.labels[items, label] == 1])
            candidates = candidates[~used[candidates]]
            query.append(candidates[:n_test])
            train.append(candidates[n_test:n_test + n_train])
            used[candidates[:n_test + n_train]] = True
        return np.concatenate(query), np.concatenate(train)


# A tiny random protocol for miniature test folders and CI subsets.
MINI = SplitProtocol("mini-10q-20t", n_query=10, n_train=20)


def load_or_make_split(path: Path, protocol: SplitProtocol, data: CrossModalData, seed: int,
                       subset: int | None = None) -> Split:
    """Read the split saved at `path` (checked against its checksum and the dataset), or make and save it.
    A damaged or unfinished split file is named and made again: a split is a function of the protocol, the
    seed and the data, so remaking it gives the same items."""
    path = Path(path)
    if path.exists():
        split = _read(path, data)
        if split is not None:
            return split
    split = protocol.make(data, seed, subset)
    meta = json.dumps({"dataset": data.name, "protocol": protocol.name, "seed": seed, "subset": subset,
                       "n_items": len(data)})
    write_checked_stream(path, lambda f: np.savez(f, meta=np.array(meta), **{role: split.role(role) for role in ROLES}))
    return split


def _read(path: Path, data: CrossModalData) -> Split | None:
    saved = load_npz(path)
    if saved is None:
        problem = "it does not match its checksum file (damaged or unfinished)"
    else:
        meta = json.loads(str(saved["meta"]))
        if meta["n_items"] == len(data) and meta["dataset"] == data.name:
            return Split(**{role: saved[role] for role in ROLES})
        problem = f"it was made for {meta['dataset']} with {meta['n_items']} items, not {len(data)}"
    log.warning(f"{path}: split file not used: {problem}; making it again")
    return None
