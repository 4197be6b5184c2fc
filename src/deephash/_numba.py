"""Numba helpers shared by the metric and index kernels.

numba has no ``popcount``; ``popcount64`` lowers to LLVM's ``ctpop`` intrinsic, which compiles to the
``POPCNT`` instruction on x86-64 (numba targets the host CPU) and to the equivalent on other ISAs.
"""

from __future__ import annotations

import os
from typing import Any

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["njit", "popcount64"]

# numba's "omp" threading layer shares libgomp with torch and resets torch's thread count on its
# first parallel launch (a run asked to use 1 thread silently went to all cores after the first
# validation, changing results and oversubscribing shared machines). The "workqueue" layer keeps
# its own threads. Users may still choose another layer through NUMBA_THREADING_LAYER.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]


@intrinsic
def _ctpop64(typingctx: Any, x: Any) -> Any:
    if not isinstance(x, types.Integer) or x.bitwidth != 64:  # type: ignore[attr-defined]
        return None
    sig = types.uint64(x)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [args[0]])

    return sig, codegen


@numba.njit(inline="always", cache=True)
def popcount64(x: Any) -> Any:
    """Number of set bits of a 64-bit integer (uint64 or int64)."""
    return _ctpop64(x)  # type: ignore[call-arg]


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit`` with the project's defaults (cache on disk, no fast-math)."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    return numba.njit(*args, **kwargs)
