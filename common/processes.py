"""Whether a process still runs: what claims, tuning trials and temporary files left by a killed process are
judged by."""

import os
from pathlib import Path


def running(pid: int) -> bool:
    """Whether process `pid` runs on this machine (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return not Path("/proc").is_dir()  # without /proc (not Linux), os.kill found it: it runs
    except IndexError:
        return True
