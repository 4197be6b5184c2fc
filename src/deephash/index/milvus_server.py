"""A local Milvus standalone server for tests and benchmarks (the ``milvus-server`` extra).

The PyPI wheel ``milvus`` (2.3.5) carries the Milvus standalone binary, the same server a cluster's
nodes run (embedded etcd, local storage, gRPC). :class:`LocalMilvusServer` runs it on 127.0.0.1
with every file under one base folder, and can stop and start it again on the same port and data
(to test what a client does across a server restart). Production deployments run Milvus
themselves (a cluster, or ``milvusdb/milvus`` in a container) and give deephash its URI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["LocalMilvusServer"]


def _bind(port: int) -> socket.socket | None:
    """The wheel's port probe without its flaw: it binds without SO_REUSEADDR, so a port whose
    last connections sit in TIME_WAIT (any port a server just stopped on) looks busy for a minute,
    although the server (which sets SO_REUSEADDR) could take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        return None
    return sock


class LocalMilvusServer:
    """Milvus standalone on 127.0.0.1, all its files under ``base_dir``.

    base_dir: a folder of its own (configuration, logs, etcd and segment data). port: the gRPC
    port; default: a free one from 19530 up. session_ttl: seconds of the server's etcd session
    lease (``common.session.ttl``, Milvus's default 30): after a stop or a crash the restarted
    server serves nothing until its previous session's lease has run out. ``start`` returns once the server answers its health
    check (about 10 s); ``stop`` terminates it (the data stays; ``start`` again serves it).
    """

    def __init__(
        self, base_dir: str | os.PathLike[str], port: int | None = None, session_ttl: int = 30
    ) -> None:
        try:
            from milvus import MilvusServer, MilvusServerConfig
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "a local Milvus server needs the milvus wheel: pip install 'deephash[milvus-server]'"
            ) from exc
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        config = MilvusServerConfig()
        config.try_bind_port = _bind  # type: ignore[method-assign]
        self._server: Any = MilvusServer(config)
        self._server.set_base_dir(str(self.base_dir))
        if port is None:
            sock = next(s for p in range(19530, 20530) if (s := _bind(p)) is not None)
            port = int(sock.getsockname()[1])
            sock.close()
        self.port = int(port)
        config.update(proxy_port=self.port)
        config.set("common.session.ttl", session_ttl)
        self.startup_s: float | None = None

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:<port>``, for ``milvus:<uri>`` indexes and collections."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return bool(self._server.running)

    @property
    def pid(self) -> int | None:
        proc = self._server.server_proc
        return None if proc is None else int(proc.pid)

    def start(self, timeout: float = 120.0) -> None:
        """Start the server (same port and data as before) and wait until it is healthy."""
        t0 = time.perf_counter()
        self._server.wait_for_started = False
        self._server.start()
        try:
            self._server.wait_started(timeout=int(timeout * 1000))
        except BaseException:
            self._server.stop()
            raise
        self.startup_s = time.perf_counter() - t0

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server gracefully: SIGTERM, SIGKILL only after ``timeout`` seconds. (The
        wheel's own ``stop`` kills after one second; a server killed so keeps its old session in
        etcd until the 30 s lease runs out, and serves nothing after a restart until then.)"""
        proc = self._server.server_proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        self._server.stop()  # closes its log files

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        proc = self._server.server_proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        self._server.stop()

    def __enter__(self) -> LocalMilvusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
