"""Training configuration: one dataclass, loaded from YAML and/or flags, saved resolved in the run.

Configs hold only names and numbers; objects are built from them in code (``build_*`` functions).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deephash.checks import check_positive_int

__all__ = ["TrainConfig", "load_config"]


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    A run is a metric-learning run (float embeddings of ``embedding_dim``) when ``bits`` is None, and a
    hashing run (relaxed codes of ``bits`` in (-1, 1), evaluated by Hamming ranking of their signs)
    when ``bits`` is set.
    """

    # data
    dataset: str = "fashion-mnist"
    protocol: str | None = None  # protocol name or JSON file; defaults to the dataset's own
    protocol_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    download: bool = False
    augment: bool = True
    # Final fit: train on train + validation once the hyper-parameters are chosen; no per-epoch
    # validation then (it would not be held out), and the last epoch is the model.
    fit_validation: bool = False
    # random-crop padding in pixels: None for the dataset's default, 0 for flips only
    augment_padding: int | None = None
    # stronger augmentation (unseen-class recipes): random resized crops down to this area fraction
    # (None: off) and contrast / brightness jitter of this strength (0: off)
    augment_scale: float | None = None
    augment_jitter: float = 0.0
    # model
    backbone: str = "small-cnn"
    weights: str | None = None
    backbone_options: dict[str, Any] = field(default_factory=dict)  # e.g. {depths: [1, 2, 2]}
    embedding_dim: int = 64
    normalize: bool = True  # L2-normalize float embeddings
    bits: int | None = None
    head: str | None = None  # hashing head kind: tanh (default), sign-ste, divide-encode
    # what a float model retrieves with: "head" (the trained embedding) or "backbone" (the
    # L2-normalised features before the head, which then only serves the loss, as a projection head)
    retrieve_from: str = "head"
    # fine-tuning on a CPU: freeze the backbone's first N stages (None: train it all) and compute
    # their outputs once per training image into a cache, plus cache_views augmented copies
    # (needs a backbone with split(), efficientnet-lite*); freeze_bn: batch norm of the trainable
    # part keeps its pretrained statistics (inference mode) instead of batch statistics
    freeze_stages: int | None = None
    cache_views: int = 0
    freeze_bn: bool = False
    # where the frozen stages' outputs of clean images persist, found again by the images' pixels
    # (None: $DEEPHASH_CACHE_DIR/frozen, else ~/.cache/deephash/frozen)
    cache_dir: str | None = None
    # objective
    loss: str = "batch-hard"
    loss_options: dict[str, Any] = field(default_factory=dict)
    miner: str | None = None
    miner_options: dict[str, Any] = field(default_factory=dict)
    schedules: dict[str, Any] = field(default_factory=dict)  # loss attribute -> schedule spec
    # the instance term (deephash.losses.instance), added to the loss above: every training image
    # also gets a copy-like view (deephash.data.copy_views: rescaled, blurred, JPEG, brightness,
    # contrast, shifts, crops...), and the codes of the two views are pulled together and apart
    # from the batch's other images (NT-Xent, weight instance_weight, 0: off) and spread (KoLeo,
    # weight instance_spread). instance_bits > 0: the head outputs that many extra bits for the
    # instance term alone (the class loss and the retrieval code keep the first `bits`); 0: the
    # term acts on the code itself. instance_view_strength scales how often each edit happens.
    instance_weight: float = 0.0
    instance_temperature: float = 0.2
    instance_spread: float = 0.0
    instance_bits: int = 0
    instance_view_strength: float = 1.0
    # share of the instance bits' gradient that reaches the backbone (1: all; lower keeps the
    # backbone closer to what the class loss alone would make of it)
    instance_backbone_grad: float = 1.0
    # where the instance bits come from: "shared" (extra outputs of the class network's head) or
    # "own" (a network of their own, the backbone family above with instance_backbone_options over
    # backbone_options, e.g. {widths: [16, 32, 64]}): the class network then learns from the
    # class loss alone and keeps its class ranking
    instance_backbone: str = "shared"
    # how many images of each batch get a copy-like view for the instance term (0: all of them):
    # fewer make the views and the instance outputs cheaper (NT-Xent needs at least 2)
    instance_batch: int = 0
    instance_backbone_options: dict[str, Any] = field(default_factory=dict)
    sampling: str = "pk"  # pk | offline-triplets | offline-pairs | random
    p: int = 8
    k: int = 16
    batch_size: int = 128  # for sampling=random and offline sampling
    # optimisation
    optimizer: str = "adam"
    lr: float = 1e-3
    backbone_lr_scale: float = 1.0
    # the loss's own parameters (classifier, proxies): Proxy-Anchor's authors train them at 100x
    loss_lr_scale: float = 1.0
    weight_decay: float = 5e-4
    # L2-SP: weight of sum ||theta - theta_start||^2 over the backbone (0: off); regularises towards
    # the starting weights (random or pretrained) instead of towards zero
    l2sp: float = 0.0
    momentum: float = 0.9
    lr_schedule: str = "cosine"  # cosine | step | constant
    warmup_epochs: float = 0.0
    epochs: int = 10
    batches_per_epoch: int | None = None
    time_limit_minutes: float | None = None
    # evaluation
    eval_every: int = 1
    val_queries: int = 2000
    val_database: int = 10000
    map_k: int = 1000
    knn_k: int = 10
    precision_k: int = 100
    tsne_samples: int = 2000
    final_eval: bool = True  # evaluate query vs database at the end (tune trials skip it)
    # run
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    progress: bool = True
    name: str | None = None

    @property
    def protocol_name(self) -> str:
        return self.protocol or self.dataset

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys are an error naming the valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown config key(s): {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
            )
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError for settings that cannot work."""
        if self.bits is not None and not 8 <= self.bits <= 256:
            raise ValueError(f"bits must be in 8..256, got {self.bits}")
        check_positive_int(self.embedding_dim, "embedding_dim")
        check_positive_int(self.epochs, "epochs")
        if self.sampling not in {"pk", "offline-triplets", "offline-pairs", "random"}:
            raise ValueError(
                f"sampling must be pk, offline-triplets, offline-pairs or random; got {self.sampling!r}"
            )
        if self.sampling == "pk" and (self.p < 2 or self.k < 2):
            raise ValueError(f"P×K sampling needs p >= 2 and k >= 2, got p={self.p}, k={self.k}")
        if self.optimizer not in {"adam", "adamw", "sgd"}:
            raise ValueError(f"optimizer must be adam, adamw or sgd; got {self.optimizer!r}")
        if self.lr_schedule not in {"cosine", "step", "constant"}:
            raise ValueError(
                f"lr_schedule must be cosine, step or constant; got {self.lr_schedule!r}"
            )
        if self.augment_padding is not None and self.augment_padding < 0:
            raise ValueError(
                f"augment_padding must be >= 0 pixels (0: no crops), got {self.augment_padding}"
            )
        if self.augment_scale is not None and not 0.0 < self.augment_scale <= 1.0:
            raise ValueError(
                f"augment_scale is the smallest crop area fraction, in (0, 1]; got {self.augment_scale}"
            )
        if not 0.0 <= self.augment_jitter < 1.0:
            raise ValueError(f"augment_jitter must be in [0, 1), got {self.augment_jitter}")
        if self.retrieve_from not in {"head", "backbone"}:
            raise ValueError(f"retrieve_from must be head or backbone; got {self.retrieve_from!r}")
        if self.retrieve_from == "backbone" and self.bits is not None:
            raise ValueError(
                "retrieve_from=backbone is for float embeddings; a hashing recipe retrieves with "
                "its codes (for codes from backbone features, use an itq baseline on the run)"
            )
        if self.freeze_stages is not None and self.freeze_stages < 1:
            raise ValueError(
                f"freeze_stages is a number of backbone stages >= 1 (or null: none frozen); got "
                f"{self.freeze_stages}"
            )
        if self.cache_views < 0:
            raise ValueError(f"cache_views must be >= 0, got {self.cache_views}")
        if self.l2sp < 0:
            raise ValueError(f"l2sp is a penalty weight, >= 0 (0: off); got {self.l2sp}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        self._validate_instance()
        if self.loss_lr_scale <= 0:
            raise ValueError(f"loss_lr_scale must be positive, got {self.loss_lr_scale}")

    def _validate_instance(self) -> None:
        for key in (
            "instance_weight",
            "instance_spread",
            "instance_temperature",
            "instance_backbone_grad",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number, got {value!r}")
        if self.instance_weight < 0 or self.instance_spread < 0:
            raise ValueError(
                f"instance_weight and instance_spread are loss weights, >= 0 (0: off); got "
                f"{self.instance_weight} and {self.instance_spread}"
            )
        if not 0.0 <= self.instance_backbone_grad <= 1.0:
            raise ValueError(
                f"instance_backbone_grad is a share of a gradient, in [0, 1]; got "
                f"{self.instance_backbone_grad}"
            )
        if self.instance_temperature <= 0:
            raise ValueError(f"instance_temperature must be > 0, got {self.instance_temperature}")
        if self.instance_bits < 0 or (self.instance_bits and self.bits is None):
            raise ValueError(
                f"instance_bits is a number of extra code bits >= 0 for a hashing recipe (bits "
                f"set); got {self.instance_bits} with bits={self.bits}"
            )
        self._validate_instance_backbone()
        batch = self.instance_batch
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 0 or batch == 1:
            raise ValueError(
                f"instance_batch is a number of images per batch, 0 (all) or at least 2; "
                f"got {batch!r}"
            )
        if self.uses_instance_term and self.freeze_stages is not None:
            raise ValueError(
                "the instance term needs copy-like views of the images, which the frozen-stage "
                "cache does not hold: unset freeze_stages or set instance_weight and "
                "instance_spread to 0"
            )

    def _validate_instance_backbone(self) -> None:
        if self.instance_backbone not in ("shared", "own"):
            raise ValueError(
                f"instance_backbone must be 'shared' or 'own', got {self.instance_backbone!r}"
            )
        if not isinstance(self.instance_backbone_options, dict):
            raise ValueError("instance_backbone_options must be a mapping of backbone options")
        if self.instance_backbone == "shared":
            if self.instance_backbone_options:
                raise ValueError(
                    "instance_backbone_options configure an instance network of its own: set "
                    "instance_backbone: own, or remove them"
                )
            return
        if not self.instance_bits:
            raise ValueError("instance_backbone: own needs instance_bits > 0 (the bits it gives)")
        if self.instance_backbone_grad != 1.0:
            raise ValueError(
                "instance_backbone_grad shares a backbone's gradient, but instance_backbone: own "
                "has a backbone of its own: leave instance_backbone_grad at 1"
            )

    @property
    def uses_instance_term(self) -> bool:
        """True when the recipe adds the instance term (a weight above 0)."""
        return self.instance_weight > 0 or self.instance_spread > 0

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the resolved config as YAML (atomically)."""
        from deephash.atomic_io import atomic_write_text

        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> TrainConfig:
    """Load a YAML (or JSON) config file, then apply ``overrides`` (None values are ignored).

    Nested ``*_options`` and ``schedules`` mappings from overrides are merged into the file's.
    """
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} does not exist")
        text = p.read_text()
        try:
            loaded = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise ValueError(f"config file {p} is not valid YAML/JSON: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {p} must hold a mapping of keys to values")
        if "recipes" in loaded:
            raise ValueError(
                f"{p} is a study file (recipes run under seeds), not one recipe; run it with: "
                f"deephash compare {p} --out DIR"
            )
        values.update(loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return TrainConfig.from_dict(values)
