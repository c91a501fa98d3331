"""Result files (docs/protocol.md): one JSON line per run, appended under a lock, never rewritten; read back as
RunRecords, each line that is not a usable row skipped and named (file:line). A file whose name ends in .gz
holds each line as a gzip member of its own (the committed reference, results/runs.jsonl.gz: a third of the
size), so appending stays an append."""

import fcntl
import gzip
import json
import logging
import os
import subprocess
import zlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.execution.record import DIRECTIONS, RowError, RunRecord
from common.errors import ConfigError, DataError

log = logging.getLogger("cmhb")
GZIP_MAGIC = b"\x1f\x8b\x08"  # how every gzip member starts (RFC 1952)
PACKAGES = ("common", "metrics", "datamodules", "methods", "benchmarks")  # the suite's code (pyproject.toml)


def writable(path: Path) -> Path:
    """`path`, if a result row can be appended there (checked before any work starts).

    Raises:
        ConfigError: a folder, or a file or folder that cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--results {path} is a directory; give a file such as {path / 'results.jsonl'}")
    if path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        except OSError as error:
            raise ConfigError(f"--results {path}: the file cannot be written ({error.strerror}); give another file "
                              "or make it writable") from error
        return path
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--results {path}: cannot write there ({parent} is not a writable folder)")
    return path


def append_row(path: Path, record: RunRecord) -> None:
    """Append a record as one line under an exclusive lock, so concurrent runs never interleave. A line left
    torn by an earlier crash is closed first: the new row always starts on a line of its own (in a .gz file,
    a gzip member of its own). A write that fails (a full disk) removes what it wrote.

    Raises:
        DataError: the row could not be written (nothing of it is left in the file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record.to_row(), sort_keys=True) + "\n").encode()
    compressed = path.suffix == ".gz"
    if compressed:
        line = gzip.compress(line, mtime=0)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        end = os.lseek(fd, 0, os.SEEK_END)
        if end and not compressed and os.pread(fd, 1, end - 1) != b"\n":
            line = b"\n" + line
        try:
            while line:
                line = line[os.write(fd, line):]
            os.fsync(fd)
        except OSError as error:
            os.ftruncate(fd, end)
            raise DataError(f"{path}: the result row could not be written ({error.strerror}); nothing of it was "
                            "kept") from error
    finally:
        os.close(fd)


def read_records(path: Path) -> list[RunRecord]:
    """The result records of a JSON-lines file. A line that is not a usable row (torn by a crash, edited by
    hand, of an unknown form, with a number that is not finite) is skipped and reported as file:line; the
    others are still read."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(text_of(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(RunRecord.from_row(json.loads(line)))
        except (json.JSONDecodeError, RowError, TypeError) as error:
            log.warning(f"{path}:{number}: skipped, not a usable result row ({str(error)[:200]})")
    return records


def text_of(path: Path) -> str:
    """A result file's text; of a .gz file, the lines of its complete gzip members. A member torn by a crash is
    skipped and reported, and reading goes on at the next member (the rows appended after the crash)."""
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data.decode(errors="replace")
    rows, start = [], 0
    while start < len(data):
        member = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)  # one gzip member
        try:
            row = member.decompress(data[start:])
        except zlib.error:
            row = b""
        if member.eof:
            rows.append(row)
            start = len(data) - len(member.unused_data)
            continue
        log.warning(f"{path}: row {len(rows) + 1} skipped, a torn gzip member (an interrupted write)")
        rows.append(b"\n")  # keeps the rows after it numbered as they were written
        found = data.find(GZIP_MAGIC, start + 1)
        start = found if found >= 0 else len(data)
    return b"".join(rows).decode(errors="replace")


def code_revision(root: Path = Path(__file__).resolve().parents[2]) -> str:
    """The git revision of the checkout the suite runs from (`root`), `-dirty` when its code differs from it: a
    changed tracked file outside results/, or a file git does not ignore that is new in one of the suite's
    packages (a method's module not yet committed). Without git, the installed package version."""
    try:
        revision = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                  ".", ":(exclude)results"], capture_output=True, text=True, check=True).stdout
        added = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all", "--",
                                *PACKAGES], capture_output=True, text=True, check=True).stdout
        dirty = (changed + added).strip()
        return revision + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        try:
            return version("graph-cmh-bench")
        except PackageNotFoundError:
            return "unknown"


def print_summary(record: RunRecord, console=None) -> None:
    """The small table `make bench` prints: both directions' mAP@all, mAP@K and tie-averaged mAP (and the cosine
    mAP@all of a real-valued method's features)."""
    from rich.console import Console
    from rich.table import Table

    hamming = {d: record.score("hamming", d) for d in DIRECTIONS}
    ks = sorted(hamming["i2t"].map_at, key=int)
    table = Table(title=f"{record.method} | {record.dataset_config} ({record.protocol}) | {record.bits} bits | "
                        f"seed {record.seed}")
    cosine = "cosine" in record.kinds
    for column in ["direction", "mAP@all", *(f"mAP@{k}" for k in ks), "tie-avg mAP@all", "empty queries",
                   *(["cosine mAP@all (features)"] if cosine else [])]:
        table.add_column(column, justify="right")
    for direction, label in DIRECTIONS.items():
        scores = hamming[direction]
        values = [scores.map, *(scores.map_at[k] for k in ks), scores.map_tie]
        extra = [f"{record.score('cosine', direction).map:.4f}"] if cosine else []
        table.add_row(label, *(f"{v:.4f}" for v in values), str(scores.empty_queries), *extra)
    (console or Console()).print(table)
