"""deephash.models: backbones by name (``create_backbone``), heads, and weight loading."""

from deephash.models import efficientnet_lite, pixels, resnet, small_cnn, vgg  # noqa: F401  (register the built-in backbones)
from deephash.models.backbones import (
    Backbone,
    backbone_input_stats,
    create_backbone,
    is_backbone,
    list_backbones,
    register_backbone,
)
from deephash.models.efficientnet_lite import EfficientNetLite
from deephash.models.resnet import ResNet
from deephash.models.small_cnn import SmallCNN
from deephash.models.vgg import VGG
from deephash.models.weights import (
    WeightsLoadResult,
    WeightsUnavailableError,
    load_backbone_weights,
    register_weights_resolver,
)

__all__ = [
    "VGG",
    "Backbone",
    "EfficientNetLite",
    "ResNet",
    "SmallCNN",
    "WeightsLoadResult",
    "WeightsUnavailableError",
    "backbone_input_stats",
    "create_backbone",
    "is_backbone",
    "list_backbones",
    "load_backbone_weights",
    "register_backbone",
    "register_weights_resolver",
]
