"""Downloads resume and verify; archives never write outside their target."""

import io
import tarfile
import zipfile

import pytest

from common.errors import DataError
from datamodules import download as dl
from datamodules.download import Remote, download, extract, md5_file

from servers import FileServer


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(dl.time, "sleep", lambda seconds: None)


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    payload = bytes(range(256)) * 4000  # ~1 MB, several read chunks
    (folder / "file.bin").write_bytes(payload)
    with FileServer(folder) as server:
        yield server, payload, folder


def test_download_verifies_and_is_reused(served, tmp_path):
    server, payload, folder = served
    remote = Remote(server.url + "file.bin", "file.bin", md5_file(folder / "file.bin"), len(payload))
    path = download(remote, tmp_path / "out")
    assert path.read_bytes() == payload
    (folder / "file.bin").unlink()  # a second call must not need the server
    assert download(remote, tmp_path / "out") == path


def test_interrupted_download_resumes_from_the_part_file(served, tmp_path):
    server, payload, folder = served
    out = tmp_path / "out"
    out.mkdir()
    (out / "file.bin.part").write_bytes(payload[:300_000])
    (folder / "file.bin").write_bytes(b"X" * 300_000 + payload[300_000:])  # only the tail is fetched again
    remote = Remote(server.url + "file.bin", "file.bin", md5_file(folder / "file.bin"), len(payload))
    with pytest.raises(DataError, match="MD5 does not match"):
        # The saved head differs from the served one, so the resumed file fails its checksum...
        download(remote, out, attempts=1)
    assert not (out / "file.bin.part").exists()  # ...and the bad bytes are never kept.
    (out / "file.bin.part").write_bytes(b"X" * 300_000)
    assert download(remote, out).read_bytes() == (folder / "file.bin").read_bytes()


def test_corrupt_download_is_retried_then_reported(served, tmp_path):
    server, payload, _ = served
    remote = Remote(server.url + "file.bin", "file.bin", "0" * 32, len(payload))
    with pytest.raises(DataError, match="file.bin.part: MD5 does not match the published"):
        download(remote, tmp_path / "out", attempts=2)
    assert not (tmp_path / "out" / "file.bin").exists()


def test_truncated_file_is_detected_by_size(served, tmp_path):
    server, payload, _ = served
    remote = Remote(server.url + "file.bin", "file.bin", None, len(payload) + 10)
    with pytest.raises(DataError, match="bytes, expected"):
        download(remote, tmp_path / "out", attempts=1)


def test_unreachable_host_says_what_to_do(tmp_path):
    remote = Remote("http://127.0.0.1:9/file.bin", "file.bin")
    with pytest.raises(DataError, match="download failed after 2 attempts.*place the file at") as error:
        download(remote, tmp_path, attempts=2, offline="use the local copy")
    assert ".part" not in str(error.value) and str(error.value).endswith(", or use the local copy")  # none was kept
    offline = Remote("http://no-such-host.invalid/file.bin", "file.bin")  # no network: one attempt, said so
    with pytest.raises(DataError, match=r"download failed \(no network\) after 1 attempt "):
        download(offline, tmp_path, attempts=3)


def test_zip_member_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../escaped.txt", "bad")
    with pytest.raises(DataError, match="would be written outside"):
        extract(archive, tmp_path / "target")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "target" / "ok.txt").exists()


def test_tar_link_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as t:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    with pytest.raises(DataError, match="is a link"):
        extract(archive, tmp_path / "target")


def test_corrupt_zip_is_reported_and_extraction_is_marked_only_when_complete(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.txt", "hello world" * 100)
    data = bytearray(buffer.getvalue())
    data[60] ^= 0xFF  # flip a byte of the stored member
    (tmp_path / "bad.zip").write_bytes(bytes(data))
    with pytest.raises(DataError, match="bad.zip"):
        extract(tmp_path / "bad.zip", tmp_path / "target")
    assert not (tmp_path / "target" / "bad.zip.extracted").exists()
    (tmp_path / "good.zip").write_bytes(buffer.getvalue())
    assert (extract(tmp_path / "good.zip", tmp_path / "target") / "a.txt").exists()
    assert (tmp_path / "target" / "good.zip.extracted").exists()


def test_an_archive_is_hashed_once_while_unchanged_and_again_after_a_change(served, tmp_path, monkeypatch):
    server, payload, folder = served
    remote = Remote(server.url + "file.bin", "file.bin", md5_file(folder / "file.bin"), len(payload))
    path = download(remote, tmp_path / "out")
    hashed = []
    monkeypatch.setattr(dl, "md5_file", lambda p: hashed.append(p) or md5_file(p))
    assert download(remote, tmp_path / "out") == path and hashed == []  # the download's record is trusted
    path.write_bytes(payload[::-1])  # same size, other bytes, new modification time
    with pytest.raises(DataError, match="MD5 does not match"):
        download(remote, tmp_path / "out")
    assert hashed == [path]


def test_a_finished_extraction_needs_neither_the_archive_nor_the_network(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a.txt", "hello")
    (tmp_path / "data.zip").write_bytes(buffer.getvalue())
    remote = Remote("http://no-such-host.invalid/data.zip", "data.zip", md5_file(tmp_path / "data.zip"))
    dl.fetch_all([remote], tmp_path)
    (tmp_path / "data.zip").unlink()
    dl.fetch_all([remote], tmp_path)  # no download attempted: the marker says the files are there
    assert (tmp_path / "a.txt").read_text() == "hello"
