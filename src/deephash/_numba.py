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

__all__ = ["float_order_key", "njit", "popcount64"]

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


@intrinsic
def _float_order_key(typingctx: Any, x: Any) -> Any:
    if not isinstance(x, types.Float):
        return None
    width = x.bitwidth  # type: ignore[attr-defined]
    sig = types.uint64(x)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        int_t = ir.IntType(width)
        sign = ir.Constant(int_t, 1 << (width - 1))
        bits = builder.bitcast(args[0], int_t)
        # -0.0 and +0.0 compare equal, so they get one key.
        bits = builder.select(builder.icmp_unsigned("==", bits, sign), ir.Constant(int_t, 0), bits)
        negative = builder.icmp_unsigned(">=", bits, sign)
        key = builder.select(negative, builder.not_(bits), builder.or_(bits, sign))
        return builder.zext(key, ir.IntType(64)) if width < 64 else key

    return sig, codegen


@numba.njit(inline="always", cache=True)
def float_order_key(x: Any) -> Any:
    """uint64 key of a float32/float64 (not NaN) with the same order: ``a < b`` iff
    ``key(a) < key(b)`` and ``a == b`` iff ``key(a) == key(b)`` (so -0.0 and +0.0 share a key).

    IEEE-754 bit patterns order like sign-magnitude integers: setting the sign bit of a
    non-negative value and inverting every bit of a negative one turns that into unsigned order.
    A float32 key uses the low 32 bits only.
    """
    return _float_order_key(x)  # type: ignore[call-arg]


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit`` with the project's defaults (cache on disk, no fast-math)."""
    kwargs.setdefault("cache", True)
    kwargs.setdefault("nogil", True)
    return numba.njit(*args, **kwargs)
