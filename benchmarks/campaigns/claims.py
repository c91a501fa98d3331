"""Claims on sweep cells that several runners respect, on one machine or several sharing a file system.

A claim is the file `<results>.claims/<config hash>.claim`, created exclusively (O_CREAT | O_EXCL: atomic on
local file systems and on NFS version 3 and later, unlike flock, which many NFS setups do not honour). It names
the host and the processes that run the cell, and is removed when the cell ends. A claim whose processes have
all ended (on this host: a killed runner and its cells) is stale and taken over; a claim of another host is
respected until it is removed (a machine that crashed leaves its claims behind: each names its host, so that
they can be deleted by hand once that machine is known to be gone).
"""

import os
import socket
from contextlib import contextmanager
from pathlib import Path

from common.processes import running


class Claim:
    """A held claim; `add(pid)` names one more process that runs the cell (the cell's own)."""

    def __init__(self, path: Path):
        self.path, self.pids = path, [os.getpid()]

    def write(self) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(f"{socket.gethostname()} {' '.join(map(str, self.pids))}\n")
        os.replace(temporary, self.path)

    def add(self, pid: int) -> None:
        self.pids.append(pid)
        self.write()


def stale(path: Path) -> bool:
    """Whether an existing claim's processes have all ended (only a claim of this host can be known stale)."""
    try:
        host, *pids = path.read_text().split()
    except (OSError, ValueError):
        return False  # being written, or gone already
    return host == socket.gethostname() and not any(running(int(p)) for p in pids if p.isdigit())


@contextmanager
def claimed(folder: Path, digest: str):
    """Claim a cell for the time of the block: yields the Claim, or None when another process holds it.

    Args:
        folder: the claims folder (created).
        digest: the cell's config hash.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.claim"
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            break
        except FileExistsError:
            if not stale(path):
                yield None
                return
            path.unlink(missing_ok=True)  # its processes are gone: take it over
    else:
        yield None
        return
    claim = Claim(path)
    claim.write()
    try:
        yield claim
    finally:
        path.unlink(missing_ok=True)
