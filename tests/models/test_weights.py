import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn

from deephash.models import (
    Backbone,
    WeightsUnavailableError,
    create_backbone,
    load_backbone_weights,
    register_weights_resolver,
)
from deephash.models import weights as weights_mod
from deephash.models.backbone_registry import pretrained_weights
from deephash.models.backbones import list_backbones
from deephash.models.weights import Checkpoint, read_state_dict


class TinyNet(Backbone):
    """A backbone small enough to save and load in microseconds (not registered)."""

    stem_weight_key = "conv1.weight"
    classifier_prefix = "fc"

    def __init__(self, in_channels: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        self.arch = "tiny"
        self.in_channels = in_channels
        self.out_features = 4
        self.conv1 = nn.Conv2d(in_channels, 4, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, num_classes) if num_classes else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn1(self.conv1(x))).mean(dim=(2, 3))

    def get_classifier(self) -> nn.Module | None:
        return self.fc


def _state(seed: int = 0, **options: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = TinyNet(**options).state_dict()
    state["bn1.running_mean"] = torch.randn(4)  # so that buffers are checked too
    return state


def _meta_state(name: str, **options: object) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return create_backbone(name, **options).state_dict()


def _assert_loaded(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    for k, v in state.items():
        assert torch.equal(got[k], v), k


def test_checkpoint_names_and_hash_prefixes() -> None:
    # torchvision's IMAGENET1K_V1 files
    expected = {
        "resnet18": "resnet18-f37072fd.pth",
        "resnet34": "resnet34-b627a593.pth",
        "resnet50": "resnet50-0676ba61.pth",
        "resnet101": "resnet101-63fe2227.pth",
        "vgg16": "vgg16-397923af.pth",
        "vgg19": "vgg19-dcbb9e9d.pth",
        "vgg16_bn": "vgg16_bn-6c64b313.pth",
        "vgg19_bn": "vgg19_bn-c79401a0.pth",
    }
    hub = {n: pretrained_weights(n) for n in list_backbones(pretrained=True)}
    checkpoints = {n: c for n, c in hub.items() if isinstance(c, Checkpoint)}
    assert {k: c.file_name for k, c in checkpoints.items()} == expected
    for name, ckpt in checkpoints.items():
        assert ckpt.url == "https://download.pytorch.org/models/" + expected[name]
    vgg16_bn = pretrained_weights("vgg16_bn")
    assert isinstance(vgg16_bn, Checkpoint) and vgg16_bn.hash_prefix == "6c64b313"
    assert Checkpoint("https://x/y/resnet50-0676ba61.pth").hash_prefix == "0676ba61"


@pytest.mark.parametrize("wrapper", ["plain", "state_dict", "model", "module-prefix", "nested"])
def test_file_formats(tmp_path: Path, wrapper: str) -> None:
    state = _state(1)
    obj: object = {
        "plain": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state, "optimizer": {}},
        "module-prefix": {"state_dict": {"module." + k: v for k, v in state.items()}},
        "nested": {"model": {"state_dict": {"_orig_mod." + k: v for k, v in state.items()}}},
    }[wrapper]
    torch.save(obj, tmp_path / "w.pth")
    model = TinyNet()
    result = load_backbone_weights(model, str(tmp_path / "w.pth"))
    _assert_loaded(model, state)
    assert result.loaded == sorted(state) and result.source == str(tmp_path / "w.pth")


def test_state_dict_object_and_key_prefix() -> None:
    state = _state(2)
    model = TinyNet()
    load_backbone_weights(model, state)
    _assert_loaded(model, state)
    whole = {**{"backbone." + k: v for k, v in state.items()}, "head.weight": torch.zeros(3)}
    model = TinyNet()
    load_backbone_weights(model, whole, key_prefix="backbone.")
    _assert_loaded(model, state)
    with pytest.raises(ValueError, match=r"no keys under the prefix 'trunk\.'"):
        load_backbone_weights(model, whole, key_prefix="trunk.")


def test_missing_and_unexpected_keys_are_listed() -> None:
    state = _state(3)
    del state["bn1.running_var"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        load_backbone_weights(TinyNet(), state)
    msg = str(err.value)
    assert "do not fit backbone 'tiny'" in msg
    assert "missing keys (1): bn1.running_var" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "ignore_classifier" not in msg


def test_long_key_lists_are_shortened() -> None:
    with torch.device("meta"):
        model = create_backbone("resnet50")
    with pytest.raises(ValueError, match=r"missing keys \(320\): .* and 308 more"):
        load_backbone_weights(model, {"other": torch.zeros(1)})


def test_shape_mismatch_is_listed_with_torchvision_keys() -> None:
    imagenet_style = _meta_state("resnet18", num_classes=10)
    with torch.device("meta"):
        model = create_backbone("cifar-resnet18")
        with pytest.raises(
            ValueError,
            match=r"conv1.weight: checkpoint \(64, 3, 7, 7\) vs backbone \(64, 3, 3, 3\)",
        ):
            load_backbone_weights(model, imagenet_style)
        # strict=False loads every key that fits and reports the rest
        result = load_backbone_weights(model, imagenet_style, strict=False)
    assert [m.split(":")[0] for m in result.mismatched] == ["conv1.weight"]
    assert "conv1.weight" not in result.loaded and "layer1.0.conv1.weight" in result.loaded
    assert len(result.loaded) == 121


def test_strict_false_loads_values_that_fit() -> None:
    state = _state(6, num_classes=7)
    model = TinyNet(num_classes=5)
    result = load_backbone_weights(model, state, strict=False)
    assert sorted(m.split(":")[0] for m in result.mismatched) == ["fc.bias", "fc.weight"]
    _assert_loaded(model, {k: v for k, v in state.items() if not k.startswith("fc.")})


def test_classifier_mismatch_hint_and_ignore_flag() -> None:
    imagenet = _meta_state("resnet18")
    with torch.device("meta"):
        with pytest.raises(
            ValueError,
            match=r"fc.weight: checkpoint \(1000, 512\) vs backbone \(10, 512\)(.|\n)*ignore_classifier=True",
        ):
            create_backbone(
                "cifar-resnet18", weights=_meta_state("cifar-resnet18", num_classes=1000)
            )
        with pytest.raises(ValueError, match="ignore_classifier=True"):
            create_backbone("resnet18", num_classes=10, weights=imagenet)
        create_backbone("resnet18", num_classes=10, weights=imagenet, ignore_classifier=True)
        create_backbone("resnet18", num_classes=0, weights=imagenet)  # no classifier: fc skipped
    state = _state(4, num_classes=9)
    torch.manual_seed(9)
    model = TinyNet(num_classes=5)
    fc_before = model.fc.weight.clone()  # type: ignore[union-attr]
    result = load_backbone_weights(model, state, ignore_classifier=True)
    assert result.skipped == ["fc.bias", "fc.weight"]
    _assert_loaded(model, {k: v for k, v in state.items() if not k.startswith("fc.")})
    assert torch.equal(model.fc.weight, fc_before)  # type: ignore[union-attr]
    headless = TinyNet(num_classes=0)
    assert load_backbone_weights(headless, state).skipped == ["fc.bias", "fc.weight"]


def test_grayscale_sum_and_other_channel_counts() -> None:
    state = _state(7)
    gray = TinyNet(in_channels=1)
    result = load_backbone_weights(gray, state)
    w = state["conv1.weight"]
    assert result.adapted == ["conv1.weight"]
    torch.testing.assert_close(gray.conv1.weight, w[:, 0:1] + w[:, 1:2] + w[:, 2:3])
    with pytest.raises(
        ValueError, match=r"conv1.weight: checkpoint \(4, 3, 3, 3\) vs backbone \(4, 2, 3, 3\)"
    ):
        load_backbone_weights(TinyNet(in_channels=2), state)


def test_bad_sources(tmp_path: Path) -> None:
    model = TinyNet()
    with pytest.raises(ValueError, match=r"weights file .*nope.pth does not exist"):
        load_backbone_weights(model, tmp_path / "nope.pth")
    with pytest.raises(ValueError, match=r"is a directory.*register_weights_resolver"):
        load_backbone_weights(model, tmp_path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not read weights file"):
        load_backbone_weights(model, tmp_path / "junk.pth")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match=r"holds no state dict.*'state_dict'.*\['epoch', 'lr'\]"):
        load_backbone_weights(model, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match="must be None, 'imagenet', a file path or a state dict"):
        load_backbone_weights(model, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has no 'arch'"):
        load_backbone_weights(nn.Linear(2, 2), "imagenet")


def test_resolver_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_mod, "_RESOLVERS", [])
    state = _state(5)
    seen: list[str] = []

    @register_weights_resolver
    def runs(source: str) -> dict[str, object] | None:
        seen.append(source)
        return {"model": state, "epoch": 4} if source.startswith("run:") else None

    model = TinyNet()
    result = load_backbone_weights(model, "run:abc")
    _assert_loaded(model, state)
    assert seen == ["run:abc"] and result.source == "run:abc"
    with pytest.raises(ValueError, match="does not exist"):  # declined: read as a path
        load_backbone_weights(model, "elsewhere.pth")
    assert seen == ["run:abc", "elsewhere.pth"]


# --- ImageNet checkpoints through the torch hub cache --------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def _no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError("must not download")


@pytest.fixture
def tiny_ckpt(monkeypatch: pytest.MonkeyPatch) -> Checkpoint:
    ckpt = Checkpoint("https://download.example.org/models/tiny-0123abcd.pth")
    registered = weights_mod.pretrained_weights
    monkeypatch.setattr(
        weights_mod, "pretrained_weights", lambda arch: ckpt if arch == "tiny" else registered(arch)
    )
    return ckpt


def test_imagenet_uses_cached_file(
    hub: Path, tiny_ckpt: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    state = _state(0)
    hub.mkdir(parents=True)
    torch.save(state, hub / "tiny-0123abcd.pth")
    model = TinyNet(in_channels=1)
    result = load_backbone_weights(model, "imagenet")
    assert result.source == f"ImageNet checkpoint {hub / 'tiny-0123abcd.pth'}"
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    _assert_loaded(model, {k: v for k, v in state.items() if k != "conv1.weight"})


def test_imagenet_downloads_when_absent(
    hub: Path, tiny_ckpt: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state(1)
    calls: list[tuple[str, str, str | None]] = []

    def fake_download(
        url: str, dst: str, hash_prefix: str | None = None, progress: bool = True
    ) -> None:
        calls.append((url, dst, hash_prefix))
        torch.save(state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = TinyNet()
    load_backbone_weights(model, "imagenet")
    _assert_loaded(model, state)
    assert calls == [(tiny_ckpt.url, str(hub / "tiny-0123abcd.pth"), "0123abcd")]


def test_imagenet_offline_says_which_file_to_place_where(
    hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with torch.device("meta"), pytest.raises(WeightsUnavailableError) as err:
        create_backbone("vgg16", weights="imagenet")
    msg = str(err.value)
    assert "URLError" in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert str(hub / "vgg16-397923af.pth") in msg
    with pytest.raises(WeightsUnavailableError, match="not cached"):
        weights_mod.imagenet_checkpoint_path("resnet50", download=False)


def test_imagenet_unknown_for_small_cnn() -> None:
    with pytest.raises(ValueError, match=r"no ImageNet checkpoint .*'small-cnn'.*resnet18.*vgg16"):
        create_backbone("small-cnn", weights="imagenet")


def test_read_state_dict_strips_prefixes() -> None:
    state = {"module.a": torch.zeros(1), "b": torch.ones(1)}
    assert list(read_state_dict(state)) == ["a", "b"]


def test_resolve_weights_takes_the_backbone_of_a_run_folder(tmp_path: Path) -> None:
    from deephash.atomic_io import save_checkpoint
    from deephash.models.weights import resolve_weights

    assert resolve_weights(None) is None and resolve_weights("imagenet") == "imagenet"
    assert resolve_weights("w.pth") == "w.pth"
    with pytest.raises(FileNotFoundError, match="holds no deephash checkpoint"):
        resolve_weights(str(tmp_path))
    w = torch.ones(2)
    save_checkpoint(tmp_path / "last.pt", {"model": {"backbone.a": w, "head.b": torch.zeros(1)}})
    assert list(resolve_weights(str(tmp_path))) == ["a"]
    save_checkpoint(tmp_path / "best.pt", {"model": {"backbone.best": w}})
    assert list(resolve_weights(str(tmp_path))) == ["best"]
