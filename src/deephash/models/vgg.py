"""VGG backbones with torchvision's module names, so ImageNet checkpoints load unchanged.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (ICLR
2015). Keys: ``features.N.{weight,bias}`` (plus BN buffers for ``*_bn``), ``classifier.0.*`` (fc6),
``classifier.3.*`` (fc7) and ``classifier.6.*`` (the 1000-way fc8).

``forward`` returns fc7 features after its ReLU and dropout, float (B, 4096) — the layer deep-hashing
papers (DPSH, DTSH, ...) put their hash layer on. The five max-pools need at least 32 px, so
smaller images are up-sampled to 32; the 7×7 adaptive pool then matches torchvision at any size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deephash.models.backbone import Backbone, check_head_options
from deephash.models.backbone_registry import register_backbone
from deephash.models.pretrained import TORCHVISION_URL, Checkpoint

__all__ = ["VGG", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

# Output channels of each 3×3 convolution; "M" is a 2×2 max-pool.
_CFG_16: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                            512, 512, 512, "M", 512, 512, 512, "M"]  # fmt: skip
_CFG_19: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                            512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # fmt: skip


class VGG(Backbone):
    """VGG trunk: conv ``features``, 7×7 adaptive pool, fc6 and fc7; ``classifier.6`` kept.

    config: conv widths with "M" for max-pools. batch_norm: BN after every conv (``vgg*_bn``).
    in_channels: input channels C. num_classes: size of fc8 (0 drops it). dropout: of fc6/fc7.
    Output: float (B, 4096).
    """

    stem_weight_key = "features.0.weight"
    classifier_prefix = "classifier.6"
    min_input_size = 32

    def __init__(
        self,
        config: Sequence[int | str],
        *,
        batch_norm: bool = False,
        in_channels: int = 3,
        num_classes: int = 1000,
        dropout: float = 0.5,
        arch: str | None = None,
    ) -> None:
        super().__init__()
        check_head_options(num_classes, dropout)
        self.arch = arch
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        channels = in_channels
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            assert isinstance(v, int)
            layers.append(nn.Conv2d(channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        head: list[nn.Module] = [
            nn.Linear(channels * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
        ]
        if num_classes > 0:
            head.append(nn.Linear(4096, num_classes))
        self.classifier = nn.Sequential(*head)
        self.out_features = 4096
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's VGG init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        for layer in list(self.classifier)[:6]:  # fc6, relu, dropout, fc7, relu, dropout
            x = layer(x)
        return x

    def get_classifier(self) -> nn.Module | None:
        return self.classifier[6] if len(self.classifier) > 6 else None


@register_backbone("vgg16", pretrained=Checkpoint(TORCHVISION_URL + "vgg16-397923af.pth"))
def vgg16(*, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 (138.4 M parameters with fc8); fc7 features float (B, 4096)."""
    return VGG(
        _CFG_16, in_channels=in_channels, num_classes=num_classes, dropout=dropout, arch="vgg16"
    )


@register_backbone("vgg19", pretrained=Checkpoint(TORCHVISION_URL + "vgg19-dcbb9e9d.pth"))
def vgg19(*, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-19 (143.7 M parameters with fc8); fc7 features float (B, 4096)."""
    return VGG(
        _CFG_19, in_channels=in_channels, num_classes=num_classes, dropout=dropout, arch="vgg19"
    )


@register_backbone("vgg16_bn", pretrained=Checkpoint(TORCHVISION_URL + "vgg16_bn-6c64b313.pth"))
def vgg16_bn(*, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm after every convolution; fc7 features float (B, 4096)."""
    return VGG(
        _CFG_16,
        batch_norm=True,
        in_channels=in_channels,
        num_classes=num_classes,
        dropout=dropout,
        arch="vgg16_bn",
    )


@register_backbone("vgg19_bn", pretrained=Checkpoint(TORCHVISION_URL + "vgg19_bn-c79401a0.pth"))
def vgg19_bn(*, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-19 with batch norm after every convolution; fc7 features float (B, 4096)."""
    return VGG(
        _CFG_19,
        batch_norm=True,
        in_channels=in_channels,
        num_classes=num_classes,
        dropout=dropout,
        arch="vgg19_bn",
    )
