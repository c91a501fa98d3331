"""A throwaway PostgreSQL server on a free loopback port, from the machine's PostgreSQL binaries (Debian's
`postgresql` package: .ci/run installs it), for the tests of shared studies; None where none can be started."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path


def binaries() -> Path | None:
    """The folder of initdb, pg_ctl and createdb: initdb's on PATH (links followed), or Debian's
    /usr/lib/postgresql/<version>/bin (the newest)."""
    on_path = shutil.which("initdb")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    for initdb in ([str(Path(on_path).resolve())] if on_path else []) + found[::-1]:
        if all((Path(initdb).parent / tool).is_file() for tool in ("pg_ctl", "createdb")):
            return Path(initdb).parent
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server():
    """Yields (the URL of an empty database on a new server, None) or (None, why no server could be started).
    As root the server runs as the `postgres` user (PostgreSQL refuses root), in a folder of the system's
    temporary one (pytest's are private to their user); the folder goes with the server."""
    bin_dir = binaries()
    if bin_dir is None:
        yield None, "no PostgreSQL binaries (apt-get install postgresql)"
        return
    with tempfile.TemporaryDirectory(prefix="cmhb-postgres-") as name:
        with server(bin_dir, Path(name)) as answer:
            yield answer


@contextmanager
def server(bin_dir: Path, folder: Path):
    user = "postgres" if os.geteuid() == 0 else None
    data = folder / "pgdata"
    data.mkdir(mode=0o700)
    if user:
        shutil.chown(folder, user), shutil.chown(data, user)

    def run(*command):
        return subprocess.run([str(bin_dir / command[0]), *command[1:]], user=user, capture_output=True, text=True,
                              timeout=120, cwd=folder)

    port = free_port()
    made = run("initdb", "-D", str(data), "-A", "trust", "-U", "bench")
    started = made.returncode == 0 and run("pg_ctl", "-D", str(data), "-w", "-l", str(folder / "server.log"), "-o",
                                           f"-h 127.0.0.1 -p {port} -k {folder}", "start").returncode == 0
    try:
        if not started or run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "bench", "studies").returncode:
            log = (folder / "server.log").read_text()[-300:] if (folder / "server.log").exists() else made.stderr[-300:]
            yield None, f"no PostgreSQL server could be started here ({' '.join(log.split())})"
            return
        yield f"postgresql://bench@127.0.0.1:{port}/studies", None
    finally:
        if started:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
