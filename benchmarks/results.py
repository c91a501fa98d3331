"""Result rows (protocol.md): one JSON line per run, appended atomically, never rewritten."""

import fcntl
import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

DIRECTION_NAMES = {"i2t": "I->T", "t2i": "T->I"}


def append_row(path: Path, row: dict) -> None:
    """Append `row` as one line with a single write under an exclusive lock, so concurrent runs
    never interleave and a crash leaves either the whole line or none of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON result row ({error})") from error
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
