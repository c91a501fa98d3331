"""The process around a run: a quiet, honest console and signals that tell the truth.

A run stopped by SIGTERM (what a cluster scheduler sends) or SIGINT (Ctrl-C) ends with status 143 or 130
and writes no result row; a sweep's cell dies with the sweep that started it.
"""

import ctypes
import logging
import os
import signal
import sys
import threading
import warnings

NOISE = (".*LeafSpec.*", ".*configure_optimizers.*", ".*log_every_n_steps.*", ".*across ranks is zero.*",
         ".*does not have many workers.*")
PARENT = "CMHB_PARENT_PID"  # set by a sweep for its cells


class Stopped(BaseException):
    """The process received SIGTERM or SIGINT. A BaseException, so that nothing on the way (Lightning's
    KeyboardInterrupt handling, which exits with status 1) mistakes it for an ordinary error."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum, self.status = signum, 128 + signum


def stop_on_signals(restore: dict | None = None) -> dict:
    """Make SIGTERM and SIGINT raise Stopped wherever the process is (Lightning calls a handler it finds), or put
    back the handlers `restore` names (as an earlier call returned them).

    Returns:
        The handlers this call replaced.
    """
    def handler(signum, frame):
        raise Stopped(signum)

    handler.stops = True  # ours: row_written may set it aside
    replaced = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        replaced[signum] = signal.signal(signum, restore[signum] if restore else handler)
    return replaced


def row_written() -> None:
    """The run's result row is appended, so the run is complete: a SIGTERM or SIGINT from now until the command
    returns (which puts the handlers back) is ignored, and the command ends with status 0 beside its row."""
    if threading.current_thread() is not threading.main_thread():
        return  # handlers belong to the main thread; a run there set none
    for signum in (signal.SIGTERM, signal.SIGINT):
        if getattr(signal.getsignal(signum), "stops", False):
            signal.signal(signum, signal.SIG_IGN)


def stop_within(error: BaseException) -> Stopped | None:
    """The Stopped an error carries, if any: a signal raised inside compiled code (the numba kernels of the
    evaluator) comes back as a SystemError whose context is the Stopped."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, Stopped):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def pass_on(stop: Stopped, handlers: dict) -> None:
    """Hand a stop to the handler its caller had installed, when `main` ran inside a Python program with its own
    (a test session's), so that the signal ends that program too; the interpreter's defaults are left alone.

    Args:
        stop: what stopped the run.
        handlers: the caller's handlers, as stop_on_signals returned them.
    """
    handler = handlers.get(stop.signum)
    if callable(handler) and handler is not signal.default_int_handler:
        handler(stop.signum, None)


def die_with_parent() -> None:
    """In a sweep's cell: ask Linux to send SIGTERM when the sweep runner dies, even by SIGKILL, so no cell
    runs on as an orphan (and exit now if the runner is already gone)."""
    parent = os.environ.get(PARENT)
    if not parent or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        raise Stopped(signal.SIGTERM)


def quiet() -> None:
    """Silence what other libraries print on every run: Lightning's device banners and tips (info level),
    transformers' and wandb's chatter, and warnings that ask the user to do nothing (a closed-form method
    has no optimizer; a small set has fewer batches than the log interval)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR if name == "transformers" else logging.WARNING)
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar
    if "transformers" in sys.modules:  # imported already: it read the variable then
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    for message in NOISE:
        warnings.filterwarnings("ignore", message=message)
    suite = logging.getLogger("cmhb")  # the suite's own warnings (damaged caches, collapsed codes, skipped rows)
    if not suite.handlers:
        suite.addHandler(Warnings())


class Warnings(logging.Handler):
    """`warning: ...` lines on whatever sys.stderr is when they are written."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"warning: {record.getMessage()}", file=sys.stderr)


def run_together(commands: list[list[str]]) -> None:
    """Run the commands as processes at once, each dying with this one and using its share of the cores; wait for
    them all.

    Raises:
        DataError: one of them failed (its status named).
    """
    import subprocess

    from common.errors import DataError

    threads = str(max(1, (os.cpu_count() or 1) // len(commands)))
    env = {**os.environ, PARENT: str(os.getpid()), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "NUMBA_NUM_THREADS": threads}
    processes = [subprocess.Popen(command, env=env) for command in commands]
    statuses = [process.wait() for process in processes]
    if any(statuses):
        raise DataError(f"{sum(map(bool, statuses))} of {len(commands)} worker processes failed (statuses {statuses})")
