"""The kernels compiled for another x86-64 instruction set return the same results."""

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from deephash.index import HammingIndex, MultiIndexHashing, kernel_target

_CHILD = """
import json, sys
import numpy as np
from deephash.index import HammingIndex, MultiIndexHashing, kernel_target
x = np.load(sys.argv[1]); q = np.load(sys.argv[2])
out = {"target": kernel_target()}
for name, cls in (("flat", HammingIndex), ("mih", MultiIndexHashing)):
    index = cls(x.shape[1] * 8)
    index.add(x)
    d, i = index.search(q, 25)
    lims, rd, ri = index.range_search(q, 14)
    out[name] = [d.tolist(), i.tolist(), lims.tolist(), rd.tolist(), ri.tolist()]
print(json.dumps(out))
"""


def _host_features() -> list[str]:
    import llvmlite.binding as ll

    return ll.get_host_cpu_features().flatten().split(",")


def _other_target() -> tuple[str, str, str]:
    """(cpu name, features, expected popcount) of an x86-64 target below the host's own."""
    feats = _host_features()
    enabled = {f[1:] for f in feats if f.startswith("+")}
    if "avx512vpopcntdq" in enabled:  # AVX-512 host: build the AVX2 kernels
        off = ("avx512", "avx10", "amx")
        name, expect = "haswell", "avx2-pshufb"
    else:  # AVX2 (or older) host: build the scalar-popcnt kernels
        off = ("avx", "fma", "f16c", "vaes", "vpclmulqdq", "gfni", "amx")
        name, expect = "nehalem", "popcnt"
    out = [("-" + f[1:]) if f[1:].startswith(off) else f for f in feats]
    return name, ",".join(out), expect


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 targets only")
def test_kernels_built_for_another_instruction_set_agree(refs, tmp_path) -> None:
    """AVX-512 vs AVX2 (on an AVX-512 host) or AVX2 vs scalar popcnt (on an AVX2 host): the same
    distances, ids and tie order from the exhaustive scan and from multi-index hashing."""
    rng = np.random.default_rng(5)
    x = np.concatenate([refs["clustered"](rng, 3000, 64), refs["random"](rng, 3000, 64)])
    q = np.concatenate([refs["clustered"](rng, 40, 64), x[:10], refs["random"](rng, 10, 64)])
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "q.npy", q)
    name, features, expect = _other_target()
    env = dict(os.environ, NUMBA_CPU_NAME=name, NUMBA_CPU_FEATURES=features)
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "x.npy"), str(tmp_path / "q.npy")],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    child = json.loads(res.stdout.strip().splitlines()[-1])
    assert child["target"]["popcount"] == expect
    assert child["target"]["popcount"] != kernel_target()["popcount"]
    for name_, cls in (("flat", HammingIndex), ("mih", MultiIndexHashing)):
        index = cls(64)
        index.add(x)
        d, i = index.search(q, 25)
        lims, rd, ri = index.range_search(q, 14)
        got = child[name_]
        np.testing.assert_array_equal(d, got[0])
        np.testing.assert_array_equal(i, got[1])
        np.testing.assert_array_equal(lims, got[2])
        np.testing.assert_array_equal(rd, got[3])
        np.testing.assert_array_equal(ri, got[4])


def test_kernel_target_names_the_host() -> None:
    t = kernel_target()
    assert t["machine"] == platform.machine() and t["cpu"]
    assert t["popcount"] in ("avx512-vpopcntdq", "avx2-pshufb", "popcnt", "generic")
