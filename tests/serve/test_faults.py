"""What the API answers when the collection's disk is full (injected ENOSPC on the log): 507 JSON,
nothing changed, searches keep answering, writes work again once there is space."""

import errno
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import deephash.collection.log as log_module


def test_disk_full_answers_507_and_keeps_searching(
    client: TestClient, png_files: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, label = png_files[70]
    image = {"image": (path.name, path.read_bytes(), "image/png")}
    before = client.post("/search", json={"id": 3, "k": 10}).json()["results"]
    count = client.get("/health").json()["count"]

    def no_space(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log_module.os, "pwrite", no_space)
    r = client.post("/items", files=image, data={"label": label})
    assert r.status_code == 507
    assert r.json()["error"] == "insufficient_storage" and "disk is full" in r.json()["detail"]
    r = client.delete("/items/3")
    assert r.status_code == 507 and r.json()["error"] == "insufficient_storage"
    assert client.post("/search", json={"id": 3, "k": 10}).json()["results"] == before
    assert client.get("/health").json()["count"] == count
    assert client.get("/items/3").status_code == 200

    def io_error(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(log_module.os, "pwrite", io_error)
    r = client.post("/items", files=image)
    assert r.status_code == 503 and r.json()["error"] == "storage_error"

    monkeypatch.undo()  # (log_module.os is the os module: undo, not os.pwrite, restores it)
    r = client.post("/items", files=image, data={"label": label})
    assert r.status_code == 201 and r.json()["ids"] == [count]  # no id was used by a failure
    found: Any = client.post("/search", json={"id": count, "k": 1}).json()["results"]
    assert found[0]["distance"] == 0
