import numpy as np
import pytest

from deephash.metrics import mean_average_precision
from deephash.metrics._inputs import prepare


def codes(n: int, nbytes: int = 6) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, nbytes), dtype=np.uint8)


def test_hamming_with_float_input_explains_packing() -> None:
    x = np.random.default_rng(0).standard_normal((4, 48))
    with pytest.raises(ValueError, match=r"uint8 .*pack_bits"):
        mean_average_precision(x, [0] * 4, x, [0] * 4)


def test_float_distance_with_packed_codes_is_rejected() -> None:
    with pytest.raises(ValueError, match="distance='hamming'"):
        mean_average_precision(codes(3), [0] * 3, codes(4), [0] * 4, distance="euclidean")


def test_shape_mismatches() -> None:
    with pytest.raises(ValueError, match="widths differ"):
        mean_average_precision(codes(3, 6), [0] * 3, codes(4, 8), [0] * 4)
    with pytest.raises(ValueError, match="2-D"):
        mean_average_precision(codes(3)[0], [0], codes(4), [0] * 4)
    with pytest.raises(ValueError, match="database_labels has 3 rows but there are 4"):
        mean_average_precision(codes(3), [0] * 3, codes(4), [0] * 3)
    with pytest.raises(ValueError, match="both be class ids"):
        mean_average_precision(codes(3), [0] * 3, codes(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="numbers of classes"):
        mean_average_precision(codes(3), np.zeros((3, 3)), codes(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="empty"):
        mean_average_precision(codes(0), [], codes(4), [0] * 4)


def test_bad_options_and_values() -> None:
    with pytest.raises(ValueError, match="distance must be one of"):
        mean_average_precision(codes(3), [0] * 3, codes(4), [0] * 4, distance="l1")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        mean_average_precision(codes(3), [0] * 3, codes(4), [0] * 4, k=0)
    with pytest.raises(ValueError, match="integer class ids"):
        mean_average_precision(codes(3), [0.0] * 3, codes(4), [0.0] * 4)
    x = np.ones((3, 2))
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mean_average_precision(x, [0] * 3, x, [0] * 3, distance="cosine")


def test_prepare_normalises_labels_and_precision() -> None:
    p = prepare(codes(2), np.array([1000, -5]), codes(3), np.array([7, 1000, 1000]), "hamming")
    # joint remapping to 0..C-1 keeps equality: classes sorted -5, 7, 1000
    assert p.query_labels.tolist() == [2, 0] and p.database_labels.tolist() == [1, 2, 2]
    assert p.num_classes == 3 and p.max_distance == 48 and p.query.dtype == np.uint64
    f = prepare(
        np.ones((2, 3), np.float32), [0, 1], np.ones((3, 3), np.float32), [0, 1, 1], "cosine"
    )
    assert f.query.dtype == np.float32
    g = prepare(np.ones((2, 3), np.int64), [0, 1], np.ones((3, 3), np.float32), [0, 1, 1], "cosine")
    assert g.query.dtype == np.float64 and g.database.dtype == np.float64
