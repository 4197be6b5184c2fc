import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from deephash.data import download as dl
from deephash.data import locations
from deephash.data.locations import RemoteFile


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_file_url_download_and_checksum(tmp_path: Path) -> None:
    src = tmp_path / "src" / "blob.bin"
    src.parent.mkdir()
    src.write_bytes(b"hello world" * 100)
    remote = RemoteFile("blob.bin", (src.as_uri(),), md5(src.read_bytes()))
    out = dl.download_file(remote, tmp_path / "dest")
    assert out.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["blob.bin"]


def test_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(b"tampered")
    remote = RemoteFile("blob.bin", (src.as_uri(),), md5(b"original"))
    with pytest.raises(ValueError, match=r"checksum mismatch for blob\.bin"):
        dl.download_file(remote, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_mirrors_tried_in_order(tmp_path: Path) -> None:
    calls: list[str] = []

    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        if "bad" in url:
            raise OSError("connection refused")
        dest.write_bytes(b"payload")

    remote = RemoteFile("f", ("http://bad/f", "http://good/f"), md5(b"payload"))
    assert dl.download_file(remote, tmp_path, fetch=fetch).read_bytes() == b"payload"
    assert calls == ["http://bad/f", "http://good/f"]
    # Present with the right checksum: not fetched again.
    dl.download_file(remote, tmp_path, fetch=lambda u, d: pytest.fail("refetched"))
    all_bad = RemoteFile("g", ("http://bad/1", "http://bad/2"), md5(b"x"))
    with pytest.raises(RuntimeError, match="could not download g"):
        dl.download_file(all_bad, tmp_path, fetch=fetch)
    assert not (tmp_path / "g").exists()


def test_extract_refuses_escaping_members(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(Exception):  # noqa: B017 (tarfile's filter error class varies by version)
        dl.extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    (tmp_path / "broken.tgz").write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="corrupt archive"):
        dl.extract_archive(tmp_path / "broken.tgz", tmp_path / "out")


def test_download_dataset_cifar10_from_local_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Build a genuine-format cifar-10-python.tar.gz, serve it via file://, and check the reader.
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            payload = pickle.dumps(
                {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
            )
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    src = locations.SOURCES["cifar10"]
    fake = RemoteFile(
        src.files[0].filename, (archive.as_uri(),), md5(archive.read_bytes()), extract=True
    )
    monkeypatch.setitem(
        locations.SOURCES, "cifar10", type(src)(**{**src.__dict__, "files": (fake,)})
    )
    folder = dl.download_dataset("cifar10", tmp_path / "data")
    assert folder == tmp_path / "data" / "cifar10"
    assert not (folder / "cifar-10-python.tar.gz").exists()  # archive removed after extraction
    from deephash.data.cifar import read_cifar10

    assert read_cifar10(folder).data.labels.tolist() == [1, 2] * 6


def test_download_dataset_mnist_with_fake_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payloads = {
        f.filename: gzip.compress(f.filename.encode()) for f in locations.SOURCES["mnist"].files
    }
    src = locations.SOURCES["mnist"]
    files = tuple(RemoteFile(f.filename, f.urls, md5(payloads[f.filename])) for f in src.files)
    monkeypatch.setitem(locations.SOURCES, "mnist", type(src)(**{**src.__dict__, "files": files}))
    seen: list[str] = []

    def fetch(url: str, dest: Path) -> None:
        seen.append(url)
        dest.write_bytes(payloads[url.rsplit("/", 1)[1]])

    folder = dl.download_dataset("mnist", tmp_path, fetch=fetch)
    assert sorted(p.name for p in folder.iterdir()) == sorted(payloads)
    assert all(u.startswith("https://ossci-datasets") for u in seen)  # first mirror
    with pytest.raises(ValueError, match="cannot be downloaded"):
        dl.download_dataset("folder", tmp_path)


def test_every_source_has_checksummed_files() -> None:
    # The published MD5s are 32 hex digits, one per official file, for every downloadable dataset.
    for src in locations.SOURCES.values():
        assert src.files
        for f in src.files:
            assert len(f.md5) == 32 and int(f.md5, 16) >= 0 and f.urls
