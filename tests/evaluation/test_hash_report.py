from pathlib import Path

import numpy as np
import pytest

from deephash.codes import pack_bits, sign
from deephash.evaluation.hash_report import hash_report
from deephash.hashing import bit_stats
from deephash.metrics import precision_recall_curve


def test_hash_report_is_bit_stats_and_the_hamming_pr_curve(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    q, db = rng.standard_normal((20, 16)), rng.standard_normal((80, 16))
    ql, dl = rng.integers(0, 3, 20), rng.integers(0, 3, 80)
    out = hash_report(q, ql, db, dl, bits=16, label="x 16 bits", plot_path=tmp_path / "pr.png")
    stats = bit_stats(pack_bits(sign(db)), 16)
    assert out["bit_stats"]["balance"] == [round(float(v), 4) for v in stats.balance]
    assert out["bit_stats"]["distinct_fraction"] == pytest.approx(stats.distinct_fraction)
    curve = precision_recall_curve(pack_bits(sign(q)), ql, pack_bits(sign(db)), dl, bits=16)
    assert out["pr_curve"] == curve.to_dict()
    assert (tmp_path / "pr.png").stat().st_size > 0
