"""A failure is never a result: diverged runs, signals, killed cells, torn result files, damaged or changed data."""

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.execution.results import append_row, read_records
from benchmarks.reports import tables
from benchmarks.spec.config import resolve
from common.errors import DataError
from datamodules.mirflickr import MIRFlickrDataModule
from datamodules.mirflickr_mini import EMBEDDED, MIRFlickrMiniDataModule

from conftest import SHARED_DATA
from records import fake_record

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("method,lr", [("cagan", ["--method.lr=1e9"]), ("dagnn", ["--method.lr=1e9"]),
                                       ("sgrn", ["--method.image_lr=1e9", "--method.text_lr=1e9"])])
def test_a_diverged_run_exits_non_zero_and_writes_no_row(method, lr, tmp_path, capsys):
    results = tmp_path / "rows.jsonl"
    status = main(["bench", "--method", method, "--dataset", "toy", "--bits", "16", *lr, "--data.subset=300",
                   "--trainer.max_epochs=3", "--logger.kind=none", f"--results={results}"])
    err = capsys.readouterr().err
    assert status == 1 and not results.exists()
    assert err.startswith(f"error: {method}: ") and any(s in err for s in ("not finite", "is nan", "is inf")), err
    assert "epoch" in err and err.count("\n") == 1


def test_an_append_after_a_torn_line_starts_a_new_line_and_readers_skip_the_torn_one(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    append_row(path, fake_record("cca_itq", 16, 0, 0.5, 0.4))
    with open(path, "a") as f:
        f.write('{"method": "cagan", "map_i2t": 0.5')  # a crash in the middle of a write
    append_row(path, fake_record("egath", 16, 0, 0.7, 0.3))
    assert [r.method for r in read_records(path)] == ["cca_itq", "egath"]
    assert f"{path}:2: skipped, not a usable result row" in caplog.text
    written = tables.build(path, tmp_path, None)
    assert "egath" in (tmp_path / "tables.csv").read_text() and written


def test_a_compressed_results_file_appends_a_member_per_row_and_skips_one_torn_by_a_crash(tmp_path, caplog):
    path = tmp_path / "rows.jsonl.gz"
    append_row(path, fake_record("cca_itq", 16, 0, 0.5, 0.4))
    one_row = path.stat().st_size
    with open(path, "ab") as f:
        f.write(gzip.compress(b'{"method": "cagan"}\n')[:15])  # a crash in the middle of a write
    append_row(path, fake_record("egath", 16, 0, 0.7, 0.3))
    assert [r.method for r in read_records(path)] == ["cca_itq", "egath"]
    assert f"{path}: row 2 skipped, a torn gzip member" in caplog.text
    assert gzip.decompress(path.read_bytes()[:one_row]).decode().count("\n") == 1  # a standard gzip member


def bench_process(tmp_path: Path, *args: str, caller: str = "") -> subprocess.Popen:
    """A `cmhb bench` process (or Python program `caller`, given the command's arguments); returns once the run
    has announced its data (training is about to start)."""
    launch = ["-c", caller] if caller else ["-m", "benchmarks.cli"]
    process = subprocess.Popen([sys.executable, *launch, "bench", *args, "--logger.kind=none",
                                f"--results={tmp_path / 'rows.jsonl'}"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert " bits | seed " in process.stdout.readline()
    return process


@pytest.mark.slow
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_bench_with_the_signals_status_and_no_row(signum, status, tmp_path):
    process = bench_process(tmp_path, "--method", "cagan", "--dataset", "toy", "--bits", "16",
                            "--trainer.max_epochs=100000")
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert not (tmp_path / "rows.jsonl").exists()


CALLER = """import signal, sys
from benchmarks.cli import main
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(7))
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_signal_inside_an_in_process_call_also_stops_its_caller(tmp_path):
    """What `timeout make test` needs: pytest must not carry on with the next test."""
    process = bench_process(tmp_path, "--method", "cagan", "--dataset", "toy", "--bits", "16",
                            "--trainer.max_epochs=100000", caller=CALLER)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 7 and "stopped by SIGTERM" in err, err


def cells(pid: int) -> list[int]:
    """The `cmhb bench` child processes of a sweep runner (of any of its threads), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            try:
                if b"\0bench\0" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:
                continue
    return found


def wait_for(condition, what: str, limit: float = 120):
    """Poll until `condition()` is true; the limit only keeps a broken test from hanging."""
    deadline = time.monotonic() + limit
    while not (value := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return value


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


@pytest.fixture
def blocking_wikipedia(tmp_path) -> Path:
    """A Wikipedia folder whose raw_features.mat is a named pipe: a cell reading it blocks until killed."""
    folder = tmp_path / "blocking"
    folder.mkdir()
    for name in ("trainset_txt_img_cat.list", "testset_txt_img_cat.list"):
        (folder / name).symlink_to(ROOT / "datamodules" / "embedded" / "wikipedia" / name)
    os.mkfifo(folder / "raw_features.mat")
    return folder


def sweep_process(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.cli", "sweep", "--methods", "lsh,cca_itq",
                             "--datasets", "wikipedia", "--bits", "16", "--results", str(tmp_path / "rows.jsonl"),
                             "--logger.kind=none", *overrides], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_a_killed_cell_fails_the_sweep_and_a_rerun_completes_it_once(tmp_path, blocking_wikipedia):
    sweep = sweep_process(tmp_path, f"--wikipedia:data.data_dir={blocking_wikipedia}")
    killed = []
    for _ in range(2):  # each cell blocks on the pipe in turn: kill it as a machine failure would
        cell = wait_for(lambda: [c for c in cells(sweep.pid) if c not in killed], "a running cell")[0]
        os.kill(cell, signal.SIGKILL)
        killed.append(cell)
    out, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 1 and out.count("failed (exit -9)") == 2 and "2 failed" in out, out
    # The data folder is not part of a cell's identity: the same grid on the embedded copy completes it.
    rerun = sweep_process(tmp_path)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "2 ran, 0 skipped" in out, out
    assert sorted(r.method for r in read_records(tmp_path / "rows.jsonl")) == ["cca_itq", "lsh"]


@pytest.mark.slow
def test_cells_die_with_a_killed_runner_and_a_claimed_cell_is_not_run_twice(tmp_path, blocking_wikipedia):
    sweep = sweep_process(tmp_path, f"--wikipedia:data.data_dir={blocking_wikipedia}")
    cell = wait_for(lambda: cells(sweep.pid), "a running cell")[0]
    sweep.kill()  # SIGKILL: the runner cannot clean up; the cell must not run on as an orphan
    sweep.communicate()
    wait_for(lambda: not alive(cell), "the orphaned cell to end")
    # Another process holding a cell's claim: this runner leaves that cell alone and says so.
    results = tmp_path / "rows.jsonl"
    digest = resolve("lsh", "wikipedia", 16, 0, ["--logger.kind=none"]).hash
    claims = tmp_path / "rows.jsonl.claims"
    claims.mkdir(exist_ok=True)
    (claims / f"{digest}.claim").write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live process's claim
    rerun = sweep_process(tmp_path)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 1 and "lsh-wikipedia-16b-s0 is being run by another process" in out, out
    assert [r.method for r in read_records(results)] == ["cca_itq"]


def mini_copy(folder: Path, change) -> Path:
    folder.mkdir()
    with np.load(EMBEDDED) as saved:
        arrays = {k: saved[k] for k in saved.files}
    change(arrays)
    np.savez(folder / EMBEDDED.name, **arrays)
    return folder


def test_rows_of_changed_data_carry_another_fingerprint_and_tables_keep_them_apart(tmp_path, caplog):
    clean = MIRFlickrMiniDataModule(cache_dir=tmp_path)
    clean.setup()
    shifted = MIRFlickrMiniDataModule(str(mini_copy(tmp_path / "shifted", lambda a: a.update(
        tags=np.roll(a["tags"], 1, axis=0)))), cache_dir=tmp_path)
    shifted.setup()
    scaled = MIRFlickrMiniDataModule(str(mini_copy(tmp_path / "scaled", lambda a: a.update(
        image=a["image"] * 1e30))), cache_dir=tmp_path)
    scaled.setup()
    assert len({clean.fingerprint, shifted.fingerprint, scaled.fingerprint}) == 3
    zeroed = MIRFlickrMiniDataModule(str(mini_copy(tmp_path / "zeroed", lambda a: a.update(
        image=np.zeros_like(a["image"])))), cache_dir=tmp_path)
    zeroed.setup()
    assert "the image features of every training item are the same (all zero)" in caplog.text
    # The same config on two copies of the data: two tables, each named by its data.
    results = tmp_path / "rows.jsonl"
    for data_dir in (None, tmp_path / "shifted"):
        assert main(["bench", "--method", "cca_itq", "--bits", "16", "--logger.kind=none", f"--results={results}",
                     *([f"--data.data_dir={data_dir}"] if data_dir else [])]) == 0
    tables.build(results, tmp_path / "tables", None)
    names = {line.split(",")[0] for line in (tmp_path / "tables" / "tables.csv").read_text().splitlines()[1:]}
    assert names == {f"mirflickr25k_mini [data {clean.fingerprint[:8]}]",
                     f"mirflickr25k_mini [data {shifted.fingerprint[:8]}]"}


@pytest.mark.shared_data("mirflickr25k")
def test_a_copy_with_tags_shifted_by_one_line_has_another_fingerprint(tmp_path):
    mir = SHARED_DATA / "mirflickr25k"
    copy = tmp_path / "mir"
    copy.mkdir()
    for name in ("all_imgs.txt", "all_labels.txt", "TagList.txt", "images"):
        (copy / name).symlink_to(mir / name)
    lines = (mir / "all_tags.txt").read_text().splitlines()
    (copy / "all_tags.txt").write_text("\n".join(lines[1:] + lines[:1]) + "\n")
    prints = []
    for root in (mir, copy):
        dm = MIRFlickrDataModule(str(root), source="lists", only_with_images=True, image_dir="images", raw=True,
                                 image_backbone="efficientnet-lite0", protocol="mini", cache_dir=str(tmp_path))
        dm.setup()
        prints.append(dm.fingerprint)
    assert prints[0] != prints[1]


def test_malformed_lines_and_paths_are_named(tmp_path, capsys):
    (tmp_path / "all_imgs.txt").write_text("mirflickr/im1.jpg\nmirflickr/picture.jpg\n")
    (tmp_path / "all_tags.txt").write_text("sky\nsea\n")
    (tmp_path / "all_labels.txt").write_text(" ".join(["1"] * 24) + "\n" + " ".join(["0"] * 23 + ["1"]) + "\n")
    (tmp_path / "TagList.txt").write_text("sky\nsea\n")
    with pytest.raises(DataError, match=r"all_imgs.txt:2: 'mirflickr/picture.jpg' names no image"):
        MIRFlickrDataModule(str(tmp_path), source="lists", cache_dir=str(tmp_path)).load()
    assert main(["bench", "--method", "lsh", "--dataset", "wikipedia", "--bits", "16",
                 f"--data.data_dir={tmp_path / 'TagList.txt'}"]) == 2
    assert "TagList.txt is a file; give the folder" in capsys.readouterr().err


def test_collapsed_codes_are_flagged_in_the_row_and_warned(tmp_path, capsys):
    zeroed = mini_copy(tmp_path / "zeroed", lambda a: a.update(image=np.zeros_like(a["image"])))
    results = tmp_path / "rows.jsonl"
    assert main(["bench", "--method", "lsh", "--bits", "16", "--logger.kind=none", f"--data.data_dir={zeroed}",
                 f"--results={results}"]) == 0
    record = read_records(results)[0]
    assert record.collapsed == ["t2i"] and record.score("hamming", "t2i").distinct_codes == 1
    assert record.score("hamming", "i2t").distinct_codes > 100
    assert "lsh: collapsed codes, 1 distinct database codes for T->I" in capsys.readouterr().err


def test_a_signal_inside_compiled_code_is_a_stop_not_a_traceback(monkeypatch, capsys):
    """SIGTERM while a numba kernel of the evaluator runs comes back as a SystemError whose context is the
    Stopped: it is still the signal's status and one line, so that a sweep counts a stopped cell as stopped."""
    from benchmarks import cli
    from benchmarks.execution.console import Stopped

    def kernel(argv):
        try:
            raise Stopped(signal.SIGTERM)
        except Stopped:
            raise SystemError("<numba kernel> returned a result with an exception set")

    monkeypatch.setitem(cli.COMMANDS, "list", kernel)
    handed = []
    monkeypatch.setattr(cli, "pass_on", lambda stop, handlers: handed.append(stop.signum))  # not this session's end
    assert cli.main(["list"]) == 143 and handed == [signal.SIGTERM]
    err = capsys.readouterr().err
    assert err.startswith("stopped by SIGTERM: no result row") and "Traceback" not in err


def test_a_signal_after_the_row_is_written_ends_nothing(tmp_path):
    """The row is the run's last act: once it is appended the run is complete, and a SIGTERM that arrives before
    the command returns is ignored (status 0 beside the row), never 143 beside a written row."""
    from benchmarks.execution.console import row_written, stop_on_signals

    previous = stop_on_signals()
    try:
        row_written()
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: nothing is raised
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        stop_on_signals(previous)
    assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM]


@pytest.mark.slow
def test_a_sigterm_once_the_row_is_announced_leaves_status_0_and_the_row(tmp_path):
    """The row is a run's last act: a SIGTERM after it (while the command returns or the interpreter shuts down)
    ends nothing, so a sweep never counts a written row as a stopped cell."""
    process = bench_process(tmp_path, "--method", "lsh", "--dataset", "toy", "--bits", "16", "--data.subset=300")
    for line in process.stdout:
        if line.startswith("result row appended"):  # the command's last line: it returns, the interpreter ends
            time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            break
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and "Traceback" not in err, err
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 1
