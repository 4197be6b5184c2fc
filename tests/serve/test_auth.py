"""Write tokens: additions and removals need the token, everything else is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deephash.cli.main import main
from deephash.collection import Collection
from deephash.serve import create_app
from deephash.serve.auth import is_loopback, load_token, token_matches

TOKEN = "s3cret-Token_value"


@pytest.fixture()
def guarded(collection_dir: Path) -> Iterator[TestClient]:
    col = Collection.open(collection_dir)
    try:
        with TestClient(create_app(col, max_upload_mb=1.0, max_k=100, write_token=TOKEN)) as c:
            yield c
    finally:
        col.close()


def _png(png_files: list[tuple[Path, str]], i: int) -> dict[str, tuple[str, bytes, str]]:
    path = png_files[i][0]
    return {"image": (path.name, path.read_bytes(), "image/png")}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer "],
)
def test_writes_without_the_token_get_401_and_change_nothing(
    guarded: TestClient, png_files: list[tuple[Path, str]], header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    before = guarded.get("/stats").json()["count"]
    r = guarded.post("/items", files=_png(png_files, 70), headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in r.text  # never echoed
    d = guarded.delete("/items/3", headers=headers)
    assert d.status_code == 401 and d.json()["error"] == "unauthorized"
    assert guarded.get("/stats").json()["count"] == before
    assert guarded.get("/items/3").status_code == 200


def test_the_token_lets_writes_through_and_reads_need_none(
    guarded: TestClient, png_files: list[tuple[Path, str]]
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = guarded.post("/items", files=_png(png_files, 70), data={"label": "x"}, headers=auth)
    assert r.status_code == 201, r.text
    new = r.json()["ids"][0]
    assert guarded.get(f"/items/{new}").json()["label"] == "x"
    assert guarded.delete(f"/items/{new}", headers=auth).json() == {"id": new, "removed": True}
    # searches, items, images and the page stay open to everyone
    assert guarded.post("/search", json={"id": 1, "k": 3}).status_code == 200
    assert guarded.get("/items/1/image").status_code == 200
    assert guarded.get("/").status_code == 200
    # the scheme is case-insensitive, as HTTP says
    r = guarded.post(
        "/items", files=_png(png_files, 71), headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert r.status_code == 201


def test_without_a_token_writes_stay_open(
    client: TestClient, png_files: list[tuple[Path, str]]
) -> None:
    assert client.post("/items", files=_png(png_files, 70)).status_code == 201


def test_token_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "token"
    f.write_text(f"  {TOKEN}  \nignored\n")
    assert load_token(f) == TOKEN
    monkeypatch.setenv("DEEPHASH_TOKEN", "from-env")
    assert load_token(None) == "from-env"
    monkeypatch.delenv("DEEPHASH_TOKEN")
    assert load_token(None) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_token(tmp_path / "empty")
    with pytest.raises(ValueError, match="cannot read") as err:
        load_token(tmp_path / "missing")
    assert TOKEN not in str(err.value)
    assert token_matches(f"Bearer {TOKEN}", TOKEN) and not token_matches(None, TOKEN)
    assert [is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "::", "example.org")] == [False] * 4


def test_serve_refuses_a_public_host_without_a_write_token(
    collection_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPHASH_TOKEN", raising=False)
    code = main(["serve", str(collection_dir), "--host", "0.0.0.0", "--port", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--token-file" in err and "--allow-anonymous-writes" in err


def test_a_served_collection_with_a_token_file(
    collection_dir: Path, tmp_path: Path, server_process: Any, png_files: list[tuple[Path, str]]
) -> None:
    import httpx

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server = server_process(collection_dir, "--token-file", str(token_file), "--log-level", "info")
    try:
        server.wait_ready()
        url = server.url
        assert httpx.post(url + "/items", files=_png(png_files, 70)).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.post(url + "/items", files=_png(png_files, 70), headers=auth)
        assert r.status_code == 201
        assert httpx.get(url + "/health").json()["count"] == 61
    finally:
        server.stop()
    out = server.proc.stdout.read() if server.proc.stdout else ""
    assert TOKEN not in server.stderr() + out  # never logged


def test_a_read_token_guards_searches_items_and_images(
    collection_dir: Path, png_files: list[tuple[Path, str]]
) -> None:
    col = Collection.open(collection_dir)
    read = "reader-token"
    try:
        app = create_app(col, max_upload_mb=1.0, max_k=100, write_token=TOKEN, read_token=read)
        with TestClient(app) as c:
            calls = [
                lambda h: c.post("/search", json={"id": 1, "k": 3}, headers=h),
                lambda h: c.post("/search?k=3", files=_png(png_files, 70), headers=h),
                lambda h: c.post("/search/batch?k=3", files=_png(png_files, 70), headers=h),
                lambda h: c.get("/items/1", headers=h),
                lambda h: c.get("/items/random", headers=h),
                lambda h: c.get("/items/1/image", headers=h),
            ]
            for call in calls:
                for header in ({}, {"Authorization": "Bearer nope"}):
                    r = call(header)
                    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
                    assert read not in r.text and TOKEN not in r.text
                assert call({"Authorization": f"Bearer {read}"}).status_code == 200
                assert call({"Authorization": f"Bearer {TOKEN}"}).status_code == 200  # writer reads
            # the read token does not write; the page, /health and /stats stay open
            h = {"Authorization": f"Bearer {read}"}
            assert c.post("/items", files=_png(png_files, 70), headers=h).status_code == 401
            assert c.delete("/items/1", headers=h).status_code == 401
            assert [c.get(p).status_code for p in ("/", "/health", "/stats")] == [200, 200, 200]
    finally:
        col.close()
