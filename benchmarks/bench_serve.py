"""Load test of `deephash serve` on 127.0.0.1: search throughput and latency while images are added.

    python benchmarks/bench_serve.py                       # 60,000 Fashion-MNIST training images,
                                                           # the 48-bit model of `make demo`
    python benchmarks/bench_serve.py --backend milvus      # the same against Milvus Lite
    python benchmarks/bench_serve.py --backend milvus --milvus-server   # a local Milvus server
    python benchmarks/bench_serve.py --quick               # smoke run: 2,000 images, 100 requests

Steps: build the collection (``deephash collection create`` + ``add --dataset``) unless it exists;
start ``deephash serve`` and time it until ``/health`` answers (start-up); then for search-by-upload
and search-by-id at 1, 8 and 32 concurrent clients, send a fixed number of requests (loopback only,
httpx, async) while another client adds one test image every 1/``--add-rate`` s; report queries/s,
p50/p99 latency and failed requests. Afterwards every acknowledged addition must be in the
collection and found by searching with its own image. Writes benchmarks/results/serve.json
(serve-<backend>.json for other backends).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "deephash.cli.main", *args]
    print("$ deephash " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def query_images(run: Path, data_dir: str | None, n: int) -> list[bytes]:
    """The first n images of the run's query split (test set: not in the collection), as PNG."""
    from deephash.training import recipe
    from deephash.training.config import TrainConfig

    cfg = TrainConfig.from_dict({**__import__("yaml").safe_load((run / "config.yaml").read_text())})
    if data_dir:
        cfg.data_dir = data_dir
    images = recipe.load_data(cfg).query.images
    return [png(images[i % len(images)]) for i in range(n)]


class Server:
    def __init__(self, collection: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deephash.cli.main", "serve", str(collection),
             "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {log}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.02)
        self.startup_s = time.perf_counter() - t0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def summary(
    mode: str, clients: int, requests: int, failed: int, wall: float, latencies: list[float]
) -> dict[str, Any]:
    """One scenario's row: throughput and latency percentiles (ms)."""
    lat = np.array(latencies)
    return {
        "mode": mode,
        "clients": clients,
        "requests": requests,
        "failed": failed,
        "seconds": round(wall, 3),
        "queries_per_s": round(requests / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
    }


class RawClient:
    """A minimal HTTP/1.1 keep-alive client for JSON POSTs (one connection), for the load script:
    httpx spends about 0.7 ms of CPU per request, more than the server does, and on 2 shared cores
    that cost shows up in the measured latency."""

    def __init__(self, url: str) -> None:
        parts = url.split("://", 1)[1].split(":")
        self.host, self.port = parts[0], int(parts[1])
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict[str, Any]) -> int:
        """Send the request, read the whole answer; returns the status code."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def load_raw(url: str, clients: int, requests: int, ids: list[int], k: int) -> dict[str, Any]:
    """Search by id like :func:`load`, through :class:`RawClient` connections."""
    latencies: list[float] = []
    failed = 0

    async def one_client(c: int) -> None:
        nonlocal failed
        http = RawClient(url)
        try:
            for j in range(c, requests, clients):
                t = time.perf_counter()
                try:
                    ok = await http.post_json("/search", {"id": ids[j % len(ids)], "k": k}) == 200
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                latencies.append((time.perf_counter() - t) * 1000.0)
                failed += not ok
        finally:
            await http.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in range(clients)))
    wall = time.perf_counter() - t0
    return summary("id-raw", clients, requests, failed, wall, latencies)


async def load(
    url: str,
    mode: str,
    clients: int,
    requests: int,
    uploads: list[bytes],
    ids: list[int],
    k: int,
) -> dict[str, Any]:
    """``requests`` searches split over ``clients`` concurrent connections."""
    latencies: list[float] = []
    failed = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as http:

        async def one_client(c: int) -> None:
            nonlocal failed
            for j in range(c, requests, clients):
                t = time.perf_counter()
                try:
                    if mode == "upload":
                        files = {"image": ("q.png", uploads[j % len(uploads)], "image/png")}
                        r = await http.post(f"/search?k={k}", files=files)
                    else:
                        r = await http.post("/search", json={"id": ids[j % len(ids)], "k": k})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t) * 1000.0)
                failed += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in range(clients)))
        wall = time.perf_counter() - t0
    return summary(mode, clients, requests, failed, wall, latencies)


async def adder(
    url: str,
    images: list[bytes],
    rate: float,
    stop: asyncio.Event,
    acked: dict[int, bytes],
    check: int = 0,
    removed: list[int] | None = None,
) -> dict[str, int]:
    """Send one addition every 1/rate seconds until ``stop`` (open loop: a slow answer does not
    delay the next request; at most 64 in flight). With ``check`` > 0 (read-your-writes): the
    very next request after each acknowledged addition searches with its image (radius 0) and
    must find it; every ``check``-th addition is then removed, and the very next search with its
    image must not find it (removed ids go to ``removed``, out of ``acked``)."""
    sent = failed = 0
    checks = {
        "found": 0,
        "not_found": 0,
        "removed": 0,
        "gone": 0,
        "still_found": 0,
        "inconclusive": 0,
        "check_failed": 0,
    }
    in_flight = asyncio.Semaphore(64)
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:

        async def one(data: bytes) -> None:
            nonlocal failed
            async with in_flight:
                try:
                    r = await http.post("/items", files={"image": ("add.png", data, "image/png")})
                    if r.status_code == 201:
                        new_id = r.json()["ids"][0]
                        acked[new_id] = data
                        if check:
                            await check_write(http, new_id, data, len(acked) % check == 0)
                    else:
                        failed += 1
                except httpx.HTTPError:
                    failed += 1

        async def search_image(http: httpx.AsyncClient, data: bytes) -> list[int] | None:
            files = {"image": ("q.png", data, "image/png")}
            r = await http.post("/search?k=1000&radius=0", files=files)
            if r.status_code != 200:
                checks["check_failed"] += 1
                return None
            found = [h["id"] for h in r.json()["results"]]
            if len(found) < 1000:
                return found
            checks["inconclusive"] += 1  # 1000 exact copies with smaller ids: cannot tell
            return None

        async def check_write(
            http: httpx.AsyncClient, new_id: int, data: bytes, remove: bool
        ) -> None:
            found = await search_image(http, data)
            if found is not None:
                checks["found" if new_id in found else "not_found"] += 1
            if not remove:
                return
            if (await http.delete(f"/items/{new_id}")).status_code != 200:
                checks["check_failed"] += 1
                return
            del acked[new_id]
            if removed is not None:
                removed.append(new_id)
            checks["removed"] += 1
            found = await search_image(http, data)
            if found is not None:
                checks["still_found" if new_id in found else "gone"] += 1

        t0 = time.perf_counter()
        while not stop.is_set():
            tasks.append(asyncio.create_task(one(images[sent % len(images)])))
            sent += 1
            delay = t0 + sent / rate - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        await asyncio.gather(*tasks)
    return {"sent": sent, "failed": failed, **({"read_your_writes": checks} if check else {})}


async def scenario(
    url: str, mode: str, clients: int, args: argparse.Namespace, uploads: list[bytes],
    ids: list[int], acked: dict[int, bytes], removed: list[int],
) -> dict[str, Any]:  # fmt: skip
    stop = asyncio.Event()
    if args.add_rate <= 0:  # searches alone
        idle = {"sent": 0, "failed": 0}
        add_task = asyncio.create_task(asyncio.sleep(0, result=idle))
    else:
        images = args.rare or uploads[::-1]
        add_task = asyncio.create_task(
            adder(url, images, args.add_rate, stop, acked, args.check_writes, removed)
        )
    t0 = time.perf_counter()
    if mode == "id-raw":
        result = await load_raw(url, clients, args.requests, ids, args.k)
    else:
        result = await load(url, mode, clients, args.requests, uploads, ids, args.k)
    stop.set()
    adds = await add_task
    adds["per_s"] = round(adds["sent"] / (time.perf_counter() - t0), 1)
    return {**result, "adds": adds}


def rare_images(url: str, images: list[bytes], most: int = 300) -> list[bytes]:
    """The images whose code fewer than ``most`` stored items share (a radius-0 search by image):
    an addition of one is visible in a radius-0 search of k = 1000 (ties go to the smaller ids,
    so an addition to a group of thousands of equal codes never shows in the first 1000)."""
    keep = []
    for data in images:
        files = {"image": ("q.png", data, "image/png")}
        r = httpx.post(f"{url}/search?k=1000&radius=0", files=files, timeout=30.0)
        if r.status_code == 200 and len(r.json()["results"]) < most:
            keep.append(data)
    return keep


def verify(
    url: str, acked: dict[int, bytes], expected_count: int, removed: list[int] | None = None
) -> dict[str, Any]:
    """Every acknowledged id is stored, and searching with its own image finds it at distance 0
    (radius 0; where more than k items share the code, the answer is full of exact matches);
    every removed id is gone."""
    missing = [i for i in acked if httpx.get(f"{url}/items/{i}").status_code != 200]
    back = [i for i in removed or [] if httpx.get(f"{url}/items/{i}").status_code != 404]
    not_found = 0
    for item_id, data in list(acked.items()):
        r = httpx.post(
            f"{url}/search?k=1000&radius=0", files={"image": ("a.png", data, "image/png")}
        ).json()["results"]
        if item_id not in [h["id"] for h in r] and len(r) < 1000:
            not_found += 1
    count = httpx.get(f"{url}/health").json()["count"]
    return {
        "acknowledged": len(acked),
        "missing": len(missing),
        "not_found_by_image": not_found,
        "removed": len(removed or []),
        "removed_still_present": len(back),
        "count": count,
        "count_expected": expected_count,
        "ok": not missing and not not_found and not back and count == expected_count,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/demo/best-hash-48"), help="hashing run")
    p.add_argument("--collection", help="collection folder (default: benchmarks/.serve-<backend>)")
    p.add_argument("--backend", default="mih", choices=["mih", "flat", "milvus"])
    p.add_argument("--uri", help="milvus URI (default: a Milvus Lite file in the collection)")
    p.add_argument(
        "--milvus-server",
        action="store_true",
        help="milvus: start a local Milvus standalone server (the milvus-server extra) in a "
        "temporary folder and use it; the collection is rebuilt",
    )
    p.add_argument(
        "--modes",
        nargs="+",
        default=["id", "upload"],
        choices=["id", "upload", "id-raw"],
        help="id / upload: httpx clients; id-raw: search by id with a minimal HTTP client",
    )
    p.add_argument("--images", type=int, default=60_000, help="training images in the collection")
    p.add_argument("--requests", type=int, default=2000, help="searches per scenario")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--add-rate", type=float, default=100.0, help="additions per second (0: none)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--data-dir", help="folder holding fashion-mnist (default: the usual places)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the collection")
    p.add_argument(
        "--rerank",
        default=None,
        help="the collection's re-rank descriptor (collection create --rerank: auto, none or a "
        "kind); default: the collection's own default",
    )
    p.add_argument(
        "--check-writes",
        type=int,
        default=0,
        metavar="N",
        help="read-your-writes: search with each added image right after it is acknowledged "
        "(must be found); remove every N-th and search again (must be gone). 0: off",
    )
    p.add_argument("--quick", action="store_true", help="2,000 images, 100 requests")
    p.add_argument("--out", help="result JSON (default benchmarks/results/serve[-backend].json)")
    args = p.parse_args()
    if args.quick:
        args.images, args.requests = min(args.images, 2000), min(args.requests, 100)
    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        print(
            f"{run} is not a run folder; train it with `make demo` or pass --run", file=sys.stderr
        )
        return 1
    name = args.backend + ("-server" if args.milvus_server else "")
    folder = Path(args.collection or ROOT / "benchmarks" / f".serve-{name}")
    build_s = None
    milvus_server = None
    if args.milvus_server:
        import tempfile

        from deephash.index.milvus_server import LocalMilvusServer

        milvus_server = LocalMilvusServer(tempfile.mkdtemp(prefix="bench-serve-milvus-"))
        milvus_server.start()
        args.uri, args.rebuild = milvus_server.uri, True
    if args.rebuild and folder.exists():
        shutil.rmtree(folder)
    if not folder.exists():
        t0 = time.perf_counter()
        extra = ["--uri", args.uri] if args.uri else []
        extra += ["--rerank", args.rerank] if args.rerank else []
        cli(
            "collection",
            "create",
            str(folder),
            "--run",
            str(run),
            "--backend",
            args.backend,
            *extra,
        )
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        cli("collection", "add", str(folder), "--dataset", "fashion-mnist", "--split", "database",
            "--limit", str(args.images), *data)  # fmt: skip
        build_s = round(time.perf_counter() - t0, 2)
    uploads = query_images(run, args.data_dir, 500)

    server = Server(folder, folder.parent / f"{folder.name}.server.log")
    print(f"start-up: {server.startup_s:.2f} s", flush=True)
    acked: dict[int, bytes] = {}
    removed: list[int] = []
    results = []
    try:
        start_count = httpx.get(server.url + "/health").json()["count"]
        ids = [int(i) for i in np.random.default_rng(0).integers(0, start_count, 1000)]
        # read-your-writes checks add images whose code few items share (see rare_images)
        args.rare = rare_images(server.url, uploads) if args.check_writes else []
        print(f"images for read-your-writes checks: {len(args.rare)} of {len(uploads)}")
        for mode in args.modes:
            for clients in args.clients:
                r = asyncio.run(
                    scenario(server.url, mode, clients, args, uploads, ids, acked, removed)
                )
                results.append(r)
                print(
                    f"{mode:>6} x{clients:<3} {r['queries_per_s']:>8.1f} q/s  p50 {r['p50_ms']:7.2f} "
                    f"ms  p99 {r['p99_ms']:7.2f} ms  failed {r['failed']}  adds {r['adds']}",
                    flush=True,
                )
        check = verify(server.url, acked, start_count + len(acked), removed)
        stats = httpx.get(server.url + "/stats").json()
    finally:
        server.stop()
        if milvus_server is not None:
            milvus_server.stop()
    print(f"additions: {check}")
    out = {
        "benchmark": "serve",
        "run": str(run.resolve()),
        "backend": args.backend,
        "engine": (
            "milvus 2.3.5 standalone server (local)"
            if args.milvus_server
            else ("milvus lite" if args.backend == "milvus" and not args.uri else args.uri)
        ),
        "collection_items": start_count,
        "collection_build_s": build_s,
        "startup_s": round(server.startup_s, 3),
        "k": args.k,
        "add_rate_per_s": args.add_rate,
        "scenarios": results,
        "failed_requests": sum(r["failed"] + r["adds"]["failed"] for r in results),
        "read_your_writes_images": len(args.rare),
        "read_your_writes": {
            key: sum(r["adds"].get("read_your_writes", {}).get(key, 0) for r in results)
            for key in (
                "found",
                "not_found",
                "removed",
                "gone",
                "still_found",
                "inconclusive",
                "check_failed",
            )
        },
        "additions": check,
        "server_stats": stats,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    suffix = "" if name == "mih" else f"-{name}"
    out_file = Path(args.out or ROOT / "benchmarks" / "results" / f"serve{suffix}.json")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {out_file}")
    ryw = out["read_your_writes"]
    print(f"read-your-writes: {ryw}")
    ryw_ok = not (ryw["not_found"] or ryw["still_found"] or ryw["check_failed"])
    return 0 if check["ok"] and out["failed_requests"] == 0 and ryw_ok else 1


if __name__ == "__main__":
    sys.exit(main())
