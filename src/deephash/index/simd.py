"""Which CPU instructions the Hamming kernels run on.

The kernels are plain numba functions: they are compiled on first use for the machine they run on
(LLVM targets the host CPU's name and features), and the on-disk cache keys each compiled version
by that CPU, so one install picks AVX-512 ``vpopcntq`` where the CPU has AVX512_VPOPCNTDQ, an AVX2
``vpshufb`` nibble-table popcount where it has AVX2, and the scalar ``popcnt`` instruction below
that, with identical results (integer arithmetic, same tie order). ``NUMBA_CPU_NAME`` and
``NUMBA_CPU_FEATURES`` override the target, e.g. to build for an older CPU.
"""

from __future__ import annotations

import platform

__all__ = ["kernel_target"]


def kernel_target() -> dict[str, str]:
    """The compilation target of the Hamming kernels in this process.

    Returns ``{"machine": "x86_64", "cpu": LLVM CPU name, "popcount": "avx512-vpopcntdq" |
    "avx2-pshufb" | "popcnt" | "generic"}`` ("popcount" names the instruction the scans vectorise
    to; on other architectures it is "generic" and LLVM's own choice).
    """
    import llvmlite.binding as ll
    from numba.core import config

    cpu = config.CPU_NAME or ll.get_host_cpu_name()  # type: ignore[attr-defined]
    features = config.CPU_FEATURES or ll.get_host_cpu_features().flatten()  # type: ignore[attr-defined]
    enabled = {f[1:] for f in str(features).split(",") if f.startswith("+")}
    if {"avx512f", "avx512vpopcntdq"} <= enabled:
        popcount = "avx512-vpopcntdq"
    elif "avx2" in enabled:
        popcount = "avx2-pshufb"
    elif "popcnt" in enabled:
        popcount = "popcnt"
    else:
        popcount = "generic"
    return {"machine": platform.machine(), "cpu": str(cpu), "popcount": popcount}
