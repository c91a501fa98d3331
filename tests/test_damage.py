"""Saved runs and result files under damage and attack: nothing loaded executes code, a partial evaluation is no
result, a flagged run is marked, and every bad input is one line."""

import errno
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.execution.pipeline import build, execute
from benchmarks.execution.results import append_row, read_records
from benchmarks.reports import tables
from benchmarks.spec.config import resolve
from common.errors import IncompleteEvaluation
from common.files import atomic_write_bytes

from records import fake_record


@pytest.fixture
def saved_run(tmp_path):
    """The folder of a finished run (lsh on 300 toy items)."""
    results = tmp_path / "rows.jsonl"
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", "--data.subset=300",
                 "--logger.kind=none", f"--logger.save_dir={tmp_path / 'runs'}", f"--results={results}"]) == 0
    return read_records(results)[0].run_dir


class Exploit:
    def __reduce__(self):
        return os.system, (f"touch {os.environ['MARKER']}",)


def one_error_line(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(fragment in err for fragment in fragments), err


def test_a_pickle_in_a_run_folder_is_never_loaded(saved_run, tmp_path, capsys, monkeypatch):
    """A run folder of the old format, whose method.pt unpickles into a shell command, is refused without
    running anything: run folders are read as JSON, pickle-free arrays and safetensors only."""
    marker = tmp_path / "exploited"
    monkeypatch.setenv("MARKER", str(marker))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "method.pt").write_bytes(pickle.dumps({"arguments": Exploit()}))
    (tmp_path / "old" / "row.json").write_text("{}")
    np.save(tmp_path / "x.npy", np.zeros((2, 128), np.float32))
    capsys.readouterr()
    for command in ("encode", "evaluate"):
        extra = ["--features", str(tmp_path / "x.npy"), "--modality", "image", "--out", str(tmp_path / "c.npy")] \
            if command == "encode" else []
        assert main([command, str(tmp_path / "old"), *extra]) == 1
        one_error_line(capsys, "not a complete run folder")
    assert not marker.exists() and not (tmp_path / "c.npy").exists()
    # The same object in the new format's JSON is inert text, and a changed file fails the manifest.
    arguments = os.path.join(saved_run, "method.json")
    with open(arguments, "r+") as f:
        content = json.load(f)
        content["given"]["image_dim"] = 999
        f.seek(0), f.write(json.dumps(content)), f.truncate()
    assert main(["encode", saved_run, "--features", str(tmp_path / "x.npy"), "--modality", "image",
                 "--out", str(tmp_path / "c.npy")]) == 1
    one_error_line(capsys, "method.json: does not match its checksum")


def test_damaged_or_unfinished_run_folders_are_refused(saved_run, tmp_path, capsys):
    weights = os.path.join(saved_run, "method.safetensors")
    data = bytearray(open(weights, "rb").read())
    data[-8:] = bytes(8)  # flipped floats, as the probe's sign flips
    open(weights, "wb").write(bytes(data))
    for command in (["evaluate", saved_run], ["gallery", saved_run]):
        assert main(command) == 1
        one_error_line(capsys, "method.safetensors: does not match its checksum")
    os.remove(os.path.join(saved_run, "manifest.json"))  # as a kill before the run finished saving leaves it
    assert main(["evaluate", saved_run]) == 1
    one_error_line(capsys, "not a complete run folder")


def test_features_of_the_wrong_shape_are_one_line_naming_width_and_backbone(saved_run, tmp_path, capsys):
    for shape in ((5, 7), (128,)):
        np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
        assert main(["encode", saved_run, "--features", str(tmp_path / "x.npy"), "--modality", "image",
                     "--out", str(tmp_path / "c.npy")]) == 1
        one_error_line(capsys, "takes 128-d image features from its backbone synthetic", str(shape).replace(",)", ",)"))
    assert not (tmp_path / "c.npy").exists()


def test_a_partial_evaluation_is_no_result(tmp_path):
    spec = resolve("lsh", "toy", 16, 0, ["--data.subset=300", "--data.eval_batch_size=32", "--logger.kind=none"])
    run = build(spec, announce=lambda line: None)
    run.trainer.limit_test_batches = 2  # as --trainer.limit_test_batches=2 did (the option is refused now)
    with pytest.raises(IncompleteEvaluation, match="scored 30 of 30 queries and 64 of 270 database items"):
        execute(run, tmp_path / "rows.jsonl")
    assert not (tmp_path / "rows.jsonl").exists()


def test_a_collapsed_run_is_marked_and_never_bold(tmp_path):
    path = tmp_path / "rows.jsonl"
    collapsed = fake_record("egath", 16, 0, 0.9, 0.9)
    object.__setattr__(collapsed, "collapsed", ["i2t"])
    for record in (collapsed, fake_record("cca_itq", 16, 0, 0.5, 0.4), fake_record("lsh", 16, 0, 0.1, 0.1)):
        append_row(path, record)
    tables.build(path, tmp_path, None)
    markdown = (tmp_path / "toy.md").read_text()
    egath = [cell.strip() for cell in next(line for line in markdown.splitlines() if "| egath" in line).split("|")]
    assert egath[4:6] == ["0.9000†", "**0.9000**"]  # I->T collapsed: marked, not bold; T->I the best
    assert "**0.5000**" in markdown  # the next best of the collapsed column is bold
    assert "†: the codes of a run collapsed" in markdown


def test_a_read_only_results_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from datamodules.base import RetrievalDataModule

    results = tmp_path / "rows.jsonl"
    results.write_text("")
    opening = os.open

    def read_only(path, flags, *args):  # as a file on a read-only mount answers, whoever asks (root too)
        if str(path) == str(results) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return opening(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    monkeypatch.setattr(RetrievalDataModule, "setup", lambda self, stage=None: pytest.fail("work began"))
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", f"--results={results}"]) == 2
    one_error_line(capsys, "cannot be written (Read-only file system)")


def test_a_failed_append_leaves_nothing_of_its_row(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    append_row(path, fake_record("cca_itq", 16, 0, 0.5, 0.4))
    before = path.read_bytes()
    written = []

    real_write = os.write

    def full_disk(fd, data):  # the first 100 bytes go through, then the disk is full
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        return real_write(fd, data[:100])

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(Exception, match="No space left on device"):
        append_row(path, fake_record("egath", 16, 0, 0.7, 0.3))
    monkeypatch.undo()
    assert path.read_bytes() == before and [r.method for r in read_records(path)] == ["cca_itq"]


def test_unusable_rows_are_skipped_one_by_one(tmp_path, caplog):
    path = tmp_path / "rows.jsonl"
    good = fake_record("cca_itq", 16, 0, 0.5, 0.4).to_row()
    bad = [{**good, "scores": [{**good["scores"][0], "map": float("nan")}, good["scores"][1]]},
           {**good, "scores": [{**good["scores"][0], "map": "0.5"}, good["scores"][1]]},
           {**good, "scores": [{**good["scores"][0], "map": float("inf")}, good["scores"][1]]},
           {**good, "config": {"method": {}}},
           {k: v for k, v in good.items() if k != "protocol"},
           {**good, "method": "removed_method", "config_hash": "x"},
           {**good, "schema": 3},  # a newer suite's row
           {**good, "bits": -16},
           {**good, "scores": [{**good["scores"][0], "ap": [0.5] * 199}, good["scores"][1]]}]  # 200 queries
    lines = [json.dumps(good), *map(json.dumps, bad), json.dumps({"method": "lsh", "map_i2t": 0.1})]
    path.write_text("\n".join(lines) + "\n")
    records = read_records(path)
    assert len(records) == 2  # the good row, and a method's the suite no longer declares (a row describes itself)
    assert all(f"{path}:{n}: skipped" in caplog.text for n in (2, 3, 4, 5, 6, 8, 9, 10, 11))
    assert "of row schema 3, which this suite (2) does not know" in caplog.text
    assert "bits -16 or seed 0 is out of range" in caplog.text and "query APs for" in caplog.text
    tables.build(path, tmp_path, None)  # the rest builds
    assert "| cca_itq" in (tmp_path / "toy.md").read_text() and "| removed_method" in (tmp_path / "toy.md").read_text()


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".features.npy.{dead.pid}.abc123.tmp"
    leftover.write_bytes(b"x" * 1000)
    mine = tmp_path / f".features.npy.{os.getpid()}.def456.tmp"  # a live writer's: kept
    mine.write_bytes(b"y")
    atomic_write_bytes(tmp_path / "features.npy", b"data")
    assert not leftover.exists() and mine.exists() and (tmp_path / "features.npy").read_bytes() == b"data"


def crafted(folder, name: str, data: bytes) -> None:
    """Replace a file of a run folder and its manifest entry: what anyone can do (the manifest vouches that a
    folder is whole, not who made it)."""
    from common.files import sha256_bytes

    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    manifest_path = os.path.join(folder, "manifest.json")
    manifest = json.load(open(manifest_path))
    manifest[name] = sha256_bytes(data)
    open(manifest_path, "w").write(json.dumps(manifest))


def codes_npz(saved_run, change) -> bytes:
    import io

    with np.load(os.path.join(saved_run, "codes.npz")) as saved:
        arrays = change({key: saved[key] for key in saved.files})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def arguments(saved_run, change) -> bytes:
    return json.dumps(change(json.load(open(os.path.join(saved_run, "method.json"))))).encode()


CRAFTED = {  # name: (command, file, its new content from the saved run, what the one line says)
    "method.json a list": ("encode", "method.json", lambda run: b"[1, 2]", "not a saved method's arguments"),
    "method.json without given": ("encode", "method.json", lambda run: arguments(
        run, lambda a: {k: v for k, v in a.items() if k != "given"}), "not a saved method's arguments (given"),
    "bits a string": ("encode", "method.json", lambda run: arguments(run, lambda a: {**a, "bits": "16"}),
                      "not a saved method's arguments (bits"),
    "bits 1e12": ("encode", "method.json", lambda run: arguments(run, lambda a: {**a, "bits": 10**12}),
                  "a code length from 1 to 4096"),
    "weights of another shape": ("encode", "method.json", lambda run: arguments(run, lambda a: {**a, "bits": 8}),
                                 "do not fit lsh"),  # PyTorch's message spans lines: one here
    "an unknown option": ("encode", "method.json", lambda run: arguments(
        run, lambda a: {**a, "options": {**a["options"], "nosuch": 1}}), "do not fit lsh"),
    "codes.npz truncated": ("evaluate", "codes.npz", lambda run: open(os.path.join(run, "codes.npz"), "rb").read()[:300],
                            "unreadable run folder"),
    "codes.npz without a key": ("evaluate", "codes.npz", lambda run: codes_npz(
        run, lambda a: {k: v for k, v in a.items() if k != "t2i_database_labels"}), "no t2i database codes and labels"),
    "labels of other rows": ("evaluate", "codes.npz", lambda run: codes_npz(
        run, lambda a: {**a, "i2t_query_labels": a["i2t_query_labels"][:-1]}), "do not fit 16-bit codes"),
    "manifest a list": ("evaluate", "manifest.json", lambda run: b"[]", "not a manifest"),
    "NaN weights": ("encode", "method.safetensors", lambda run: nan_weights(run), "not finite"),
}


def nan_weights(saved_run) -> bytes:
    from safetensors.torch import load_file, save

    tensors = load_file(os.path.join(saved_run, "method.safetensors"))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = tensors[name].clone().fill_(float("nan"))
    return save(tensors)


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_or_damaged_run_folder_is_one_line(saved_run, tmp_path, capsys, case):
    command, name, content, fragment = CRAFTED[case]
    if name == "manifest.json":
        open(os.path.join(saved_run, name), "wb").write(content(saved_run))
    else:
        crafted(saved_run, name, content(saved_run))
    np.save(tmp_path / "x.npy", np.zeros((2, 128), np.float32))
    extra = ["--features", str(tmp_path / "x.npy"), "--modality", "image", "--out", str(tmp_path / "c.npy")] \
        if command == "encode" else []
    capsys.readouterr()
    assert main([command, saved_run, *extra]) == 1
    one_error_line(capsys, fragment)
    assert not (tmp_path / "c.npy").exists()


def test_a_link_in_a_run_folder_is_refused(saved_run, tmp_path, capsys):
    """A weights file that links out of the folder would be read wherever it points."""
    weights = os.path.join(saved_run, "method.safetensors")
    os.replace(weights, tmp_path / "elsewhere.safetensors")
    os.symlink(tmp_path / "elsewhere.safetensors", weights)
    assert main(["evaluate", saved_run]) == 1
    one_error_line(capsys, "method.safetensors: a link")


@pytest.mark.parametrize("features, fragment", [
    (np.zeros((0, 128), np.float32), "got an array of shape (0, 128)"),
    (np.array([["a"] * 128]), "features must be real numbers; got an array of <U1"),
    (np.zeros(2, dtype=[("a", "f4"), ("b", "f4")]), "features must be real numbers"),
    (np.ones((2, 128), np.complex64), "features must be real numbers; got an array of complex64"),
    (np.full((2, 128), 1e300), "values that are not finite as float32"),
])
def test_encode_refuses_features_that_are_no_real_finite_matrix(saved_run, tmp_path, capsys, features, fragment):
    np.save(tmp_path / "x.npy", features)
    capsys.readouterr()
    assert main(["encode", saved_run, "--features", str(tmp_path / "x.npy"), "--modality", "image",
                 "--out", str(tmp_path / "c.npy")]) == 1
    one_error_line(capsys, f"{tmp_path / 'x.npy'}: ", fragment)
    assert not (tmp_path / "c.npy").exists()


def test_encode_writes_the_file_it_names(saved_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 128), np.float32))
    for out in (tmp_path, tmp_path / "codes"):  # a folder; a name NumPy would save as codes.npy
        assert main(["encode", saved_run, "--features", str(tmp_path / "x.npy"), "--modality", "image",
                     "--out", str(out)]) == 2
        one_error_line(capsys, f"--out {out}: give a .npy file")
    assert main(["encode", saved_run, "--features", str(tmp_path / "x.npy"), "--modality", "image",
                 "--out", str(tmp_path / "codes.npy")]) == 0
    assert f"wrote {tmp_path / 'codes.npy'}: 3 codes of 16 bits" in capsys.readouterr().out
    assert np.load(tmp_path / "codes.npy").shape == (3, 16)


@pytest.mark.parametrize("where", ["run folder", "row"])
def test_a_full_disk_names_the_file_and_leaves_no_run_folder(tmp_path, capsys, monkeypatch, where):
    """A run that cannot write its folder or its row is a failed run: the error names the file, and nothing of
    its folder is left (a folder without a row would look like a result that was never recorded)."""
    from benchmarks.execution import pipeline

    real_fsync = os.fsync

    def full(fd):  # the disk fills up as the run folder is written (the data caches before it still fit)
        if "/artifacts/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    def row_not_written(path, record):  # what append_row raises on a full disk
        raise pipeline.DataError(f"{path}: the result row could not be written (No space left on device)")

    if where == "run folder":
        monkeypatch.setattr(os, "fsync", full)  # every atomic write ends with an fsync
    else:
        monkeypatch.setattr(pipeline, "append_row", row_not_written)
    results = tmp_path / "rows.jsonl"
    capsys.readouterr()
    assert main(["bench", "--method", "lsh", "--dataset", "toy", "--bits", "16", "--data.subset=300",
                 "--logger.kind=none", f"--logger.save_dir={tmp_path / 'runs'}", f"--results={results}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "No space left on device" in err, err
    if where == "run folder":
        assert f"{tmp_path / 'runs' / 'artifacts'}/lsh-toy" in err and "codes.npz" in err
    assert not list((tmp_path / "runs" / "artifacts").glob("*")) and not results.exists()
