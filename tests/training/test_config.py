from pathlib import Path

import pytest

from deephash.training.config import TrainConfig, load_config


def test_yaml_then_overrides_merge(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("loss: triplet-margin\nloss_options: {margin: 0.2, normalize: true}\nepochs: 3\n")
    cfg = load_config(f, epochs=5, loss_options={"margin": 0.5}, miner=None)
    assert cfg.loss == "triplet-margin" and cfg.epochs == 5
    assert cfg.loss_options == {"margin": 0.5, "normalize": True}
    assert cfg.miner is None


def test_save_and_reload_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(bits=48, loss="dtsh", schedules={"lam": {"type": "warmup", "value": 1}})
    cfg.save(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"bitz": 3}, "unknown config key"),
        ({"bits": 4}, "bits must be in 8..256"),
        ({"sampling": "magic"}, "sampling must be"),
        ({"p": 1}, "p >= 2"),
        ({"optimizer": "lbfgs"}, "optimizer must be"),
        ({"lr": 0}, "lr must be positive"),
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"epochs": 2.5}, "epochs must be a positive integer"),
        ({"embedding_dim": -1}, "embedding_dim must be a positive integer"),
        ({"instance_weight": -0.5}, "instance_weight and instance_spread are loss weights"),
        ({"instance_spread": "much"}, "instance_spread must be a number"),
        ({"instance_temperature": 0}, "instance_temperature must be > 0"),
        ({"instance_bits": 16}, "instance_bits is a number of extra code bits"),
        ({"instance_backbone_grad": 2}, "instance_backbone_grad is a share of a gradient"),
        ({"instance_weight": 1, "freeze_stages": 2}, "unset freeze_stages"),
        ({"instance_backbone": "mine"}, "instance_backbone must be 'shared' or 'own'"),
        ({"instance_backbone_options": {"widths": [8, 8, 8]}}, "set instance_backbone: own"),
        ({"instance_backbone": "own"}, "instance_backbone: own needs instance_bits > 0"),
        (
            {
                "bits": 16,
                "instance_bits": 8,
                "instance_backbone": "own",
                "instance_backbone_grad": 0.5,
            },
            "leave instance_backbone_grad at 1",
        ),
        ({"instance_backbone_options": [1]}, "instance_backbone_options must be a mapping"),
        ({"instance_batch": 1}, "instance_batch is a number of images per batch"),
        ({"instance_batch": -4}, "instance_batch is a number of images per batch"),
    ],
)
def test_bad_values_are_clear_errors(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(values)


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)


def test_shipped_configs_are_valid() -> None:
    from deephash.training.baselines import BASELINE_METHODS
    from deephash.training.compare import load_study

    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.rglob("*.yaml"))
    assert files
    checked = 0
    for path in files:
        recipes, _ = load_study([path])
        for _name, values in recipes:
            if values.get("method") in BASELINE_METHODS:
                continue
            TrainConfig.from_dict(values)  # raises on any unknown key or bad value
            checked += 1
    assert checked > 20


def test_a_study_file_given_as_a_recipe_names_the_command_to_run(tmp_path: Path) -> None:
    from deephash.training.config import load_config

    study = tmp_path / "study.yaml"
    study.write_text("seeds: [0]\nrecipes:\n- best-unseen-metric.yaml\n")
    with pytest.raises(ValueError, match=r"study file.*deephash compare .*study.yaml --out DIR"):
        load_config(study)
