import numpy as np
import pytest
from sklearn.decomposition import PCA

from deephash.codes import code_bytes, unpack_bits
from deephash.hashing.itq import ITQ


def _data(n: int = 800, d: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.2, d)
    mix = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return (rng.standard_normal((n, d)) * scales) @ mix + 4.0


def test_quantization_loss_non_increasing_and_below_pca_sign() -> None:
    x = _data()
    itq = ITQ(8, n_iter=50, seed=0).fit(x)
    hist = itq.loss_history_
    assert hist.shape == (50,)
    assert np.all(np.diff(hist) <= 1e-9 * hist[0])
    v = (x - x.mean(axis=0)) @ itq.components_
    pca_sign = np.sum((np.where(v >= 0, 1.0, -1.0) - v) ** 2)  # R = I, no rotation
    assert hist[-1] < pca_sign
    # the final rotation's loss with B = sign(V R) is no worse than the last recorded one
    vr = v @ itq.rotation_
    assert np.sum((np.where(vr >= 0, 1.0, -1.0) - vr) ** 2) <= hist[-1] + 1e-9


def test_loss_history_equals_direct_loss() -> None:
    # fitting k + 1 iterations from the same seed continues the k-iteration fit:
    # B = sign(V R_k), R_{k+1} = rotation_, recorded loss = ||B − V R_{k+1}||²
    x = _data(n=300, d=10, seed=3)
    short, long = ITQ(5, n_iter=3, seed=2).fit(x), ITQ(5, n_iter=4, seed=2).fit(x)
    v = (x - x.mean(axis=0)) @ long.components_
    b = np.where(v @ short.rotation_ >= 0, 1.0, -1.0)
    direct = np.sum((b - v @ long.rotation_) ** 2)
    assert long.loss_history_[-1] == pytest.approx(direct, rel=1e-10)
    np.testing.assert_allclose(long.loss_history_[:3], short.loss_history_)


def test_rotation_orthogonal_and_pca_matches_sklearn() -> None:
    x = _data()
    itq = ITQ(6, seed=1).fit(x)
    np.testing.assert_allclose(itq.rotation_ @ itq.rotation_.T, np.eye(6), atol=1e-10)
    ref = PCA(6).fit(x).components_.T
    # same subspace directions up to sign
    np.testing.assert_allclose(np.abs(np.sum(ref * itq.components_, axis=0)), 1.0, atol=1e-8)


def test_codes_shape_dtype_and_errors() -> None:
    x = _data(n=100, d=12)
    itq = ITQ(12, seed=0)
    with pytest.raises(ValueError, match="not fitted"):
        itq.encode(x)
    codes = itq.fit_encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (100, code_bytes(12))
    np.testing.assert_array_equal(unpack_bits(codes, 12), np.where(itq.project(x) >= 0, 1, -1))
    np.testing.assert_array_equal(codes, ITQ(12, seed=0).fit_encode(x))
    with pytest.raises(ValueError, match=r"bits <= feature dimension: 16 bits > d=12"):
        ITQ(16).fit(x)
    with pytest.raises(ValueError, match="NaN"):
        ITQ(4).fit(np.full((10, 5), np.nan))
