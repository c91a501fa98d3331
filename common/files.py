"""File helpers shared by the suite: atomic writes, checksummed files and arrays."""

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # a normal file's permissions, not mkstemp's private 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".sha256")


def write_checked(path: Path, data: bytes) -> None:
    """Write `data` atomically, then its SHA-256 beside it (`<name>.sha256`, written last: a file without
    one was interrupted before it was complete)."""
    checksum_path(path).unlink(missing_ok=True)
    atomic_write_bytes(path, data)
    atomic_write_bytes(checksum_path(path), f"{sha256_bytes(data)}  {Path(path).name}\n".encode())


def verified(path: Path) -> bool:
    """Whether `path` exists with a checksum file that matches it (False for a missing, truncated, altered or
    unfinished file, or an unreadable checksum)."""
    try:
        expected = checksum_path(path).read_text().split()
        return bool(expected) and expected[0] == sha256_file(path)
    except OSError:
        return False


def save_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_checked(path, buffer.getvalue())


def load_array(path: Path) -> np.ndarray | None:
    """The array saved at `path` by save_array, memory-mapped read-only (a large cache is not read whole), or
    None when the file is missing or fails its checksum: the caller rebuilds it."""
    if not verified(path):
        return None
    return np.load(path, mmap_mode="r")


def default_cache_dir() -> Path:
    """Where caches live: $CMH_CACHE, else ~/.cache/graph-cmh-bench."""
    return Path(os.environ.get("CMH_CACHE", Path.home() / ".cache" / "graph-cmh-bench"))
