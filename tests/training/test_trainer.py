import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deephash import metrics
from deephash.codes import pack_bits, sign
from deephash.training.config import TrainConfig
from deephash.training.trainer import train


def _cfg(values: dict[str, Any], **over: Any) -> TrainConfig:
    return TrainConfig.from_dict({**values, **over})


def test_metric_run_writes_a_complete_run_folder(tmp_path: Path, tiny_config_values: dict) -> None:
    cfg = _cfg(tiny_config_values, loss="batch-hard", epochs=3, tsne_samples=60)
    result = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    for name in [
        "config.yaml",
        "last.pt",
        "best.pt",
        "history.jsonl",
        "metrics.json",
        "tsne.png",
        "embeddings.npz",
        "history.png",
    ]:
        assert (run / name).is_file(), name
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all({"loss", "active_fraction", "val_map", "seconds"} <= set(h) for h in history)
    m = json.loads((run / "metrics.json").read_text())
    assert m == result.metrics
    for key in [
        "map",
        "knn_accuracy",
        "precision_at_k",
        "num_queries",
        "num_database",
        "protocol",
        "backbone",
        "train_seconds",
    ]:
        assert key in m
    assert m["num_queries"] == 100 and m["num_database"] == 400
    # metrics.json agrees with an independent recomputation from the saved embeddings
    e = np.load(run / "embeddings.npz")
    ref = metrics.mean_average_precision(
        e["query"], e["query_labels"], e["database"], e["database_labels"], distance="euclidean"
    )
    assert m["map"] == pytest.approx(ref)
    # the separable toy data is learned well beyond chance (0.1)
    assert m["map"] > 0.5


def _train_in_subprocess(values: dict, run_dir: Path, **kwargs: Any) -> None:
    """A real interruption and resume happen in separate processes; so do these runs (the first
    training in a process can differ from later ones in the last float bits: kernel selection)."""
    import subprocess
    import sys

    code = (
        "import json, sys; from pathlib import Path;"
        "from deephash.training.config import TrainConfig; from deephash.training.trainer import train;"
        "v, d, kw = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]);"
        "train(TrainConfig.from_dict(v), Path(d), **kw)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(values), str(run_dir), json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_resume_gives_the_same_result_as_an_uninterrupted_run(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    values = {**tiny_config_values, "loss": "triplet-margin", "miner": "random-hard", "epochs": 3}
    _train_in_subprocess(values, tmp_path / "full")
    _train_in_subprocess(values, tmp_path / "part", stop_after_epoch=1)
    assert not (tmp_path / "part" / "metrics.json").exists()
    assert len((tmp_path / "part" / "history.jsonl").read_text().splitlines()) == 1
    _train_in_subprocess(values, tmp_path / "part", resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert resumed["map"] == full["map"]
    assert [h["loss"] for h in b["history"]] == [h["loss"] for h in a["history"]]


def test_existing_run_is_not_overwritten(tmp_path: Path, tiny_config_values: dict) -> None:
    cfg = _cfg(tiny_config_values, epochs=1)
    train(cfg, tmp_path / "r")
    before = (tmp_path / "r" / "last.pt").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, tmp_path / "r")
    assert (tmp_path / "r" / "last.pt").read_bytes() == before
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(cfg, tmp_path / "missing", resume=True)


def test_hashing_run_reports_hamming_and_float_metrics(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    cfg = _cfg(
        tiny_config_values,
        bits=12,
        loss="dtsh",
        loss_options={"alpha": 3.0},
        schedules={"lam": {"type": "warmup", "value": 0.1, "start": 1}},
        tsne_samples=60,
    )
    result = train(cfg, tmp_path / "h")
    m = result.metrics
    for key in [
        "map",
        "map_at_k",
        "precision_at_k",
        "precision_hamming2",
        "knn_accuracy",
        "float",
        "bit_stats",
        "bits",
    ]:
        assert key in m, key
    assert m["bits"] == 12 and "map" in m["float"]
    assert len(m["bit_stats"]["balance"]) == 12
    for name in ["tsne.png", "tsne_codes.png", "pr_curve.png"]:
        assert (tmp_path / "h" / name).is_file()
    # the schedule was applied per epoch: lambda is 0 in epoch 1 and 0.1 from epoch 2
    assert [h["lam"] for h in result.history] == [0.0, 0.1]
    # Hamming mAP recomputed from the saved relaxed codes
    e = np.load(tmp_path / "h" / "embeddings.npz")
    ref = metrics.mean_average_precision(
        pack_bits(sign(e["query"])),
        e["query_labels"],
        pack_bits(sign(e["database"])),
        e["database_labels"],
    )
    assert m["map"] == pytest.approx(ref)


@pytest.mark.parametrize(
    "over",
    [
        {"loss": "cross-entropy", "sampling": "random"},
        {"loss": "triplet-margin", "sampling": "offline-triplets"},
        {"loss": "contrastive", "sampling": "offline-pairs"},
        {"loss": "contrastive", "miner": "hard-pairs"},
        {"loss": "hoffer", "miner": "all"},
        {"loss": "triplet-margin", "miner": "curriculum"},
        {"loss": "bit-bce", "bits": 8},
        {"loss": "triplet-quant", "bits": 16, "loss_options": {"base": "batch-hard", "lam": 0.1}},
        {"loss": "dnnh", "bits": 16, "head": "divide-encode"},
        {"loss": "dsh", "bits": 16},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values() if not isinstance(v, dict)),
)
def test_every_recipe_family_trains(tmp_path: Path, tiny_config_values: dict, over: dict) -> None:
    cfg = _cfg(tiny_config_values, epochs=1, **over)
    result = train(cfg, tmp_path / "r")
    assert np.isfinite(result.history[0]["loss"])
    assert result.metrics["num_database"] == 400
    assert 0.0 <= result.metrics["map"] <= 1.0


def test_time_limit_stops_training(tmp_path: Path, tiny_config_values: dict) -> None:
    cfg = _cfg(tiny_config_values, epochs=50, time_limit_minutes=1e-6)
    result = train(cfg, tmp_path / "t")
    assert len(result.history) == 1 and result.history[0]["batches"] == 1


def test_collapse_warning(
    tmp_path: Path, tiny_config_values: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch import nn

    from deephash.training import recipe
    from deephash.training.trainer import CollapseWarning

    real_build = recipe.build_network

    class Collapsed(nn.Module):
        """Maps every image to (almost) the same unit vector: a collapsed embedding."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net
            self.backbone, self.head = net.backbone, net.head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = 1e-6 * self.net(x) + 1.0
            return torch.nn.functional.normalize(out, dim=1)

    monkeypatch.setattr(recipe, "build_network", lambda cfg, c: Collapsed(real_build(cfg, c)))
    cfg = _cfg(tiny_config_values, epochs=1, loss="batch-hard")
    with pytest.warns(CollapseWarning, match="collapsed"):
        train(cfg, tmp_path / "c")


def test_time_limit_leaves_room_for_validation(
    tmp_path: Path, tiny_config_values: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a fake clock (1 s per clock read, 10 s per validation pass), the run stops early
    enough that the last validation still ends within the limit."""
    import types

    from deephash.training import setup, time_budget, trainer

    clock = {"now": 0.0}

    def perf_counter() -> float:
        clock["now"] += 1.0
        return clock["now"]

    real_validate = trainer.validate

    def slow_validate(*args: Any, **kwargs: Any) -> dict:
        clock["now"] += 10.0
        return real_validate(*args, **kwargs)

    fake_time = types.SimpleNamespace(perf_counter=perf_counter)
    for module in (setup, time_budget, trainer):  # every clock read of the loop
        monkeypatch.setattr(module, "time", fake_time)
    monkeypatch.setattr(trainer, "validate", slow_validate)
    cfg = _cfg(tiny_config_values, epochs=50, batches_per_epoch=8, time_limit_minutes=0.6)
    result = trainer.train(cfg, tmp_path / "t")
    hist = result.history
    # Epoch 1: 8 batches + 10 s validation; later epochs are cut to leave 11 s for validation.
    # Stopping at the limit and validating after it would end at >= 36 + 11 s; the clock reads
    # after the validation (2 fake seconds here, microseconds in reality) are the only overshoot.
    assert len(hist) >= 2 and hist[0]["batches"] == 8 and hist[-1]["batches"] < 8
    assert hist[-1]["val_seconds"] == pytest.approx(11.0)
    assert 36.0 - 11.0 <= hist[-1]["elapsed"] <= 36.0 + 2.0
    assert result.metrics["train_seconds"] == pytest.approx(hist[-1]["elapsed"])


def test_final_fit_trains_on_train_and_validation(tmp_path: Path, tiny_config_values: dict) -> None:
    from deephash.training import recipe

    cfg = _cfg(tiny_config_values, epochs=2, fit_validation=True)
    data = recipe.load_data(cfg)
    protocol = data.protocol
    # 350 train + 50 validation images, in that order.
    assert len(data.train) == protocol.train.size + protocol.validation.size == 400
    np.testing.assert_array_equal(
        data.train.labels, data.pool.labels[np.r_[protocol.train, protocol.validation]]
    )
    result = train(cfg, tmp_path / "fit")
    # No validation pass (it would not be held out) and no best.pt: the last epoch is the model.
    assert all("val_map" not in h for h in result.history)
    assert not (tmp_path / "fit" / "best.pt").exists()
    assert result.metrics["best_epoch"] == 2 and result.metrics["best_val_map"] is None
    assert 0.0 <= result.metrics["map"] <= 1.0


def _unseen(values: dict, **over: Any) -> TrainConfig:
    """The tiny Fashion-MNIST under fashion-mnist-unseen: 3 of the classes 0-4 trained on (p=3),
    2 held out for validation, classes 5-9 for the test."""
    return _cfg(
        values, **{"protocol": "fashion-mnist-unseen", "protocol_options": {}, "p": 3, **over}
    )


def test_unseen_validation_uses_the_held_out_classes_leave_one_out(
    tmp_path: Path, tiny_config_values: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deephash.training import recipe

    cfg = _unseen(tiny_config_values, epochs=1, val_queries=30, val_database=60)
    data = recipe.load_data(cfg)
    protocol = data.protocol
    held_out = set(protocol.validation_classes or [])
    labels = data.pool.labels
    assert len(held_out) == 2 and held_out < {0, 1, 2, 3, 4}
    assert set(labels[protocol.train].tolist()) == {0, 1, 2, 3, 4} - held_out
    q, d = recipe.validation_sample(cfg, data)
    # indices into the validation split, which is its own database: held-out images only
    assert set(labels[protocol.validation[d]].tolist()) == held_out
    np.testing.assert_array_equal(q, d[:30])
    assert len(d) == 60 and len(np.unique(d)) == 60
    np.testing.assert_array_equal(data.val_database.labels, data.validation.labels)

    calls: list[dict] = []
    real = metrics.mean_average_precision

    def spy(*args: Any, **kwargs: Any) -> float:
        calls.append({"ql": np.asarray(args[1]), "dl": np.asarray(args[3]), **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "mean_average_precision", spy)
    result = train(cfg, tmp_path / "run")
    assert len(calls) == 1  # one validation pass, on the held-out classes, leave-one-out
    call = calls[0]
    assert call["leave_one_out"] is True
    np.testing.assert_array_equal(call["dl"], labels[protocol.validation[d]])
    np.testing.assert_array_equal(call["ql"], call["dl"][:30])
    # the test: query = test images of 5-9, database = train images of 5-9 (the tiny set: 50 / 200)
    m = result.metrics
    assert m["protocol"] == "fashion-mnist-unseen" and m["leave_one_out"] is False
    assert m["num_queries"] == 50 and m["num_database"] == 200


def test_unseen_leave_one_out_run_evaluates_every_test_class_image_against_the_others(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    cfg = _unseen(
        tiny_config_values, protocol_options={"retrieval": "leave-one-out"}, bits=8, epochs=1
    )
    m = train(cfg, tmp_path / "run").metrics
    assert m["leave_one_out"] is True and m["num_queries"] == m["num_database"] == 250
    e = np.load(tmp_path / "run" / "embeddings.npz")
    np.testing.assert_array_equal(e["query"], e["database"])
    assert set(e["query_labels"].tolist()) == {5, 6, 7, 8, 9}
    codes = pack_bits(sign(e["query"]))
    labels = e["query_labels"]
    want = metrics.mean_average_precision(codes, labels, codes, labels, leave_one_out=True)
    assert m["map"] == want
    assert m["map"] != metrics.mean_average_precision(codes, labels, codes, labels)
    assert m["pr_curve"]["recall"][-1] == 1.0  # every other item lies within radius = bits


def test_projection_head_run_retrieves_with_backbone_features(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    from deephash.training.runs import load_run

    values = {
        **tiny_config_values,
        "loss": "multi-similarity",
        "sampling": "random",
        "retrieve_from": "backbone",
        "augment_scale": 0.6,
        "augment_jitter": 0.4,
        "backbone_options": {"out_features": 48},
    }
    result = train(TrainConfig.from_dict(values), tmp_path / "run")
    assert result.metrics["embedding_dim"] == 48  # the backbone's width, not the 16-d head
    emb = np.load(tmp_path / "run" / "embeddings.npz")
    assert emb["query"].shape[1] == 48
    np.testing.assert_allclose(np.linalg.norm(emb["query"], axis=1), 1.0, rtol=1e-5)
    # a reloaded run encodes the same way (what index, collection and serve use)
    run = load_run(tmp_path / "run", device="cpu")
    from deephash.data import load_protocol_data

    images = load_protocol_data(
        "fashion-mnist", data_dir=tiny_config_values["data_dir"], validation_size=50
    ).query.images[:8]
    with torch.no_grad():
        features = run.net.backbone(run.preprocess(images))
    want = (features / features.norm(dim=1, keepdim=True)).numpy()
    np.testing.assert_allclose(run.encode(images), want, rtol=1e-4, atol=1e-6)


def test_l2sp_keeps_the_backbone_near_its_start(tmp_path: Path, tiny_config_values: dict) -> None:
    from deephash.training import recipe
    from deephash.training.runs import load_run

    values = {**tiny_config_values, "weight_decay": 0.0, "lr": 0.01}
    torch.manual_seed(0)
    start = recipe.build_network(TrainConfig.from_dict(values), 1).backbone.state_dict()

    def drift(run_dir: Path) -> float:
        trained = load_run(run_dir, device="cpu", checkpoint="last").net.backbone.state_dict()
        return sum(
            float(((trained[k] - start[k]) ** 2).sum())
            for k in start
            if start[k].is_floating_point() and "running" not in k
        )

    free = train(TrainConfig.from_dict(values), tmp_path / "free")
    held = train(TrainConfig.from_dict({**values, "l2sp": 1.0}), tmp_path / "held")
    assert "l2sp_penalty" in held.history[-1] and "l2sp_penalty" not in free.history[-1]
    assert drift(tmp_path / "held") < 0.5 * drift(tmp_path / "free")


def test_instance_term_off_is_the_plain_loss_exactly(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    """A zero weight runs no views and changes nothing: the same weights, bit for bit."""
    values = {**tiny_config_values, "loss": "dtsh", "bits": 16, "epochs": 1, "final_eval": False}
    _train_in_subprocess(values, tmp_path / "plain")
    off = {**values, "instance_weight": 0.0, "instance_temperature": 0.5, "instance_spread": 0}
    _train_in_subprocess(off, tmp_path / "off")
    a = torch.load(tmp_path / "plain" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "off" / "last.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert "instance_loss" not in b["history"][0]


def test_instance_bits_train_apart_from_the_code_and_resume_exactly(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    """Extra instance bits: the retrieval code keeps its width, the instance outputs get the
    instance term's gradient, and the seeded views make a resumed run equal an uninterrupted one."""
    from deephash.training.runs import load_run

    values = {
        **tiny_config_values,
        "loss": "bit-bce",
        "sampling": "random",
        "bits": 16,
        "instance_bits": 8,
        "instance_weight": 1.0,
        "instance_spread": 0.1,
        "epochs": 2,
    }
    _train_in_subprocess(values, tmp_path / "full")
    _train_in_subprocess(values, tmp_path / "part", stop_after_epoch=1)
    _train_in_subprocess(values, tmp_path / "part", resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=False)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    losses = [h["instance_loss"] for h in a["history"]]
    assert len(losses) == 2 and all(v > 0 for v in losses)
    run = load_run(tmp_path / "full")
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    assert run.encode(images).shape == (3, 16)
    code, inst = run.net.with_instance(run.preprocess(images))
    assert code.shape == (3, 16) and inst.shape == (3, 8)
    np.testing.assert_allclose(code.detach().numpy(), run.encode(images), rtol=1e-5, atol=1e-6)
    m = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert m["bits"] == 16 and m["code_usage"]["bits"] == 16


def test_an_own_instance_network_leaves_the_class_network_as_the_class_loss_alone_trains_it(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    """instance_backbone: own: the class network's weights equal the plain recipe's bit for bit,
    while the instance network (its own narrower backbone) learns from the instance term."""
    from deephash.training.runs import load_run

    values = {
        **tiny_config_values,
        "loss": "bit-bce",
        "sampling": "random",
        "bits": 16,
        "epochs": 1,
        "final_eval": False,
    }
    own = {
        **values,
        "instance_bits": 8,
        "instance_weight": 1.0,
        "instance_backbone": "own",
        "instance_backbone_options": {"widths": [8, 8, 16]},
        "instance_batch": 8,  # views of 8 of each batch's 20 images
    }
    _train_in_subprocess(values, tmp_path / "plain")
    _train_in_subprocess(own, tmp_path / "own")
    a = torch.load(tmp_path / "plain" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "own" / "last.pt", weights_only=False)["model"]
    assert set(a) == {k for k in b if not k.startswith("instance_net.")}
    for k in a:
        assert torch.equal(a[k], b[k]), k
    from deephash.training.recipe import build_network

    start = build_network(TrainConfig.from_dict(own), in_channels=1).state_dict()
    moved = [k for k in b if k.startswith("instance_net.") and not torch.equal(b[k], start[k])]
    assert any(k.startswith("instance_net.backbone.") for k in moved)
    assert b["instance_net.backbone.features.0.conv.weight"].shape[0] == 8  # its own widths
    run = load_run(tmp_path / "own")
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    code, inst = run.net.with_instance(run.preprocess(images))
    assert inst.shape == (3, 8)
    np.testing.assert_allclose(code.detach().numpy(), run.encode(images), rtol=1e-5, atol=1e-6)


def test_an_instance_batch_of_the_whole_batch_is_the_default_exactly(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    """instance_batch equal to the batch size is instance_batch 0 (all), bit for bit; a smaller
    one trains differently (fewer views)."""
    values = {
        **tiny_config_values,
        "loss": "bit-bce",
        "sampling": "random",
        "batch_size": 20,
        "bits": 16,
        "instance_bits": 8,
        "instance_weight": 1.0,
        "epochs": 1,
        "final_eval": False,
    }
    for name, batch in (("all", 0), ("same", 20), ("part", 6)):
        _train_in_subprocess({**values, "instance_batch": batch}, tmp_path / name)
    runs = {
        name: torch.load(tmp_path / name / "last.pt", weights_only=False)["model"]
        for name in ("all", "same", "part")
    }
    for k in runs["all"]:
        assert torch.equal(runs["all"][k], runs["same"][k]), k
    assert not all(torch.equal(runs["all"][k], runs["part"][k]) for k in runs["all"])
