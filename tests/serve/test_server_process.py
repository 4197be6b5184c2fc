"""The real thing: `deephash serve` as a process on 127.0.0.1, killed with SIGKILL mid-stream."""

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from deephash.codes import pack_bits, sign
from deephash.collection import Collection
from deephash.collection.log import read_log
from deephash.models.descriptors import compute_descriptors
from deephash.training.runs import load_run


@pytest.mark.parametrize("rerank", [None, "early-stages"])
def test_kill_9_mid_stream_loses_no_acknowledged_item(
    rerank: str | None,
    tmp_path: Path,
    tiny_hash_run: Path,
    png_files: list[tuple[Path, str]],
    server_process: Any,
) -> None:
    """Three clients stream additions; the server is killed with SIGKILL while requests are in
    flight. After a restart every acknowledged id is there with its code, label, path and image
    (and, re-ranking, its descriptor), and anything else present is a whole item (the request the
    kill cut short)."""
    collection_dir = tmp_path / "col"
    with Collection.create(collection_dir, tiny_hash_run, rerank=rerank) as col:
        first = png_files[:60]
        col.add_images([f.read_bytes() for f, _ in first], [lab for _, lab in first])
    stream = png_files[60:100]
    server = server_process(collection_dir)
    acked: dict[int, int] = {}  # id -> index into stream
    failed: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            for j in range(offset, len(stream), 3):
                if stop.is_set():
                    return
                path, label = stream[j]
                try:
                    r = http.post(
                        "/items",
                        files={"image": (path.name, path.read_bytes(), "image/png")},
                        data={"label": label},
                    )
                except httpx.HTTPError:
                    with lock:
                        failed.append(j)
                    return
                assert r.status_code == 201, r.text
                with lock:
                    acked[r.json()["ids"][0]] = j

    try:
        server.wait_ready()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        while len(acked) < 12:
            time.sleep(0.005)
        server.kill()  # SIGKILL while the clients keep sending
        stop.set()
        for t in threads:
            t.join()
    finally:
        server.kill()
    assert len(acked) >= 12 and failed, "the kill must interrupt the stream"

    restarted = server_process(collection_dir)  # the dead server's lock does not block this
    try:
        restarted.wait_ready()
        items = {}
        for item_id in range(60, 60 + len(stream)):
            r = httpx.get(f"{restarted.url}/items/{item_id}")
            if r.status_code == 200:
                items[item_id] = r.json()
        assert set(acked) <= set(items)
        assert len(items) - len(acked) <= 3  # at most the requests in flight at the kill
        model = load_run(tiny_hash_run)
        by_name = {p.name: (p, label) for p, label in stream}
        for item_id, item in items.items():
            path, label = by_name[item["path"]]
            if item_id in acked:
                assert stream[acked[item_id]][0] == path
            assert item["label"] == label
            code = pack_bits(sign(model.encode(model.load_images([path]))))[0]
            assert item["code"] == code.tobytes().hex()
            image = httpx.get(f"{restarted.url}/items/{item_id}/image")
            assert image.status_code == 200 and image.content == path.read_bytes()
        assert httpx.get(f"{restarted.url}/health").json()["count"] == 60 + len(items)
        hits = httpx.post(f"{restarted.url}/search", json={"id": min(acked), "k": 1}).json()
        assert hits["results"][0]["distance"] == 0
    finally:
        restarted.stop()
    # a clean stop (SIGTERM) compacted the replayed log into the snapshot, losing nothing
    assert [r["op"] for r in read_log(collection_dir / "log.bin").records] == ["begin"]
    with Collection.open(collection_dir, load_model=False) as col:
        assert set(col.ids.tolist()) == set(range(60)) | set(items)
        assert np.all(col.ids[:-1] < col.ids[1:])
        if rerank:
            for item_id, item in items.items():
                path, _ = by_name[item["path"]]
                with torch.no_grad():
                    x = model.preprocess(model.load_images([path]))
                    want, _ = compute_descriptors(model.net, x, rerank)
                np.testing.assert_allclose(col.descriptor_of(item_id), want[0].numpy(), atol=1e-3)


def test_second_server_on_the_same_folder_refuses(
    collection_dir: Path, server_process: Any
) -> None:
    first = server_process(collection_dir)
    try:
        first.wait_ready()
        second = server_process(collection_dir)
        assert second.proc.wait(timeout=90) == 1
        err = second.stderr()
        assert f"in use by process {first.proc.pid}" in err and "Traceback" not in err
        assert httpx.get(first.url + "/health").json()["count"] == 60  # the first one is fine
    finally:
        first.stop()
    assert first.proc.returncode in (0, -15)  # SIGTERM: uvicorn re-raises it after shutting down
