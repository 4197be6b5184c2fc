"""ONNX Runtime as the encoder of a search service: the same network, exported with torch.onnx.

The network (and, when asked, a re-rank descriptor computed in the same pass) is exported once,
in memory, for one input size and any batch size, and run by ONNX Runtime's CPU execution
provider (``pip install 'deephash[onnx]'``). Before it is used, its outputs are compared with the
torch network's on a probe batch: above ``tolerance`` (1e-4) it is refused and the caller keeps
torch. Which engine is faster on the machine is measured by ``benchmarks/bench_encode.py``.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["OnnxEncoder", "onnxruntime_available"]


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` (torch.onnx's exporter needs it) are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class _Outputs(nn.Module):
    """The network's output (B, out_dim) and, with ``kind``, descriptor ``kind`` (B, D)."""

    def __init__(self, net: nn.Module, kind: str | None) -> None:
        super().__init__()
        self.net = net
        self.kind = kind

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.kind is None:
            return (self.net(x).float(),)
        from deephash.models.descriptors import DESCRIPTORS

        desc, out = DESCRIPTORS.get(self.kind)(self.net, x)
        unit = nn.functional.normalize(desc.float(), p=2, dim=1)
        return out.float(), unit


class OnnxEncoder:
    """``net`` (eval mode) run by ONNX Runtime on inputs float (B, C, H, W) of one ``input_shape``
    (C, H, W); ``kind``: a descriptor to compute in the same pass (None: the output only).

    Raises ``ValueError`` when its outputs differ from torch's by more than ``tolerance`` on a
    probe batch, ``ImportError`` when ONNX Runtime is not installed.
    """

    def __init__(
        self,
        net: nn.Module,
        input_shape: tuple[int, int, int],
        kind: str | None = None,
        *,
        threads: int | None = None,
        tolerance: float = 1e-4,
    ) -> None:
        import onnxruntime as ort

        self.input_shape = tuple(input_shape)
        self.kind = kind
        module = _Outputs(net, kind).eval()
        probe = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(0))
        names = ["out"] if kind is None else ["out", "descriptor"]
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks and branches
            torch.onnx.export(
                module,
                (probe,),
                buf,  # type: ignore[arg-type]  # a file object works (typed as a path)
                input_names=["images"],
                output_names=names,
                dynamic_axes={n: {0: "batch"} for n in ["images", *names]},
                dynamo=False,
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            buf.getvalue(), opts, providers=["CPUExecutionProvider"]
        )
        with torch.no_grad():
            want = [t.numpy() for t in module(probe)]
        got = self._session.run(None, {"images": probe.numpy()})
        self.max_abs_diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        if self.max_abs_diff > tolerance:
            raise ValueError(
                f"ONNX Runtime's outputs differ from torch's by {self.max_abs_diff:.2e} "
                f"(> {tolerance:.0e})"
            )

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: float (B, C, H, W) -> (outputs float32 (B, out_dim), descriptors float32 (B, D)
        L2-normalised, or None without ``kind``)."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected inputs (B, {self.input_shape}), got {tuple(x.shape)}")
        res: list[Any] = self._session.run(None, {"images": x.detach().cpu().numpy()})
        out = torch.from_numpy(res[0])
        return out, (torch.from_numpy(res[1]) if self.kind is not None else None)
