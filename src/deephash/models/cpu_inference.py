"""Preparing a network for inference on a CPU: the channels-last memory layout.

oneDNN's convolutions on x86 run fastest on NHWC (channels-last) tensors; with the weights in that
layout, PyTorch computes every convolution in it, whatever the input's layout, and returns the same
values up to float rounding (about 1e-6 relative). For EfficientNet-Lite0 on 2 cores this was worth
1.3-1.5x at 64 and 224 px, which brings the torch encoder to ONNX Runtime's speed on the same
network (``benchmarks/bench_encode.py``, docs/RESULTS.md). Networks without 2-d convolutions are
left as they are.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["channels_last_for_cpu"]


def channels_last_for_cpu(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` with its 4-d weights in channels-last layout when ``device`` is the CPU and it has a
    2-d convolution; unchanged otherwise (CUDA picks its own layouts). Returns ``net`` (in place)."""
    if device.type != "cpu" or not any(isinstance(m, nn.Conv2d) for m in net.modules()):
        return net
    out: nn.Module = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return out
