"""Fixtures for the service tests: a small collection of tiny Fashion-MNIST PNGs, an app client,
and a helper that runs `deephash serve` as a real process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip(
    "fastapi", reason="the serve extra is not installed: pip install 'deephash[serve]'"
)

import httpx
from fastapi.testclient import TestClient

from deephash.collection import Collection
from deephash.data.image_folder import list_image_folder
from deephash.serve import create_app

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="session")
def png_files(tiny_png_folder: Path) -> list[tuple[Path, str]]:
    """(file, label) of the 100 tiny test PNGs."""
    paths, labels, names = list_image_folder(tiny_png_folder)
    return [(p, names[int(c)]) for p, c in zip(paths, labels)]


def make_collection(
    folder: Path,
    run: Path,
    files: list[tuple[Path, str]],
    backend: str = "mih",
    rerank: str | None = None,
) -> Path:
    with Collection.create(folder, run, backend=backend, rerank=rerank) as col:
        col.add_images(
            [f.read_bytes() for f, _ in files],
            [lab for _, lab in files],
            [f.name for f, _ in files],
        )
    return folder


@pytest.fixture()
def collection_dir(tmp_path: Path, tiny_hash_run: Path, png_files: list[tuple[Path, str]]) -> Path:
    """A closed collection holding the first 60 PNGs (ids 0..59)."""
    return make_collection(tmp_path / "col", tiny_hash_run, png_files[:60])


@pytest.fixture()
def rerank_collection_dir(
    tmp_path: Path, tiny_hash_run: Path, png_files: list[tuple[Path, str]]
) -> Path:
    """As ``collection_dir``, storing ``stages`` descriptors (two-stage search)."""
    return make_collection(tmp_path / "rcol", tiny_hash_run, png_files[:60], rerank="early-stages")


@pytest.fixture()
def client(collection_dir: Path) -> Iterator[TestClient]:
    col = Collection.open(collection_dir)
    try:
        with TestClient(create_app(col, max_upload_mb=1.0, max_k=100)) as c:
            yield c
    finally:
        col.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`deephash serve DIR` in a child process on 127.0.0.1:<free port>."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deephash.cli.main", "serve", str(directory),
             "--port", str(self.port), "--device", "cpu", *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not answer /health in time")

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture()
def server_process() -> Iterator[type[ServerProcess]]:
    """The ServerProcess class; every server started through it is killed at teardown."""
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def __init__(self, directory: Path, *extra: str) -> None:
            super().__init__(directory, *extra)
            started.append(self)

    yield Tracked
    for s in started:
        s.kill()
