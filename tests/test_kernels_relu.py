"""ReLU's numba path (numpy_cnn.kernels.relu) equals the NumPy reference exactly.

ReLU only copies or zeroes values, so the two must agree bit for bit, also
at exact zeros (gradient 0, as PyTorch) and for NaN (it propagates forward).
"""

import numpy as np
import pytest

from numpy_cnn.nn.layers import ReLU


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# (64, 6, 44, 44): enough elements for the loops to run on numba's threads (relu.ELEMENTS_PER_THREAD)
@pytest.mark.parametrize("shape", [(4, 6, 44, 44), (3, 5), (1,), (2, 0, 3), (64, 6, 44, 44)])
def test_numba_relu_equals_reference(dtype, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[::7] = 0.0                      # exact zeros: the kink, gradient 0
    if x.size > 3:
        x.flat[-3] = np.nan                # NaN propagates forward, gets no gradient (last thread's share)
    g = rng.standard_normal(shape).astype(dtype)
    ref, fast = ReLU(method="reference"), ReLU()
    y_ref, y_fast = ref.forward(x), fast.forward(x)
    assert y_fast.dtype == dtype and y_fast.shape == shape
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(fast.backward(g), ref.backward(g))


def test_numba_relu_nan_and_strided_input():
    x = np.array([[1.0, -2.0, np.nan, 0.0], [3.0, -0.5, 2.0, -1.0]], np.float32)
    view = x[:, ::2]                       # not contiguous
    ref, fast = ReLU(method="reference"), ReLU()
    np.testing.assert_array_equal(fast.forward(view), ref.forward(view))   # NaN stays NaN in both
    g = np.ones_like(view)
    np.testing.assert_array_equal(fast.backward(g), ref.backward(g))


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        ReLU(method="fast")
