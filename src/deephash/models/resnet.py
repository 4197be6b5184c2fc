"""ResNet backbones with torchvision's module names, so ImageNet checkpoints load unchanged.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016). Bottleneck blocks stride in
their 3×3 convolution ("ResNet v1.5"), as torchvision's do. State-dict keys follow torchvision:
``conv1.weight``, ``bn1.*``, ``layer{1..4}.{i}.conv{1,2[,3]}.weight``, ``...bn{..}.*``,
``layer{2..4}.0.downsample.{0,1}.*`` and ``fc.{weight,bias}``.

``cifar-resnet*`` are the usual CIFAR variant (3×3 stride-1 stem, no max-pool; 8× down-sampling
instead of 32×) with the same keys, only ``conv1.weight`` has shape (64, C, 3, 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deephash.models.backbone import Backbone, check_head_options
from deephash.models.backbone_registry import register_backbone
from deephash.models.pretrained import TORCHVISION_URL, Checkpoint

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "cifar_resnet18",
    "cifar_resnet34",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or 1×1 projection) shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided), 1×1 expand ×4, with an identity or projection shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(inplanes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(inplanes: int, outplanes: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(
        nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False), nn.BatchNorm2d(outplanes)
    )


class ResNet(Backbone):
    """ResNet trunk; ``forward`` returns the globally average-pooled features before ``fc``.

    block: :class:`BasicBlock` (ResNet-18/34) or :class:`Bottleneck` (ResNet-50/101).
    layers: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
    in_channels: input channels C. num_classes: size of the kept ``fc`` classifier (0 drops it).
    cifar_stem: 3×3 stride-1 stem without max-pool, for 32×32 images.
    zero_init_residual: start each residual branch's last BN at zero (Goyal et al., 2017).
    Output: float (B, 512 * block.expansion).
    """

    stem_weight_key = "conv1.weight"
    classifier_prefix = "fc"

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        cifar_stem: bool = False,
        zero_init_residual: bool = False,
        arch: str | None = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {tuple(layers)}")
        check_head_options(num_classes)
        self.arch = arch
        self.in_channels = in_channels
        # ImageNet stem: 32× down-sampling, so layer4 sees 1×1 at 32 px; smaller inputs go up to 32.
        self.min_input_size = 8 if cifar_stem else 32
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.Identity() if cifar_stem else nn.MaxPool2d(3, stride=2, padding=1)
        )
        inplanes = 64
        stages = []
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(blocks):
                stage.append(block(inplanes, planes, stride if j == 0 else 1))
                inplanes = planes * block.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_features = 512 * block.expansion
        self.fc = nn.Linear(self.out_features, num_classes) if num_classes > 0 else None
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's init: He-normal (fan_out) convs, BN at identity, PyTorch default for fc.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def get_classifier(self) -> nn.Module | None:
        return self.fc


def _build(
    arch: str,
    block: type[BasicBlock | Bottleneck],
    layers: tuple[int, int, int, int],
    in_channels: int,
    num_classes: int,
    zero_init_residual: bool,
    cifar_stem: bool = False,
) -> ResNet:
    return ResNet(
        block,
        layers,
        in_channels=in_channels,
        num_classes=num_classes,
        cifar_stem=cifar_stem,
        zero_init_residual=zero_init_residual,
        arch=arch,
    )


@register_backbone("resnet18", pretrained=Checkpoint(TORCHVISION_URL + "resnet18-f37072fd.pth"))
def resnet18(
    *, in_channels: int = 3, num_classes: int = 1000, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-18 (11.7 M parameters with the 1000-class fc); features float (B, 512)."""
    return _build(
        "resnet18", BasicBlock, (2, 2, 2, 2), in_channels, num_classes, zero_init_residual
    )


@register_backbone("resnet34", pretrained=Checkpoint(TORCHVISION_URL + "resnet34-b627a593.pth"))
def resnet34(
    *, in_channels: int = 3, num_classes: int = 1000, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-34 (21.8 M parameters); features float (B, 512)."""
    return _build(
        "resnet34", BasicBlock, (3, 4, 6, 3), in_channels, num_classes, zero_init_residual
    )


@register_backbone("resnet50", pretrained=Checkpoint(TORCHVISION_URL + "resnet50-0676ba61.pth"))
def resnet50(
    *, in_channels: int = 3, num_classes: int = 1000, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-50 (25.6 M parameters); features float (B, 2048)."""
    return _build(
        "resnet50", Bottleneck, (3, 4, 6, 3), in_channels, num_classes, zero_init_residual
    )


@register_backbone("resnet101", pretrained=Checkpoint(TORCHVISION_URL + "resnet101-63fe2227.pth"))
def resnet101(
    *, in_channels: int = 3, num_classes: int = 1000, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-101 (44.5 M parameters); features float (B, 2048)."""
    return _build(
        "resnet101", Bottleneck, (3, 4, 23, 3), in_channels, num_classes, zero_init_residual
    )


@register_backbone("cifar-resnet18")
def cifar_resnet18(
    *, in_channels: int = 3, num_classes: int = 10, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-18 with a 3×3 stride-1 stem and no max-pool, for 32×32 images; features (B, 512)."""
    return _build(
        "cifar-resnet18",
        BasicBlock,
        (2, 2, 2, 2),
        in_channels,
        num_classes,
        zero_init_residual,
        cifar_stem=True,
    )


@register_backbone("cifar-resnet34")
def cifar_resnet34(
    *, in_channels: int = 3, num_classes: int = 10, zero_init_residual: bool = False
) -> ResNet:
    """ResNet-34 with the CIFAR stem (3×3 stride 1, no max-pool); features (B, 512)."""
    return _build(
        "cifar-resnet34",
        BasicBlock,
        (3, 4, 6, 3),
        in_channels,
        num_classes,
        zero_init_residual,
        cifar_stem=True,
    )
