"""Named split protocols (protocol.md), materialised once as index files with a checksum."""

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.files import atomic_write_bytes, sha256_file
from datamodules.records import CrossModalData, DataError

ROLES = ("query", "train", "database", "val")


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
    validation set is carved from the database minus the training set.
    """

    name: str
    n_query: int = 0
    n_train: int = 0
    n_val: int = 0
    official: bool = False

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
            train = database.copy()
        else:
            sizes = [max(1, round(s * scale)) for s in (self.n_query, self.n_train)]
            if sizes[0] + sizes[1] > len(items):
                raise DataError(f"{data.source}: {len(items)} items cannot hold {sizes[0]} queries and "
                                f"{sizes[1]} training items (protocol {self.name})")
            order = rng.permutation(items)
            query, database = order[:sizes[0]], order[sizes[0]:]
            train = rng.permutation(database)[:sizes[1]]
        spare = np.setdiff1d(database, train)
        val = rng.permutation(spare)[:round(self.n_val * scale)]
        return Split(query=query, train=train, database=database, val=val)


# A tiny random protocol for miniature test folders and CI subsets.
MINI = SplitProtocol("mini-10q-20t", n_query=10, n_train=20)


def load_or_make_split(path: Path, protocol: SplitProtocol, data: CrossModalData, seed: int,
                       subset: int | None = None) -> Split:
    """Read the split saved at `path` (checking its checksum and the dataset), or make and save it."""
    path = Path(path)
    checksum_path = path.with_name(path.name + ".sha256")
    if checksum_path.exists():  # written last: without it, an earlier write was interrupted
        if checksum_path.read_text().split()[0] != sha256_file(path):
            raise DataError(f"{path}: split file does not match its checksum {checksum_path}; "
                            "delete both to rebuild the split")
        with np.load(path) as saved:
            meta = json.loads(str(saved["meta"]))
            if meta["n_items"] != len(data) or meta["dataset"] != data.name:
                raise DataError(f"{path}: split was made for {meta['dataset']} with {meta['n_items']} items, "
                                f"but the data has {len(data)} items; delete it to rebuild")
            return Split(**{role: saved[role] for role in ROLES})
    split = protocol.make(data, seed, subset)
    meta = json.dumps({"dataset": data.name, "protocol": protocol.name, "seed": seed, "subset": subset,
                       "n_items": len(data)})
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(meta), **{role: split.role(role) for role in ROLES})
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_bytes(checksum_path, f"{sha256_file(path)}  {path.name}\n".encode())
    return split
