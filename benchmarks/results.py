"""Result rows (docs/protocol.md): one JSON line per run, appended under a lock, never rewritten."""

import fcntl
import json
import logging
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

DIRECTION_NAMES = {"i2t": "I->T", "t2i": "T->I"}
log = logging.getLogger("cmhb")


def append_row(path: Path, row: dict) -> None:
    """Append `row` as one line under an exclusive lock, so concurrent runs never interleave. A line left
    torn by an earlier crash is closed first: the new row always starts on a line of its own."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        end = os.lseek(fd, 0, os.SEEK_END)
        if end and os.pread(fd, 1, end - 1) != b"\n":
            line = b"\n" + line
        while line:
            line = line[os.write(fd, line):]
        os.fsync(fd)
    finally:
        os.close(fd)


REQUIRED = ("method", "dataset", "bits", "seed", "config_hash", "map_i2t", "map_t2i")


def read_rows(path: Path) -> list[dict]:
    """The result rows of a JSON-lines file. A line that is not a complete row (torn by a crash, edited by
    hand) is skipped and reported as file:line; the others are still read."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            missing = [key for key in REQUIRED if key not in row]
        except (json.JSONDecodeError, TypeError) as error:
            missing, row = [f"valid JSON ({error})"], None
        if missing or not isinstance(row, dict):
            log.warning(f"{path}:{number}: skipped, not a result row (no {', '.join(missing) or 'object'})")
            continue
        rows.append(row)
    return rows


def print_summary(row: dict, console: Console | None = None) -> None:
    """The small table `make bench` prints: both directions' mAP@all, mAP@K and tie-averaged mAP."""
    ks = sorted(int(key.split("@")[1].split("_")[0]) for key in row if key.startswith("map@") and key.endswith("_i2t"))
    table = Table(title=f"{row['method']} | {row['dataset']} ({row['protocol']}) | {row['bits']} bits | seed {row['seed']}")
    for column in ["direction", "mAP@all", *(f"mAP@{k}" for k in ks), "tie-avg mAP@all", "empty queries"]:
        table.add_column(column, justify="right")
    for direction, label in DIRECTION_NAMES.items():
        values = [row[f"map_{direction}"], *(row[f"map@{k}_{direction}"] for k in ks), row[f"map_tie_{direction}"]]
        table.add_row(label, *(f"{v:.4f}" for v in values), str(int(row[f"empty_queries_{direction}"])))
    (console or Console()).print(table)
