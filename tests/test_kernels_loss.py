"""The numba cross-entropy (numpy_cnn.kernels.loss) equals the NumPy reference to rounding.

float64 to 1e-12 (the formulas are the same, only the order of rounding
differs), float32 to 1e-6 relative; plus the edge cases the reference
handles: huge logits (log-sum-exp), NaN, and bad targets with one-line errors.
"""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.loss import cross_entropy


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("n, k", [(4, 7), (1, 2), (135, 7), (3, 1)])
def test_numba_loss_equals_reference(dtype, tol, n, k):
    rng = np.random.default_rng(n * k)
    z = (3 * rng.standard_normal((n, k))).astype(dtype)
    t = rng.integers(0, k, n)
    loss_ref, g_ref = cross_entropy(z, t, method="reference")
    loss, g = cross_entropy(z, t)
    assert g.dtype == dtype and g.shape == (n, k)
    assert loss == pytest.approx(loss_ref, rel=tol, abs=tol)
    np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)


def test_numba_loss_large_logits_and_nan():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], np.float32)   # exp(1000) would overflow
    t = np.array([0, 2])
    loss, g = cross_entropy(z, t)
    ref_loss, ref_g = cross_entropy(z, t, method="reference")
    assert np.isfinite(loss) and loss == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(g, ref_g, atol=1e-7)
    z[1, 1] = np.nan
    assert np.isnan(cross_entropy(z, t)[0]) and np.isnan(cross_entropy(z, t, method="reference")[0])


@pytest.mark.parametrize("method", ["numba", "reference"])
@pytest.mark.parametrize("target", [[0, 7], [-1, 0], [0.0, 1.0]])
def test_bad_targets_give_one_line_errors(method, target):
    with pytest.raises(UserError, match=r"class indices in \[0, 7\)"):
        cross_entropy(np.zeros((2, 7), np.float32), np.array(target), method=method)


def test_unknown_method():
    with pytest.raises(UserError, match="method"):
        cross_entropy(np.zeros((1, 2)), np.array([0]), method="fast")
