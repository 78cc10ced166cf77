"""Tests of the numba direct convolution (numpy_cnn.kernels.conv_direct).

The expected values come from a plain NumPy reference written here: one
einsum per kernel tap over strided slices of the padded input, computed in
float64. Every test checks the forward output AND all three gradients
(dx, dw, db), with stride, padding, odd and non-square sizes, and batch 1.

Tolerances: float64 results must match to 1e-12 of the output's scale (only
summation order differs). float32 results are compared with the float64
reference computed from the same float32 inputs, to 1e-5 of the scale: a sum
of a few hundred float32 products carries a relative rounding error of
about 1e-6.
"""

import numpy as np
import pytest

from numpy_cnn.kernels import conv2d_backward, conv2d_forward


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def reference_forward(x, w, b, stride, padding):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    F, C, kH, kW = w.shape
    HO = (xp.shape[2] - kH) // sh + 1
    WO = (xp.shape[3] - kW) // sw + 1
    y = np.zeros((x.shape[0], F, HO, WO)) + b[None, :, None, None]
    for ky in range(kH):
        for kx in range(kW):
            patch = xp[:, :, ky:ky + sh * (HO - 1) + 1:sh, kx:kx + sw * (WO - 1) + 1:sw]
            y += np.einsum("nchw,fc->nfhw", patch, w[:, :, ky, kx])
    return y


def reference_backward(g, x, w, stride, padding):
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    F, C, kH, kW = w.shape
    HO, WO = g.shape[2], g.shape[3]
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    for ky in range(kH):
        for kx in range(kW):
            rows = slice(ky, ky + sh * (HO - 1) + 1, sh)
            cols = slice(kx, kx + sw * (WO - 1) + 1, sw)
            dw[:, :, ky, kx] = np.einsum("nfhw,nchw->fc", g, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", g, w[:, :, ky, kx])
    dx = dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return dx, dw, g.sum(axis=(0, 2, 3))


def assert_close(actual, expected, rtol):
    """max |actual - expected| <= rtol * max(1, max |expected|)."""
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:g} * {scale:.3g}"


RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# (N, C, F, H, W, kH, kW, stride, padding)
SHAPES = [
    (2, 3, 6, 16, 16, 5, 5, 1, 0),         # conv1 of the network, small
    (3, 6, 16, 12, 12, 5, 5, 1, 0),        # conv2 of the network, small
    (1, 3, 5, 9, 11, 3, 3, 1, 1),          # batch 1, odd F, non-square input
    (2, 2, 3, 10, 7, 3, 7, 1, 2),          # non-square kernel wider than 5, padding 2
    (2, 4, 4, 11, 9, 5, 5, 2, 0),          # stride 2, sizes that floor
    (1, 3, 2, 8, 10, 4, 2, 2, 1),          # stride 2, padding 1, even kernel
    (2, 1, 1, 7, 8, 1, 1, 1, 0),           # 1x1 kernel, one channel in and out
    (2, 5, 3, 9, 9, 3, 5, (2, 1), (1, 2)), # different strides and paddings per axis
    (3, 3, 4, 6, 6, 6, 6, 3, 2),           # kernel as big as the input, stride 3
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}C{}F{}_{}x{}_k{}x{}_s{}_p{}".format(*s))
def test_forward_and_backward_match_reference(shape, dtype):
    N, C, F, H, W, kH, kW, stride, padding = shape
    rng = np.random.default_rng(hash(shape) % 2**32)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, kH, kW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)

    y = conv2d_forward(x, w, b, stride, padding)
    y_ref = reference_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, padding)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, y_ref, RTOL[dtype])

    g = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(g, x, w, stride, padding)
    refs = reference_backward(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), stride, padding)
    for got, want in zip((dx, dw, db), refs):
        assert got.dtype == dtype and got.flags.c_contiguous
        assert_close(got, want, RTOL[dtype])


def test_input_grad_skipped_returns_none_and_same_weight_grads():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 14, 14)).astype(np.float32)
    w = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    g = rng.standard_normal((4, 6, 10, 10)).astype(np.float32)
    dx, dw, db = conv2d_backward(g, x, w, need_input_grad=True)
    none, dw2, db2 = conv2d_backward(g, x, w, need_input_grad=False)
    assert dx is not None and none is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_gradients_do_not_accumulate_across_calls():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 8, 8))
    w = rng.standard_normal((3, 2, 3, 3))
    g = rng.standard_normal((2, 3, 6, 6))
    first = conv2d_backward(g, x, w)
    second = conv2d_backward(g, x, w)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_non_contiguous_inputs_are_accepted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 9, 3)).transpose(0, 3, 1, 2)   # NHWC memory, NCHW view
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    assert_close(conv2d_forward(x, w, b, 1, 1), reference_forward(x, w, b, 1, 1), 1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_result_does_not_depend_on_thread_count(threads):
    numba = pytest.importorskip("numba")
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("machine has fewer threads")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 10, 10))
    w = rng.standard_normal((6, 3, 5, 5))
    g = rng.standard_normal((5, 6, 6, 6))
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        dx, dw, db = conv2d_backward(g, x, w)
    finally:
        numba.set_num_threads(old)
    for got, want in zip((dx, dw, db), reference_backward(g, x, w, 1, 0)):
        assert_close(got, want, 1e-12)


@pytest.mark.parametrize("bad", ["channels", "dtype", "kernel_too_big", "stride0", "grad_shape"])
def test_bad_arguments_raise_value_error(bad):
    x = np.zeros((1, 3, 6, 6), np.float32)
    w = np.zeros((2, 3, 3, 3), np.float32)
    b = np.zeros(2, np.float32)
    with pytest.raises(ValueError):
        if bad == "channels":
            conv2d_forward(x, w[:, :2], b)
        elif bad == "dtype":
            conv2d_forward(x, w.astype(np.float64), b)
        elif bad == "kernel_too_big":
            conv2d_forward(x, np.zeros((2, 3, 7, 7), np.float32), b)
        elif bad == "stride0":
            conv2d_forward(x, w, b, stride=0)
        else:
            conv2d_backward(np.zeros((1, 2, 3, 3), np.float32), x, w)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2), ((2, 1), (0, 1))])
def test_matches_torch_float64(stride, padding):
    torch = pytest.importorskip("torch", reason="torch is the independent oracle; the NumPy reference covers the rest")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 13, 11))
    w = rng.standard_normal((4, 3, 5, 3))
    b = rng.standard_normal(4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))

    y = conv2d_forward(x, w, b, stride, padding)
    dx, dw, db = conv2d_backward(g, x, w, stride, padding)
    for got, want in ((y, ty), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=0, atol=1e-10)
