"""The training loop: P×K batches -> network -> (gather) -> miner + loss -> optimiser, epoch by epoch.

Reads top to bottom. Every epoch ends with a validation mAP (validation queries against a fixed
sample of the training split, never the test queries), a line in ``history.jsonl``, an atomic
``last.pt`` checkpoint and, when validation improved, ``best.pt``. ``resume=True`` continues from
``last.pt``; since the sampler, augmentation and global RNG are re-seeded from (seed, epoch) at the
start of every epoch, a resumed run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deephash.atomic_io import (
    atomic_copy,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from deephash.data import ProtocolData
from deephash.device import resolve_device
from deephash.evaluation.evaluator import embed_images, retrieval_metrics
from deephash.evaluation.feature_store import FeatureStore, default_cache_dir
from deephash.evaluation.hash_report import hash_report
from deephash.training import optim, recipe
from deephash.training.config import TrainConfig
from deephash.training.distributed import (
    DistInfo,
    all_gather_with_grad,
    any_rank,
    barrier,
    cleanup,
    setup_distributed,
)
from deephash.training.frozen_cache import (
    CachedTop,
    FrozenBottomCache,
    freeze_bottom,
    set_bn_eval,
)
from deephash.training.l2sp import L2SP
from deephash.training.schedules import create_schedules

__all__ = ["CollapseWarning", "TrainResult", "train"]


class CollapseWarning(UserWarning):
    """Embeddings collapsed: all distances nearly equal, the loss stuck at the margin."""


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919) % (2**31 - 1)


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, writing everything into ``run_dir``; returns final metrics.

    With ``resume=True`` the run continues from ``run_dir/last.pt``. ``stop_after_epoch`` ends this
    call after that epoch's checkpoint, like an interruption (the run can be resumed later); the
    final evaluation then waits for the run's last epoch.
    """
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise FileNotFoundError(f"cannot resume: {run_dir / 'last.pt'} does not exist")
    elif (run_dir / "last.pt").exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    device = resolve_device(config.device)
    info = setup_distributed(device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    if config.num_threads:
        import numba

        torch.set_num_threads(config.num_threads)
        numba.set_num_threads(min(config.num_threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        return _train(config, run_dir, resume, device, info, stop_after_epoch)
    finally:
        cleanup(info)


def _train(
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    device: torch.device,
    info: DistInfo,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    torch.manual_seed(cfg.seed)
    data = recipe.load_data(cfg)
    model = recipe.build_network(cfg, data.in_channels).to(device)
    # Frozen first stages (freeze_stages): their outputs are cached once, and training runs the
    # trainable top and the head on the cache (deephash.training.frozen_cache).
    bottom, train_net = None, model
    if cfg.freeze_stages:
        bottom, top = freeze_bottom(model, cfg.freeze_stages)
        train_net = CachedTop(model, top)
    # L2-SP's start point is the freshly built backbone (from the seed, or loaded weights); a
    # resumed run rebuilds the same one before its checkpoint is loaded.
    penalty = L2SP(model.get_submodule("backbone"), cfg.l2sp) if cfg.l2sp > 0 else None
    t_loss = time.perf_counter()
    # Building the loss is part of training for the two-step method (it infers target codes).
    loss_fn = recipe.build_loss(cfg, data).to(device)
    setup_seconds = time.perf_counter() - t_loss
    schedules = create_schedules(cfg.schedules)
    params = optim.param_groups(cfg, model, loss_fn)
    optimizer = optim.build_optimizer(cfg, params)
    batches = recipe.build_batches(cfg, data.train.labels, rank=info.rank)
    steps_per_epoch = len(batches)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, optim.lr_lambda(cfg, steps_per_epoch))
    preprocess_train = data.preprocessor(augment=cfg.augment)
    preprocess_eval = data.preprocessor(augment=False)
    instance = recipe.build_instance_term(cfg)
    cache = None
    if bottom is not None:
        cache = FrozenBottomCache.build(
            bottom,
            data.train.images,
            store=frozen_store(cfg, model, bottom, data),
            clean=preprocess_eval,
            augment=preprocess_train if cfg.augment else None,
            views=cfg.cache_views if cfg.augment else 0,
            seed=cfg.seed,
            device=device,
            progress=cfg.progress and info.is_main,
        )
        setup_seconds += cache.seconds
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        if cache is not None:
            train_net = nn.parallel.DistributedDataParallel(
                train_net, device_ids=[device.index] if device.type == "cuda" else None
            )
    net = net_of(model)

    history: list[dict[str, Any]] = []
    start_epoch, best_val, elapsed = 0, -math.inf, setup_seconds
    if resume:
        state = load_checkpoint(run_dir / "last.pt", map_location=device)
        net.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        start_epoch, best_val, elapsed = state["epoch"], state["best_val"], state["elapsed"]
        history = list(state["history"])
    elif info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")

    val_idx = recipe.validation_sample(cfg, data)
    embed = image_embedder(cfg, net, data, device)
    deadline = cfg.time_limit_minutes * 60 if cfg.time_limit_minutes else math.inf
    # The time limit covers validation too: an epoch stops early enough to leave the last
    # validation pass's duration before the deadline, so train_seconds overshoots it by at most
    # about one batch.
    # (On resume: the last epoch that validated, as an uninterrupted run would remember it.)
    val_seconds = next(
        (float(h["val_seconds"]) for h in reversed(history) if "val_seconds" in h), 0.0
    )
    for epoch in range(start_epoch, cfg.epochs):
        if elapsed + val_seconds >= deadline and history:  # a fresh run trains at least a batch
            break
        t0 = time.perf_counter()
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))
        aug_gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch) + 1)
        view_rng = np.random.default_rng(_epoch_seed(cfg.seed, epoch) + 2)
        batches.set_epoch(epoch)
        for name, sched in schedules.items():
            setattr(loss_fn, name, float(sched(epoch)))
        recipe.start_epoch(loss_fn, cfg, epoch)
        model.train()
        if cfg.freeze_bn:  # batch norm keeps the pretrained statistics (affine weights train)
            set_bn_eval(net.get_submodule("backbone"))
        if bottom is not None:
            bottom.eval()
        sum_loss, sum_active, n_batches, n_terms, sum_l2sp = 0.0, 0.0, 0, 0, 0.0
        sum_instance = 0.0
        bar = tqdm(
            batches,
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=None if (cfg.progress and info.is_main) else True,  # None: off when not a TTY
            leave=False,
            unit="batch",
        )
        for step, batch in enumerate(bar):
            labels = torch.as_tensor(data.train.labels[batch.images], device=device)
            if cache is not None:
                maps = cache.batch(
                    batch.images, generator=aug_gen if cfg.augment else None, device=device
                )
                out = train_net(maps)
            elif instance is None:
                x = preprocess_train(data.train.images[batch.images], generator=aug_gen)
                out = model(x.to(device))
            else:
                images = data.train.images[batch.images]
                x = preprocess_train(images, generator=aug_gen)
                x_view = preprocess_eval(instance[1](images, view_rng))
                out, out_view = model(torch.cat([x, x_view]).to(device)).split(len(x))
                term = instance[0](*_instance_parts(out, out_view, cfg))
                sum_instance += float(term.loss.detach())
            out = all_gather_with_grad(out[:, : cfg.bits] if cfg.instance_bits else out, info)
            labels = all_gather_with_grad(labels, info)
            result = recipe.compute_loss(loss_fn, out, labels, batch)
            loss = result.loss * info.world_size  # DDP averages gradients over ranks
            if instance is not None:  # each rank's own views, averaged by DDP as the loss is
                loss = loss + term.loss * info.world_size
            if penalty is not None:  # the same on every rank: averaging keeps it as it is
                reg = penalty()
                loss = loss + reg
                sum_l2sp += float(reg.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lr_sched.step()
            sum_loss += float(result.loss.detach())
            sum_active += result.active_fraction
            n_terms += result.num_terms
            n_batches += 1
            if step % 10 == 0:
                bar.set_postfix(
                    loss=f"{sum_loss / n_batches:.4f}", active=f"{sum_active / n_batches:.2f}"
                )
            if math.isfinite(deadline) and any_rank(
                elapsed + (time.perf_counter() - t0) + val_seconds >= deadline, info
            ):
                break
        bar.close()

        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": sum_loss / max(1, n_batches),
            "active_fraction": sum_active / max(1, n_batches),
            "terms_per_batch": n_terms / max(1, n_batches),
            "lr": optimizer.param_groups[0]["lr"],
            "batches": n_batches,
        }
        if cache is not None and epoch == 0:
            record["cache_seconds"] = round(cache.seconds, 3)
        if penalty is not None:
            record["l2sp_penalty"] = sum_l2sp / max(1, n_batches)
        if instance is not None:
            record["instance_loss"] = sum_instance / max(1, n_batches)
        for name in schedules:
            record[name] = getattr(loss_fn, name)
        validate_now = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        if info.is_main and validate_now and not cfg.fit_validation:
            t_val = time.perf_counter()
            val = _validate(cfg, data, val_idx, embed)
            val_seconds = time.perf_counter() - t_val
            record.update(val)
            record["val_seconds"] = round(val_seconds, 3)
            _check_collapse(val, record, cfg)
        elapsed += time.perf_counter() - t0
        record["seconds"] = round(time.perf_counter() - t0, 3)
        record["elapsed"] = round(elapsed, 3)
        history.append(record)
        if info.is_main:
            _log_epoch(record, cfg)
        improved = "val_map" in record and record["val_map"] > best_val
        if improved:
            best_val = record["val_map"]
        if info.is_main:
            state = {
                "model": net.state_dict(),
                "loss": loss_fn.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": lr_sched.state_dict(),
                "epoch": epoch + 1,
                "best_val": best_val,
                "elapsed": elapsed,
                "history": history,
                "config": cfg.to_dict(),
                "data_info": recipe.data_info(data),
            }
            save_checkpoint(run_dir / "last.pt", state)
            if improved:
                atomic_copy(run_dir / "last.pt", run_dir / "best.pt")
            atomic_write_text(
                run_dir / "history.jsonl", "".join(json.dumps(h) + "\n" for h in history)
            )
        barrier(info)
        if (
            stop_after_epoch is not None
            and epoch + 1 >= stop_after_epoch
            and epoch + 1 < cfg.epochs
        ):
            return TrainResult(run_dir=run_dir, metrics={}, history=history)

    metrics: dict[str, Any] = {}
    if info.is_main and cfg.final_eval:
        metrics = finalize_run(run_dir, cfg, net, data, device, history, elapsed)
    barrier(info)
    return TrainResult(run_dir=run_dir, metrics=metrics, history=history)


def _instance_parts(
    out: torch.Tensor, out_view: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs the instance term compares, (B, D) each: the extra instance bits when the
    recipe has them, else the whole code (or embedding)."""
    if cfg.instance_bits and cfg.bits is not None:
        return out[:, cfg.bits :], out_view[:, cfg.bits :]
    return out, out_view


def _log_epoch(record: dict[str, Any], cfg: TrainConfig) -> None:
    """One line per epoch on stderr (also when the progress bar is off or the output is a file)."""
    import sys

    val = f" val_mAP {record['val_map']:.4f}" if "val_map" in record else ""
    print(
        f"epoch {record['epoch']}/{cfg.epochs} loss {record['loss']:.4f} "
        f"active {record['active_fraction']:.2f}{val} {record['seconds']:.1f}s",
        file=sys.stderr,
        flush=True,
    )


def net_of(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def frozen_store(
    cfg: TrainConfig, net: nn.Module, bottom: nn.Module, data: ProtocolData
) -> FeatureStore:
    """The on-disk store of this run's frozen stages (``cache_dir``, else the default)."""
    backbone = net.get_submodule("backbone")
    key = FeatureStore.key_for(
        bottom,
        backbone=cfg.backbone,
        stages=cfg.freeze_stages,
        input_size=getattr(backbone, "min_input_size", None),
        mean=data.mean,
        std=data.std,
    )
    directory = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir() / "frozen"
    return FeatureStore(directory, key)


def image_embedder(
    cfg: TrainConfig, net: nn.Module, data: ProtocolData, device: torch.device
) -> Callable[..., np.ndarray]:
    """``embed(images, progress=False, desc="...")``: uint8 (N, H, W[, C]) -> float32 (N, D), the
    network in eval mode. With frozen stages, their maps come from the run's store (computed once
    per image), so that only the top runs."""
    pre = data.preprocessor(augment=False)
    if not cfg.freeze_stages:

        def embed(
            images: np.ndarray, progress: bool = False, desc: str = "embedding"
        ) -> np.ndarray:
            return embed_images(net, images, pre, device=device, progress=progress, desc=desc)

        return embed
    bottom, top = freeze_bottom(net, cfg.freeze_stages)
    store = frozen_store(cfg, net, bottom, data)
    cached = CachedTop(net, top)

    def embed_cached(
        images: np.ndarray, progress: bool = False, desc: str = "embedding"
    ) -> np.ndarray:
        maps = store.maps(
            bottom, images, pre, device=device, progress=progress, desc=f"{desc} (frozen stages)"
        )
        return embed_images(
            cached,
            maps.numpy(),
            lambda m: torch.from_numpy(m).float(),
            device=device,
            progress=progress,
            desc=desc,
        )

    return embed_cached


def _validate(
    cfg: TrainConfig,
    data: ProtocolData,
    val_idx: tuple[np.ndarray, np.ndarray],
    embed: Callable[..., np.ndarray],
) -> dict[str, Any]:
    q_idx, db_idx = val_idx
    # Class-disjoint validation: the queries are the first sampled held-out images and retrieve
    # the other sampled ones (leave-one-out), as the unseen-class test does.
    loo = data.protocol.class_disjoint_validation
    db = embed(data.val_database.images[db_idx])
    q = db[: len(q_idx)] if loo else embed(data.validation.images[q_idx])
    ql, dl = data.validation.labels[q_idx], data.val_database.labels[db_idx]
    from deephash import metrics

    if cfg.bits is not None:
        from deephash.codes import pack_bits, sign

        val_map = metrics.mean_average_precision(
            pack_bits(sign(q)), ql, pack_bits(sign(db)), dl, distance="hamming", leave_one_out=loo
        )
    else:
        val_map = metrics.mean_average_precision(
            q, ql, db, dl, distance="euclidean", leave_one_out=loo
        )
    # Distance spread on a small sample, to detect collapse.
    sample = torch.as_tensor(q[:256])
    d = torch.cdist(sample, sample)
    off = d[~torch.eye(len(sample), dtype=torch.bool)]
    spread = float(off.std() / off.mean().clamp_min(1e-12)) if off.numel() else 0.0
    return {"val_map": float(val_map), "val_distance_spread": spread}


def _check_collapse(val: dict[str, Any], record: dict[str, Any], cfg: TrainConfig) -> None:
    if val["val_distance_spread"] < 0.02 or (
        record["active_fraction"] > 0.99 and val["val_map"] < 0.2
    ):
        warnings.warn(
            f"epoch {record['epoch']}: embeddings look collapsed (relative distance spread "
            f"{val['val_distance_spread']:.4f}, active fraction {record['active_fraction']:.2f}, "
            f"validation mAP {val['val_map']:.3f}). Hint: lower the learning rate, use a semi-hard "
            "miner or the soft-margin batch-hard loss, or a smaller margin.",
            CollapseWarning,
            stacklevel=2,
        )


def finalize_run(
    run_dir: Path,
    cfg: TrainConfig,
    net: nn.Module,
    data: ProtocolData,
    device: torch.device,
    history: list[dict[str, Any]],
    train_seconds: float,
) -> dict[str, Any]:
    """Load the best checkpoint, evaluate on query vs database, write metrics.json and plots."""
    best = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    net.load_state_dict(load_checkpoint(best, map_location=device)["model"])
    metrics = evaluate_network(cfg, net, data, device, run_dir=run_dir)
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["epochs_run"] = len(history)
    validated = [h for h in history if "val_map" in h]
    # Without validation (a final fit on train + validation) the last epoch is the model.
    chosen = max(validated, key=lambda h: h["val_map"]) if validated else (history or [{}])[-1]
    metrics["best_epoch"] = int(chosen.get("epoch", 0))
    metrics["best_val_map"] = max((h["val_map"] for h in validated), default=None)
    atomic_write_json(run_dir / "metrics.json", metrics)
    if history:
        from deephash.viz import plot_training_history

        plot_training_history(history, run_dir / "history.png")
    return metrics


def evaluate_network(
    cfg: TrainConfig,
    net: nn.Module,
    data: ProtocolData,
    device: torch.device,
    *,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Embed query and database splits, compute the metrics; with ``run_dir``, also write plots and
    ``embeddings.npz`` (arrays query, query_labels, database, database_labels)."""
    embed = image_embedder(cfg, net, data, device)
    loo = data.protocol.leave_one_out  # query and database are the same images
    q = embed(data.query.images, progress=cfg.progress, desc="query")
    db = q if loo else embed(data.database.images, progress=cfg.progress, desc="database")
    metrics = retrieval_metrics(
        q,
        data.query.labels,
        db,
        data.database.labels,
        bits=cfg.bits,
        map_k=cfg.map_k,
        precision_k=cfg.precision_k,
        knn_k=cfg.knn_k,
        leave_one_out=loo,
    )
    metrics.update(
        {
            "protocol": data.protocol_name,
            "dataset": cfg.dataset,
            "backbone": cfg.backbone,
            "loss": cfg.loss,
            "miner": cfg.miner,
            "seed": cfg.seed,
            # what retrieval used (the backbone's width with retrieve_from=backbone)
            "embedding_dim": int(q.shape[1]),
        }
    )
    if run_dir is not None:
        from deephash.viz import plot_tsne

        atomic_save_npz(
            run_dir / "embeddings.npz",
            compressed=True,
            query=q,
            query_labels=data.query.labels,
            database=db,
            database_labels=data.database.labels,
        )
        names = list(data.query.class_names) if data.query.class_names else None
        plots = [(q, "tsne.png", "query embeddings" if cfg.bits is None else "relaxed codes")]
        if cfg.bits is not None:
            plots.append((np.sign(q), "tsne_codes.png", "binary codes"))
        for points, filename, what in plots if cfg.tsne_samples > 0 else []:
            plot_tsne(
                points,
                data.query.labels,
                run_dir / filename,
                class_names=names,
                num_samples=cfg.tsne_samples,
                title=f"t-SNE of {what}",
                seed=cfg.seed,
            )
        if cfg.bits is not None:
            metrics.update(
                hash_report(
                    q,
                    data.query.labels,
                    db,
                    data.database.labels,
                    bits=cfg.bits,
                    label=f"{cfg.loss} {cfg.bits} bits",
                    plot_path=run_dir / "pr_curve.png",
                    leave_one_out=loo,
                )
            )
    return metrics
