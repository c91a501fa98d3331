"""File helpers shared by the suite: atomic writes, checksummed files and arrays."""

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from common.processes import running

_UMASK = os.umask(0)
os.umask(_UMASK)


def remove_dead_temporaries(path: Path) -> None:
    """Remove the temporary files of `path` that a killed process left behind (their writer's pid has ended)."""
    for leftover in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        pid = leftover.name[len(Path(path).name) + 2:].split(".")[0]
        if pid.isdigit() and not running(int(pid)):
            leftover.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` through `write(file)` so that readers see the old file or the whole new one, never a part.
    The temporary file names its writer, so one left by a killed process is removed by the next write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # a normal file's permissions, not mkstemp's private 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None and error.filename is None:
            raise OSError(error.errno, error.strerror, str(path)) from error  # a full disk: say where
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`data` written to `path` atomically (atomic_write)."""
    atomic_write(path, lambda f: f.write(data))


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
    write_checked_stream(path, lambda f: f.write(data))


def write_checked_stream(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """write_checked for a file written through `write(file)` (a large one, never whole in memory)."""
    checksum_path(path).unlink(missing_ok=True)
    atomic_write(path, write)
    atomic_write_bytes(checksum_path(path), f"{sha256_file(path)}  {Path(path).name}\n".encode())


def verified(path: Path) -> bool:
    """Whether `path` exists with a checksum file that matches it (False for a missing, truncated, altered or
    unfinished file, or an unreadable checksum)."""
    try:
        expected = checksum_path(path).read_text().split()
        return bool(expected) and expected[0] == sha256_file(path)
    except OSError:
        return False


def save_array(path: Path, array: np.ndarray) -> None:
    """`array` saved as a checksummed .npy file (write_checked)."""
    save_array_parts(path, [array], array.shape, array.dtype)


def save_array_parts(path: Path, parts: Iterable[np.ndarray], shape: tuple, dtype) -> None:
    """The row blocks `parts` (read one at a time, e.g. memory-mapped chunks) saved as one checksummed .npy
    array of `shape` and `dtype`, written block by block: never a whole copy in memory.

    Raises:
        ValueError: the parts do not hold `shape`'s rows.
    """
    dtype, rows = np.dtype(dtype), 0

    def write(f):
        nonlocal rows
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False, "shape": tuple(shape)})
        for part in parts:
            for start in range(0, len(part), 1024):
                f.write(memoryview(np.ascontiguousarray(part[start:start + 1024], dtype)).cast("B"))
            rows += len(part)
        if rows != (shape[0] if shape else 1):
            raise ValueError(f"{path}: {rows} rows written for an array of shape {tuple(shape)}")

    write_checked_stream(path, write)


def load_array(path: Path) -> np.ndarray | None:
    """The array saved at `path` by save_array, memory-mapped read-only (a large cache is not read whole), or
    None when the file is missing or fails its checksum: the caller rebuilds it."""
    if not verified(path):
        return None
    return np.load(path, mmap_mode="r")


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a checksummed .npz file (write_checked_stream), read without pickles, or None when it is
    missing, fails its checksum or cannot be read: the caller rebuilds it."""
    if not verified(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError):
        return None


def default_cache_dir() -> Path:
    """Where caches live: $CMH_CACHE, else ~/.cache/graph-cmh-bench."""
    return Path(os.environ.get("CMH_CACHE", Path.home() / ".cache" / "graph-cmh-bench"))
