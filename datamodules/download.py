"""Downloads that resume, verify and extract safely."""

import hashlib
import json
import os
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from common.errors import DataError
from common.files import atomic_write_bytes

CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """A public file: where it is, its name on disk, and what it must hash to (MD5 as published)."""

    url: str
    filename: str
    md5: str | None = None
    size: int | None = None


def mirrored(remotes, official_base: str, base_url: str, checksums: dict | None) -> list[Remote]:
    """The same files on another host. `checksums` ({file name: md5}) only for a mirror serving
    other bytes (the tests' miniature archives); then the published sizes no longer apply either."""
    return [Remote(base_url + r.url.removeprefix(official_base), r.filename, (checksums or {}).get(r.filename, r.md5),
                   None if checksums else r.size) for r in remotes]


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, part: Path, size: int | None) -> None:
    """Append the rest of `url` to `part`, resuming from its current length with an HTTP range request."""
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and size is not None and done == size:  # already complete
            return
        raise
    with response:
        if done and response.status != 206:  # the server ignored the range: start over
            done = 0
        total = response.length + done if response.length is not None else size
        with open(part, "ab" if done else "wb") as f, Progress(
                "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TimeRemainingColumn(), transient=True) as progress:
            task = progress.add_task(part.name.removesuffix(".part"), total=total, completed=done)
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                progress.advance(task, len(block))


def download(remote: Remote, folder: Path, attempts: int = 3, offline: str = "") -> Path:
    """`folder/remote.filename`, downloaded if absent. Interrupted downloads resume from `<name>.part`;
    a file whose size or MD5 is wrong is never used: it is fetched again, up to `attempts` times. Without a
    network (the host's name cannot be resolved) there is no second attempt.

    Args:
        remote: the file.
        folder: where it goes.
        attempts: tries before giving up.
        offline: what to do without a network, for the error message (the dataset's other sources).

    Raises:
        DataError: the download failed (the message says what was kept and what to do) or the file is corrupt.
    """
    target = Path(folder) / remote.filename
    if target.exists():
        _verify(remote, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, attempts + 1):
        try:
            _fetch(remote.url, part, remote.size)
            _verify(remote, part)
            os.replace(part, target)
            _remember(target, remote.md5)
            return target
        except DataError:
            part.unlink(missing_ok=True)  # corrupt: resuming would keep the bad bytes
            if attempt == attempts:
                raise
        except (urllib.error.URLError, OSError) as error:
            no_network = isinstance(getattr(error, "reason", error), socket.gaierror)
            if attempt == attempts or no_network:
                kept = f"; {part.stat().st_size:,} bytes are kept in {part}, a rerun resumes them" \
                    if part.exists() and part.stat().st_size else ""
                raise DataError(f"{remote.url}: download failed{' (no network)' if no_network else ''} after "
                                f"{attempt} attempt{'s' if attempt > 1 else ''} ({getattr(error, 'reason', error)})"
                                f"{kept}; place the file at {target}" + (f", or {offline}" if offline else ""))
        time.sleep(min(2 ** attempt, 30))
    raise AssertionError("unreachable")


def fetch_all(remotes, folder: Path, offline: str = "") -> None:
    """Download each remote file into `folder` (when absent) and extract it there (once); `offline` says what to
    do without a network (download's error message). An archive whose extraction finished (its
    `<name>.extracted` marker) is neither downloaded nor verified again, so it may be deleted."""
    for remote in remotes:
        if not _marker(Path(folder), remote.filename).exists():
            extract(download(remote, folder, offline=offline), folder)


def _verify(remote: Remote, path: Path) -> None:
    """Size, then MD5; a file verified before and unchanged since (its `<name>.verified` record) is not hashed
    again, since hashing a 3-19 GB archive costs a minute in every run."""
    if remote.size is not None and path.stat().st_size != remote.size:
        raise DataError(f"{path}: {path.stat().st_size} bytes, expected {remote.size} (truncated or wrong file)")
    if remote.md5 is None or _remembered(path) == remote.md5:
        return
    print(f"verifying {path.name} ({path.stat().st_size / 1e9:.2f} GB)", file=sys.stderr, flush=True)
    if md5_file(path) != remote.md5:
        raise DataError(f"{path}: MD5 does not match the published {remote.md5} (corrupt or wrong file)")
    if not path.name.endswith(".part"):
        _remember(path, remote.md5)


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _remember(path: Path, md5: str | None) -> None:
    if md5 is not None:
        atomic_write_bytes(_record(path), json.dumps({**_stamp(path), "md5": md5}).encode())


def _remembered(path: Path) -> str | None:
    """The MD5 recorded for `path` if the file is unchanged since (same size and modification time)."""
    try:
        record = json.loads(_record(path).read_text())
        return record["md5"] if {k: record[k] for k in ("size", "mtime_ns")} == _stamp(path) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _marker(target: Path, archive_name: str) -> Path:
    # Not ending in the archive's own suffix: deleting the archives (`*.zip`) keeps the markers.
    return target / f"{archive_name}.extracted"


def extract(archive: Path, target: Path) -> Path:
    """Extract a zip or tar archive into `target`; refuses members that would land outside it.

    A marker file records completion, so an interrupted extraction is simply redone.
    """
    archive, target = Path(archive), Path(target)
    marker = _marker(target, archive.name)
    if marker.exists():
        return target
    print(f"extracting {archive.name} into {target}", file=sys.stderr, flush=True)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    _inside(root, name, archive)
                bad = z.testzip()
                if bad is not None:
                    raise DataError(f"{archive}: member {bad} fails its CRC check (corrupt archive)")
                z.extractall(target)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    _inside(root, member.name, archive)
                    if member.issym() or member.islnk():
                        raise DataError(f"{archive}: member {member.name} is a link; refusing to extract")
                t.extractall(target, filter="data")
        else:
            raise DataError(f"{archive}: neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise DataError(f"{archive}: corrupt archive ({error})") from error
    marker.touch()
    return target


def _inside(root: Path, name: str, archive: Path) -> None:
    if not (root / name).resolve().is_relative_to(root):
        raise DataError(f"{archive}: member {name!r} would be written outside {root}; refusing to extract")
