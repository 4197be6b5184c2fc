"""Writes this folder with the collection code of the commit before binary descriptors
(``PYTHONPATH=<that commit's src> python make_old_collections.py OUT``): a version-1 collection
(no descriptors) and a version-2 one (float16 early-stages), each a snapshot plus a log left as
a kill -9 leaves it, and the answers that code gives (expected.json)."""

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from deephash.collection import Collection, NewItem
from deephash.training.config import TrainConfig
from deephash.training.trainer import train

TINY_RUN = {
    "dataset": "fashion-mnist", "data_dir": "/usr/share/datasets",
    "protocol_options": {"validation_size": 50}, "backbone": "small-cnn", "loss": "dtsh",
    "bits": 16, "epochs": 1, "batches_per_epoch": 2, "batch_size": 20, "val_queries": 20,
    "val_database": 50, "map_k": 10, "precision_k": 5, "knn_k": 3, "tsne_samples": 0,
    "progress": False, "num_threads": 1, "p": 5, "k": 4,
}  # fmt: skip


def items(rng: np.random.Generator, n: int, dim: int) -> list[NewItem]:
    """n items with few distinct codes (ties) and, when dim, unit descriptors."""
    codes = rng.integers(0, 4, size=(n, 2), dtype=np.uint8)
    desc = rng.standard_normal((n, dim)).astype(np.float32)
    return [
        NewItem(
            codes[i],
            label=f"l{i % 3}",
            path=f"p{i}.png",
            descriptor=(desc[i] / np.linalg.norm(desc[i])) if dim else None,
        )
        for i in range(n)
    ]


def main(out: Path) -> None:
    run = Path("/tmp/oldcol/run")
    if not run.exists():
        train(TrainConfig.from_dict(TINY_RUN), run)
    rng = np.random.default_rng(0)
    expected = {}
    for name, rerank in (("v1", None), ("v2", "early-stages")):
        d = out / name
        shutil.rmtree(d, ignore_errors=True)
        col = Collection.create(d, run, rerank=rerank, candidates=6)
        col.add(items(rng, 10, col.descriptor_dim))
        col.compact()  # a snapshot (and descriptors.npz) ...
        col.add(items(rng, 6, col.descriptor_dim))  # ... plus a log
        col.remove([2, 11])
        desc = col.descriptors
        expected[name] = {
            "ids": col.ids.tolist(),
            "codes": col.codes.tolist(),
            "search": {
                str(i): [[h.id, h.distance, h.score] for h in col.search_by_id(i, 5)]
                for i in col.ids.tolist()
            },
            "descriptors_sha256": None
            if desc is None
            else hashlib.sha256(desc.astype("<f2").tobytes()).hexdigest(),
        }
        assert col._journal is not None and col._lock is not None
        col._journal.close()  # as a kill -9 leaves it: the log not compacted
        col._lock.release()
        col._closed = True
        settings = json.loads((d / "collection.json").read_text())
        settings["run"] = "run-not-shipped"  # opening and searching by id need no model
        (d / "collection.json").write_text(json.dumps(settings, indent=2))
        (d / "index.dhx.run.json").unlink()
        (d / "lock").unlink(missing_ok=True)
    (out / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
