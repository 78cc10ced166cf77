"""The readable NumPy Winograd (numpy_cnn.nn.winograd) equals the numba kernel and the im2col reference.

Random shapes with odd output sizes (a half-empty last tile), padding 0, 1
and 2, batch 1, and 1 to 16 channels; forward and all three gradients.

Tolerances, as a fraction of the expected array's scale (max(1, max |value|)):

* float64, 1e-12: every path computes the same sums; only their order and
  the transforms' additions round differently, at ~1e-16 each.
* float32, 1e-5: the NumPy and numba Winograd each add and subtract up to 9
  inputs per transform and sum up to 16 channels (or every tile, for dw) in
  their own order, in float32 (~6e-8 per operation); 1e-5 leaves room for a
  few hundred such roundings and is still far below any real mistake (a
  wrong transform entry or a tile off by one is wrong by O(1)). The float32
  results are compared with the numba kernel in float32, and with the im2col
  reference in float64 on the same float32 inputs. (Measured worst: 5e-7
  in float32, 1e-15 in float64.)
"""

import numpy as np
import pytest

from numpy_cnn.kernels import winograd_backward as numba_backward
from numpy_cnn.kernels import winograd_forward as numba_forward
from numpy_cnn.nn import im2col
from numpy_cnn.nn.winograd import A_T, B_T, G, winograd_backward, winograd_forward

RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# (N, C, F, H, W, padding)
SHAPES = [
    (1, 1, 1, 3, 3, 0),        # a single output, batch 1
    (2, 3, 5, 7, 9, 1),        # odd output width (9): a half-empty tile per row
    (1, 4, 3, 6, 6, 0),        # even output (4x4): whole tiles only
    (3, 2, 4, 5, 8, 2),        # padding 2, odd output height (7)
    (2, 16, 8, 12, 11, 1),     # 16 channels in, odd width
    (1, 8, 6, 4, 13, 2),       # wide and flat, padding 2
]
# ... and a few more drawn at random (seeded, so a failure can be rerun).
_draw = np.random.default_rng(18)
SHAPES += [(int(_draw.integers(1, 4)), int(_draw.choice([1, 2, 3, 5, 8, 16])), int(_draw.integers(1, 7)),
            int(_draw.integers(3, 14)), int(_draw.integers(3, 14)), int(_draw.integers(0, 3))) for _ in range(6)]


def _data(shape, dtype):
    n, c, f, h, w, p = shape
    rng = np.random.default_rng(list(shape))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype)
    grad = rng.standard_normal((n, f, h + 2 * p - 2, w + 2 * p - 2)).astype(dtype)
    return x, weight, bias, grad, p


def _close(actual, expected, rtol, what):
    assert actual.shape == expected.shape, what
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= rtol * scale, f"{what}: max error {err:.3g} > {rtol:g} * {scale:.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}C{}F{}_{}x{}_p{}".format(*s))
def test_equals_the_numba_kernel_and_the_im2col_reference(shape, dtype):
    x, w, b, g, p = _data(shape, dtype)
    rtol = RTOL[dtype]
    y = winograd_forward(x, w, b, p)
    assert y.dtype == dtype
    _close(y, numba_forward(x, w, b, p), rtol, "y vs numba")
    f64 = [a.astype(np.float64) for a in (x, w, b, g)]
    y_ref, cache = im2col.conv2d_forward(*f64[:3], 1, p)
    _close(y, y_ref, rtol, "y vs im2col")

    grads = winograd_backward(g, x, w, p)
    from_numba = numba_backward(g, x, w, p)
    from_im2col = im2col.conv2d_backward(f64[3], cache, f64[1], 1, p)
    for name, got, fast, ref in zip(("dx", "dw", "db"), grads, from_numba, from_im2col):
        assert got.dtype == dtype, name
        _close(got, fast, rtol, f"{name} vs numba")
        _close(got, ref, rtol, f"{name} vs im2col")


def test_no_input_grad_gives_none_and_the_same_weight_grads():
    x, w, _, g, p = _data((2, 3, 4, 7, 7, 1), np.float64)
    dx, dw, db = winograd_backward(g, x, w, p)
    none, dw2, db2 = winograd_backward(g, x, w, p, needs_input_grad=False)
    assert dx is not None and none is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_the_transforms_give_a_1d_convolution():
    """The matrices alone, on one row: A^T [(G g) * (B^T d)] is the two outputs of g sliding over d."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    np.testing.assert_allclose(A_T @ ((G @ g) * (B_T @ d)), [d[0:3] @ g, d[1:4] @ g], rtol=1e-14)
