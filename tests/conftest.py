import faulthandler
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.spec import registry
from datamodules.mirflickr import LABELS

from tiny_clip import save_tiny_clip

# The project's real test data (MIRFlickr photos, lists and .mat files) beside the checkout, or where
# CMHB_SHARED_DATA points (CI points it at an empty folder once, to prove the suite passes without it).
SHARED_DATA = Path(os.environ.get("CMHB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_configure(config):
    signal.signal(signal.SIGTERM, end_session)


def end_session(signum, frame):
    """SIGTERM (`timeout make test`) ends the session at once, as it would without a handler, also when it arrives
    inside an in-process `cmhb` call (which stops its run, then hands the signal here)."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


STALL_SECONDS = 900  # a test whose processes use no CPU for this long is hung (not slow: slow tests compute)


def descendants(pid: int) -> list[int]:
    """The processes a process started, and theirs, from /proc."""
    found, stack = [], [pid]
    while stack:
        try:
            for task in Path(f"/proc/{stack.pop()}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                stack += children
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and all its descendants (threads included), from /proc."""
    total = 0.0
    for current in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


@pytest.fixture(autouse=True)
def hang_guard():
    """Fails a test that hangs, and never one that is merely slow: while the test's process tree keeps using CPU
    it runs as long as it needs (a busy machine only slows it); after STALL_SECONDS without any CPU progress the
    stacks are printed and the test fails. A process the test started and left running is killed after it."""
    if not sys.platform.startswith("linux"):
        yield
        return
    done, main = threading.Event(), threading.get_ident()

    def watch():
        last, since = cpu_seconds(os.getpid()), time.monotonic()
        while not done.wait(10):
            now = cpu_seconds(os.getpid())
            if now > last + 0.05:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                faulthandler.dump_traceback(all_threads=True)
                signal.pthread_kill(main, signal.SIGUSR1)
                return

    def stalled(signum, frame):
        pytest.fail(f"no CPU progress for {STALL_SECONDS} s: the test hangs (stacks above)", pytrace=False)

    previous = signal.signal(signal.SIGUSR1, stalled)
    before = set(descendants(os.getpid()))
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)
        for pid in set(descendants(os.getpid())) - before:
            try:
                if b"wandb" not in Path(f"/proc/{pid}/cmdline").read_bytes():  # wandb's service outlives its runs
                    os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Splits, run folders and wandb runs of a test go to its own temporary folder (its working directory), never
    to the checkout's runs/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def pytest_runtest_setup(item):
    """A test marked `shared_data("<folder>")` reads that real dataset folder of the shared test data: it is
    skipped, with a reason that names the folder and how to provide it, when the folder is absent."""
    for mark in item.iter_markers("shared_data"):
        path = SHARED_DATA / mark.args[0]
        if not path.is_dir():
            pytest.skip(f"real test data not found: {path} (the real {mark.args[0]} files are not bundled with "
                        "the package; put the project's test data beside the checkout as ../shared/data, or set "
                        "CMHB_SHARED_DATA=DIR)")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised CLIP with a character-level tokenizer, saved as a real checkpoint folder."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def photo_lists(tmp_path) -> Path:
    """A MIRFlickr text-list folder of 520 generated photos: a raw-image pipeline without the real data."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "lists"
    (folder / "images").mkdir(parents=True)
    rows = []
    for k in range(1, 521):
        Image.fromarray(rng.integers(0, 255, (30 + k % 40, 50, 3), dtype=np.uint8)).save(folder / "images" / f"im{k}.jpg")
        rows.append(" ".join("1" if j == k % 3 else "0" for j in range(len(LABELS))))
    (folder / "all_imgs.txt").write_text("".join(f"mirflickr/im{k}.jpg\n" for k in range(1, 521)))
    (folder / "all_tags.txt").write_text("".join(f"sky,tag{k % 5}\n" for k in range(1, 521)))
    (folder / "all_labels.txt").write_text("\n".join(rows) + "\n")
    (folder / "TagList.txt").write_text("sky\n" + "".join(f"tag{i}\n" for i in range(5)))
    return folder


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A folder packages are installed into (tests/plugins.py), on the path of this process and of those it
    starts; the registry forgets them after the test."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))  # for a sweep's cells
    yield folder
    registry.rediscover()
