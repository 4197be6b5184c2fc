"""A fitted run: a pretrained backbone plus a hashing projection fitted on its features without
labels (ITQ, LSH), saved as a run folder like a trained one.

The folder holds ``config.yaml`` (a :class:`~deephash.training.config.TrainConfig` whose head is
``projection``) and ``best.pt`` (the network's state dict, the projection in the head's buffers,
and the ``data_info`` preprocessing needs), so :func:`~deephash.training.runs.load_run` and every
command built on it (``encode``, ``evaluate``, ``collection create --run``, ``serve``) take it as
they take a trained run. Encoding an image through it gives the codes the method gave that image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deephash.atomic_io import save_checkpoint
from deephash.run_folder import RunFolder
from deephash.training.config import TrainConfig

__all__ = ["FITTED_KEYS", "fitted_config", "save_fitted_run"]

# the baseline keys that a fitted run's TrainConfig keeps (the rest describe the fitting)
FITTED_KEYS = (
    "dataset",
    "protocol",
    "protocol_options",
    "data_dir",
    "backbone",
    "backbone_options",
    "weights",
    "bits",
    "seed",
    "map_k",
    "precision_k",
    "knn_k",
)


def fitted_config(values: dict[str, Any], *, name: str | None = None) -> TrainConfig:
    """The TrainConfig of a fitted run from a baseline recipe's values (``method: lsh | itq``)."""
    keep = {k: values[k] for k in FITTED_KEYS if values.get(k) is not None}
    return TrainConfig.from_dict({**keep, "head": "projection", "name": name})


def save_fitted_run(
    run_dir: Path,
    cfg: TrainConfig,
    hasher: Any,
    data_info: dict[str, Any],
    *,
    normalize: bool,
    fitted: dict[str, Any] | None = None,
) -> None:
    """Write ``run_dir/config.yaml`` and ``run_dir/best.pt`` for ``cfg``'s backbone (its
    ``weights`` loaded) with the projection of ``hasher`` (a fitted ITQ or LSH) as its head.

    data_info: what preprocessing needs (:func:`~deephash.training.recipe.data_info`);
    normalize: whether the hasher was fitted on L2-normalised features; fitted: facts about the
    fitting (method, number of images) kept in the checkpoint."""
    from deephash.models.projection_head import ProjectionHead
    from deephash.training import recipe

    if cfg.bits is None or cfg.head != "projection":
        raise ValueError("a fitted run needs bits and head: projection in its config")
    net = recipe.build_network(cfg, int(data_info["in_channels"]))
    head = ProjectionHead.from_hasher(hasher, normalize=normalize)
    made = int(head.projection.shape[1])
    if made != cfg.bits:
        raise ValueError(f"the projection makes {made} bits, not {cfg.bits}")
    net.head = head
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "model": net.state_dict(),
        "config": cfg.to_dict(),
        "data_info": data_info,
        "epoch": 0,
        "history": [],
        "fitted": fitted or {},
    }
    save_checkpoint(RunFolder(run_dir).best, state)
    # config.yaml last: a folder without it is not a run folder yet
    cfg.save(RunFolder(run_dir).config)
