"""DDP: the same `deephash train` command under torchrun with 2 CPU processes (gloo)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from deephash.training.distributed import DistInfo, all_gather_with_grad


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gather_is_identity_without_ddp() -> None:
    x = torch.randn(3, 2, requires_grad=True)
    assert all_gather_with_grad(x, DistInfo()) is x


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_torchrun_two_cpu_processes(tmp_path: Path, tiny_config_values: dict) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump({**tiny_config_values, "loss": "batch-hard", "epochs": 2, "device": "cpu"})
    )
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "deephash.cli.main",
        "train",
        "--config",
        str(cfg),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # rank 0 alone wrote the run: one history line per epoch, one metrics file
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    # each rank's P×K batch (5×4 = 20) was gathered before mining: batch-hard mines one triplet
    # per anchor over the 40 gathered embeddings
    assert history[0]["terms_per_batch"] == 40
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_database"] == 400
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]
