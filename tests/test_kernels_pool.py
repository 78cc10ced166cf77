"""Tests of the numba max-pool kernels (numpy_cnn.kernels.pool).

The expected values come from plain loops written here: for each window,
``np.argmax`` of the flattened window, which returns the FIRST maximum in
row-major order, the tie rule PyTorch uses too. Pooling only copies values,
so results must be exact.
"""

import numpy as np
import pytest

from numpy_cnn.kernels import argmax_dtype, maxpool2d_backward, maxpool2d_forward


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def reference_pool(x, kernel, stride, g):
    """(y, argmax, dx) by loops; dx routes g to each window's first max and adds up."""
    kH, kW = _pair(kernel)
    sH, sW = _pair(stride)
    N, C, H, W = x.shape
    HO, WO = (H - kH) // sH + 1, (W - kW) // sW + 1
    y = np.zeros((N, C, HO, WO), x.dtype)
    arg = np.zeros((N, C, HO, WO), np.int64)
    dx = np.zeros(x.shape, x.dtype)
    for n in range(N):
        for c in range(C):
            for oy in range(HO):
                for ox in range(WO):
                    window = x[n, c, oy * sH:oy * sH + kH, ox * sW:ox * sW + kW]
                    a = int(np.argmax(window))
                    y[n, c, oy, ox] = window.flat[a]
                    arg[n, c, oy, ox] = a
                    dx[n, c, oy * sH + a // kW, ox * sW + a % kW] += g[n, c, oy, ox]
    return y, arg, dx


# (N, C, H, W, kernel, stride)
SHAPES = [
    (2, 6, 12, 12, 2, 2),           # pool of the network (its own 2x2 fast path)
    (2, 3, 9, 7, 2, 2),             # 2x2 fast path, odd sizes: last row and column in no window
    (2, 2, 8, 8, (2, 2), (2, 1)),   # 2x2 window, stride not 2: the general path
    (1, 3, 9, 11, 3, 2),            # batch 1, overlapping windows, non-square input
    (2, 2, 7, 9, (2, 3), (1, 2)),   # non-square window, overlapping rows
    (3, 2, 5, 5, 2, 1),             # stride 1: every inner input is in 4 windows
    (2, 2, 7, 8, 3, 3),             # sizes that floor (7 rows -> 2 windows of 3)
    (1, 1, 4, 4, 4, 4),             # one window covering everything
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}C{}_{}x{}_k{}_s{}".format(*s))
def test_forward_and_backward_match_reference(shape, dtype):
    N, C, H, W, kernel, stride = shape
    rng = np.random.default_rng(sum(map(hash, map(str, shape))) % 2**32)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    y, arg = maxpool2d_forward(x, kernel, stride)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = maxpool2d_backward(g, arg, x.shape, kernel, stride)

    y_ref, arg_ref, dx_ref = reference_pool(x, kernel, stride, g)
    assert y.dtype == dtype and dx.dtype == dtype and arg.dtype == np.int8
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2)], ids=["2x2 fast path", "general path"])
def test_ties_go_to_the_first_max_in_row_major_order(kernel, stride):
    # Quantised values make ties common; all-equal windows must pick offset 0.
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, size=(2, 3, 10, 10)).astype(np.float32)
    x[0, 0] = 1.0
    y, arg = maxpool2d_forward(x, kernel, stride)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y_ref, arg_ref, dx_ref = reference_pool(x, kernel, stride, g)
    assert np.all(arg[0, 0] == 0)
    np.testing.assert_array_equal(arg, arg_ref)
    np.testing.assert_allclose(maxpool2d_backward(g, arg, x.shape, kernel, stride), dx_ref, rtol=1e-6)


def test_overlapping_windows_accumulate_gradient():
    # One large value in the middle is the max of all four 2x2 windows (stride 1).
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    y, arg = maxpool2d_forward(x, 2, 1)
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 5.0))
    dx = maxpool2d_backward(np.ones((1, 1, 2, 2)), arg, x.shape, 2, 1)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 4.0
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("kernel", [2, 3], ids=["2x2 fast path", "general path"])
def test_nan_propagates_like_torch(kernel):
    x = np.zeros((1, 1, kernel, 2 * kernel), np.float32)
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 1, 1] = 1.0
    y, arg = maxpool2d_forward(x, kernel, kernel)
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == kernel
    assert y[0, 0, 0, 1] == 0


def test_stride_defaults_to_kernel_and_argmax_dtype_widens_for_big_windows():
    x = np.random.default_rng(8).standard_normal((1, 1, 13, 13))
    y, arg = maxpool2d_forward(x, 2)
    assert y.shape == (1, 1, 6, 6)
    assert argmax_dtype(11) == np.dtype(np.int8) and argmax_dtype(12) == np.dtype(np.int32)
    y, arg = maxpool2d_forward(x, 12, 1)
    assert arg.dtype == np.int32
    g = np.ones(y.shape)
    np.testing.assert_array_equal(maxpool2d_backward(g, arg, x.shape, 12, 1), reference_pool(x, 12, 1, g)[2])


def test_bad_arguments_raise_value_error():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError):
        maxpool2d_forward(x, 5)
    with pytest.raises(ValueError):
        maxpool2d_forward(x, 2, 0)
    with pytest.raises(ValueError):
        maxpool2d_forward(x[0], 2)
    y, arg = maxpool2d_forward(x, 2)
    with pytest.raises(ValueError):
        maxpool2d_backward(np.zeros((1, 1, 3, 3)), arg, x.shape, 2)


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2), ((2, 3), (1, 2))])
def test_matches_torch_float64(kernel, stride):
    torch = pytest.importorskip("torch", reason="torch is the independent oracle; the loop reference covers the rest")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 11, 12))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, kernel, stride)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    y, arg = maxpool2d_forward(x, kernel, stride)
    dx = maxpool2d_backward(g, arg, x.shape, kernel, stride)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2), ((2, 3), (1, 2))], ids=["2x2 fast path", "3x3 s2", "2x3 s1x2"])
def test_fused_relu_equals_relu_then_pool(kernel, stride, dtype):
    # Shifted negative so that many windows are all <= 0 (ReLU cuts them),
    # and quantised so that ties, including ties at 0, are common.
    rng = np.random.default_rng(10)
    x = (np.round(rng.standard_normal((2, 3, 11, 12)) * 2) / 2 - 0.5).astype(dtype)
    y, arg = maxpool2d_forward(x, kernel, stride, relu=True)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = maxpool2d_backward(g, arg, x.shape, kernel, stride)

    r = np.maximum(x, 0)
    y_ref, _, dr = reference_pool(r, kernel, stride, g)
    dx_ref = dr * (x > 0)                      # ReLU's gradient is 0 where x <= 0
    assert np.any(arg == -1) and np.any(arg >= 0)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=0)
