"""Soak test of `deephash serve` on 127.0.0.1: searches, additions and removals at once, for minutes.

    python benchmarks/soak_serve.py                      # 10 minutes, the 48-bit demo model
    python benchmarks/soak_serve.py --minutes 1 --images 5000      # a short run
    python benchmarks/soak_serve.py --backend milvus --milvus-server --add-rate 100 \
        --kill-at 300                                    # a local Milvus server, killed at 5 min

A fresh collection of ``--images`` Fashion-MNIST training images (benchmarks/.soak-<backend>,
rebuilt each run) is served while, for ``--minutes``: 8 clients search by id (closed loop, ids from
the first half of the starting items, which nobody removes), 1 client adds test-set images at
``--add-rate`` per second and 1 client removes items of the second half at ``--remove-rate`` per
second (both paced; every request has a 30 s timeout). The server's resident memory (VmRSS) is
sampled every 10 s. At the end every acknowledged addition must be stored (GET /items/<id>) and
every acknowledged removal gone, and the count must match. Any failed request (an exception, a
timeout, a status other than 200/201) is counted. Writes benchmarks/results/soak[-backend].json.

Read-your-writes: right after each acknowledged addition the adder searches with its image
(radius 0) and must find it; right after each acknowledged removal the remover searches with the
removed item's code (radius 0) and must not find it. On a collection with instance bits (a run
trained with them) both checks search with the item's own image, without a radius, which shows
the item among the copies whatever its code: every change is checked, so no image need be rare.
``--milvus-server`` runs a local Milvus standalone server (the milvus-server extra) for
``--backend milvus``; ``--kill-at S`` kills it (SIGKILL) S seconds into the soak and starts it
again ``--down-s`` later: searches must answer 503 within 5 s of the kill (those 503s, until the
first search answered after the restart, are counted apart, not as failures), writes go on being
acknowledged, and nothing acknowledged may be lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench_serve import (  # this folder is on sys.path when run
    Server,
    cli,
    query_images,
    rare_images,
)
from deephash.index.milvus_server import LocalMilvusServer

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024.0, 1)
    return float("nan")


async def soak(
    url: str,
    pid: int,
    args: argparse.Namespace,
    start_count: int,
    uploads: list[bytes],
    milvus: LocalMilvusServer | None = None,
    instance: bool = False,
) -> dict[str, Any]:
    """Run the soak against the service at ``url``; ``instance``: its collection ranks copies
    first by instance bits, so a search with an item's own image shows it among the copies
    whatever its code (the read-your-writes checks use that, for every addition and removal)."""
    end = time.monotonic() + 60.0 * args.minutes
    stats: dict[str, Any] = {
        "searches": 0,
        "search_failed": 0,
        "adds": 0,
        "add_failed": 0,
        "removes": 0,
        "remove_failed": 0,
        "outage_503": 0,
        "added_found_next_search": 0,
        "added_not_found_next_search": 0,
        "removed_gone_next_search": 0,
        "removed_found_next_search": 0,
    }
    outage: dict[str, Any] = {"down": False}
    latencies: list[float] = []
    added: list[int] = []
    image_of: dict[int, bytes] = {}  # the adder's items, for the remover's check by image
    removed: list[int] = []
    rss: list[tuple[float, float]] = [(0.0, rss_mb(pid))]
    errors: list[str] = []
    t_start = time.monotonic()
    search_ids = np.random.default_rng(0).integers(0, start_count // 2, 1_000_000).tolist()
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as http:

        def failed(kind: str, what: str) -> None:
            stats[f"{kind}_failed"] += 1
            if len(errors) < 20:
                errors.append(f"{kind}: {what}"[:300])

        def search_ok(r: httpx.Response) -> bool:
            """200; a 503 while the engine is down is counted apart (and not as a failure)."""
            if r.status_code == 503 and outage["down"]:
                stats["outage_503"] += 1
                outage.setdefault("first_503_s", round(time.monotonic() - outage["killed"], 2))
                return False
            if r.status_code != 200:
                failed("search", f"{r.status_code} {r.text}")
                return False
            if outage.get("restarted") and "back_s" not in outage:
                outage["back_s"] = round(time.monotonic() - outage["restarted"], 2)
                outage["down"] = False
            return True

        async def searcher(c: int) -> None:
            j = c
            while time.monotonic() < end:
                t = time.perf_counter()
                try:
                    r = await http.post("/search", json={"id": search_ids[j], "k": 10})
                    if search_ok(r):
                        latencies.append((time.perf_counter() - t) * 1000.0)
                    elif outage["down"]:
                        await asyncio.sleep(0.05)
                except httpx.HTTPError as exc:
                    failed("search", repr(exc))
                stats["searches"] += 1
                j += 8

        async def found_by(query: dict[str, Any], item_id: int) -> bool | None:
            """Whether a radius-0 search for ``query`` (an image, or a code) returns item_id
            (None: the engine is down, or more than 1,000 exact matches). On an instance
            collection a search by image needs no radius: the item ranks among the copies, after
            only the items with the very same bits (the adder re-adds its images), so the answer
            is conclusive unless all 1,000 results have the query's bits (score 1)."""
            if "image" in query and instance:
                r = await http.post("/search?k=1000", files=query)
                if not search_ok(r):
                    return None
                hits = r.json()["results"]
                ids = [h["id"] for h in hits]
                return item_id in ids if len(ids) < 1000 or hits[-1]["score"] < 1 else None
            if "image" in query:
                r = await http.post("/search?k=1000&radius=0", files=query)
            else:
                r = await http.post("/search", json={**query, "k": 1000, "radius": 0})
            if not search_ok(r):
                return None
            ids = [h["id"] for h in r.json()["results"]]
            return item_id in ids if len(ids) < 1000 else None

        async def killer() -> None:
            if milvus is None or args.kill_at is None:
                return
            await asyncio.sleep(max(0.0, t_start + args.kill_at - time.monotonic()))
            outage["down"], outage["killed"] = True, time.monotonic()
            outage["at_s"] = round(outage["killed"] - t_start, 1)
            await asyncio.to_thread(milvus.kill)
            print(f"  milvus server killed at {outage['at_s']} s", flush=True)
            await asyncio.sleep(args.down_s)
            t = time.monotonic()
            await asyncio.to_thread(milvus.start)
            outage["restarted"] = time.monotonic()
            outage["restart_s"] = round(outage["restarted"] - t, 1)
            print(f"  milvus server started again ({outage['restart_s']} s)", flush=True)

        async def adder() -> None:
            n = 0
            while time.monotonic() < end:
                data = uploads[n % len(uploads)]
                try:
                    r = await http.post("/items", files={"image": ("s.png", data, "image/png")})
                    if r.status_code == 201:
                        new_ids = r.json()["ids"]
                        try:
                            image = {"image": ("s.png", data, "image/png")}
                            seen = await found_by(image, new_ids[-1])
                            if seen is not None:
                                stats[f"added_{'' if seen else 'not_'}found_next_search"] += 1
                        finally:  # only now may the remover (--remove-added) take it: removed
                            image_of.update(dict.fromkeys(new_ids, data))  # before the check,
                            added.extend(new_ids)  # it would count as missed
                    else:
                        failed("add", f"{r.status_code} {r.text}")
                except httpx.HTTPError as exc:
                    failed("add", repr(exc))
                stats["adds"] += 1
                n += 1
                await asyncio.sleep(max(0.0, t_start + n / args.add_rate - time.monotonic()))

        async def remover() -> None:
            n = 0
            while time.monotonic() < end:
                if args.remove_added:  # the adder's items, oldest first
                    if n >= len(added):
                        await asyncio.sleep(0.05)
                        continue
                    item_id = added[n]
                else:
                    item_id = start_count // 2 + n
                if item_id >= start_count and not args.remove_added:
                    return
                try:
                    code = (await http.get(f"/items/{item_id}")).json()["code"]
                    r = await http.delete(f"/items/{item_id}")
                    if r.status_code == 200:
                        removed.append(item_id)
                        data = image_of.pop(item_id, None)
                        query = (
                            {"code": code}
                            if data is None or not instance
                            else {"image": ("r.png", data, "image/png")}
                        )
                        seen = await found_by(query, item_id)
                        if seen is not None:
                            stats[f"removed_{'found' if seen else 'gone'}_next_search"] += 1
                    else:
                        failed("remove", f"{r.status_code} {r.text}")
                except httpx.HTTPError as exc:
                    failed("remove", repr(exc))
                stats["removes"] += 1
                n += 1
                await asyncio.sleep(max(0.0, t_start + n / args.remove_rate - time.monotonic()))

        async def sampler() -> None:
            while time.monotonic() < end:
                await asyncio.sleep(10.0)
                rss.append((round(time.monotonic() - t_start, 1), rss_mb(pid)))
                print(
                    f"  {rss[-1][0]:6.0f} s  rss {rss[-1][1]:7.1f} MiB  searches "
                    f"{stats['searches']}  adds {len(added)}  removes {len(removed)}  failed "
                    f"{stats['search_failed'] + stats['add_failed'] + stats['remove_failed']}",
                    flush=True,
                )

        await asyncio.gather(
            *(searcher(c) for c in range(8)), adder(), remover(), sampler(), killer()
        )
        seconds = time.monotonic() - t_start
        # every acknowledged change is there
        gone = set(removed)
        kept = [i for i in added if i not in gone]
        missing = [i for i in kept if (await http.get(f"/items/{i}")).status_code != 200]
        resurrected = [i for i in removed if (await http.get(f"/items/{i}")).status_code != 404]
        count = (await http.get("/health")).json()["count"]
        server_stats = (await http.get("/stats")).json()
    lat = np.array(latencies)
    return {
        **stats,
        "seconds": round(seconds, 1),
        "searches_per_s": round(stats["searches"] / seconds, 1),
        "search_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "search_p99_ms": round(float(np.percentile(lat, 99)), 2),
        "failed_requests": stats["search_failed"] + stats["add_failed"] + stats["remove_failed"],
        "errors": errors,
        "outage": {k: v for k, v in outage.items() if k not in ("killed", "restarted")},
        "rss_mib_start": rss[0][1],
        "rss_mib_end": rss_mb(pid),
        "rss_mib_max": max(v for _, v in rss),
        "rss_series": rss,
        "additions_acknowledged": len(added),
        "additions_missing": len(missing),
        "additions_removed_again": len(set(added) & set(removed)),
        "removals_acknowledged": len(removed),
        "removals_still_present": len(resurrected),
        "count": count,
        "count_expected": start_count + len(added) - len(removed),
        "images_added_from": len(uploads),
        "server_stats": server_stats,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/demo/best-hash-48"), help="hashing run")
    p.add_argument("--backend", default="mih", choices=["mih", "flat", "milvus"])
    p.add_argument("--uri", help="milvus URI (default: a Milvus Lite file in the collection)")
    p.add_argument("--images", type=int, default=60_000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--add-rate", type=float, default=20.0, help="additions per second")
    p.add_argument("--remove-rate", type=float, default=10.0, help="removals per second")
    p.add_argument("--data-dir", help="folder holding fashion-mnist (default: the usual places)")
    p.add_argument("--out", help="result JSON (default benchmarks/results/soak[-backend].json)")
    p.add_argument(
        "--milvus-server", action="store_true", help="milvus: run a local Milvus server for it"
    )
    p.add_argument(
        "--remove-added",
        action="store_true",
        help="remove the adder's own items (oldest first) instead of the collection's second "
        "half, and add only images whose code fewer than 300 items share, so that the very next "
        "search can show each change (with codes shared by thousands of items, a new item, the "
        "largest id, never ranks in the first 1000)",
    )
    p.add_argument("--kill-at", type=float, help="kill the Milvus server this many s in")
    p.add_argument("--down-s", type=float, default=10.0, help="s before it is started again")
    args = p.parse_args()
    run = Path(args.run)
    name = args.backend + ("-server" if args.milvus_server else "")
    folder = ROOT / "benchmarks" / f".soak-{name}"
    if folder.exists():
        shutil.rmtree(folder)
    milvus = None
    if args.milvus_server:
        import tempfile

        # a 10 s etcd session lease (Milvus's default 30 s): a killed server serves again sooner
        milvus = LocalMilvusServer(tempfile.mkdtemp(prefix="soak-milvus-"), session_ttl=10)
        milvus.start()
        args.uri = milvus.uri
    extra = ["--uri", args.uri] if args.uri else []
    cli("collection", "create", str(folder), "--run", str(run), "--backend", args.backend, *extra)
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    cli("collection", "add", str(folder), "--dataset", "fashion-mnist", "--split", "database",
        "--limit", str(args.images), *data)  # fmt: skip
    uploads = query_images(run, args.data_dir, 500)
    server = Server(folder, folder.parent / f"{folder.name}.server.log")
    try:
        start_count = httpx.get(server.url + "/health").json()["count"]
        for i in range(50):  # warm the paths (the first may compile kernels) before the first
            httpx.post(server.url + "/search", json={"id": i, "k": 10}, timeout=120.0)  # sample
        rerank = httpx.get(server.url + "/stats").json().get("rerank") or {}
        instance = rerank.get("descriptor") == "instance"
        if args.remove_added and not instance:  # an instance collection needs no rare codes
            uploads = rare_images(server.url, uploads) or uploads
        print(
            f"soak: {args.minutes} min, {start_count} items, pid {server.proc.pid}, "
            f"{len(uploads)} images to add",
            flush=True,
        )
        result = asyncio.run(
            soak(server.url, server.proc.pid, args, start_count, uploads, milvus, instance)
        )
    finally:
        server.stop()
        if milvus is not None:
            milvus.stop()
    ok = (
        result["failed_requests"] == 0
        and result["additions_missing"] == 0
        and result["removals_still_present"] == 0
        and result["added_not_found_next_search"] == 0
        and result["removed_found_next_search"] == 0
        and result["count"] == result["count_expected"]
        and (args.kill_at is None or result["outage"].get("first_503_s", 99) < 5.0)
    )
    out = {
        "benchmark": "soak",
        "run": str(run.resolve()),
        "backend": args.backend,
        "engine": "milvus 2.3.5 standalone server (local)" if args.milvus_server else args.uri,
        "start_items": start_count,
        "minutes": args.minutes,
        "search_clients": 8,
        "add_rate_per_s": args.add_rate,
        "remove_rate_per_s": args.remove_rate,
        **result,
        "ok": ok,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    suffix = "" if name == "mih" else f"-{name}"
    out_file = Path(args.out or ROOT / "benchmarks" / "results" / f"soak{suffix}.json")
    out_file.write_text(json.dumps(out, indent=2) + "\n")
    summary = {k: out[k] for k in ("searches", "failed_requests", "additions_acknowledged",
                                   "additions_missing", "removals_acknowledged", "outage",
                                   "added_not_found_next_search", "removed_found_next_search",
                                   "rss_mib_start", "rss_mib_end", "search_p99_ms", "ok")}  # fmt: skip
    print(f"soak: {summary}\nwrote {out_file}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
