"""Tests of the chunked channels-last im2col + GEMM kernels (numpy_cnn.kernels.conv_gemm).

The oracle is the readable NumPy path, ``Conv2d(method="reference")`` (im2col
by strided slices, one matmul), run in float64 on the same inputs. Every test
checks the forward output and all three gradients (dx, dw, db).

Tolerances, relative to the largest value of the expected array: float64
1e-12 (only the order of the sums differs); float32 1e-5 (a sum of up to a
few hundred float32 products carries a relative rounding error of ~1e-6).
"""

import numpy as np
import pytest

from numpy_cnn.nn.gradcheck import TOLERANCE, check_layer
from numpy_cnn.kernels import conv_gemm, gemm_conv_backward, gemm_conv_forward
from numpy_cnn.kernels import threads as threads_module
from numpy_cnn.nn.layers import Conv2d

RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# (N, C, F, H, W, kernel, stride, padding)
SHAPES = [
    (3, 4, 5, 9, 11, 3, 2, 1),        # the grid's stride-2 layer, small and odd-sized
    (2, 6, 7, 12, 12, 1, 1, 0),       # 1x1 stride 1: the NCHW path, no unfold
    (2, 3, 4, 7, 8, 1, 2, 0),         # 1x1 stride 2: unfolded like any kernel
    (2, 3, 4, 5, 5, 1, 1, 1),         # 1x1 with padding: border outputs are the bias
    (2, 2, 3, 10, 9, 3, 3, 2),        # stride 3, padding 2
    (1, 3, 2, 8, 6, (3, 5), 2, 1),    # rectangular kernel, batch 1
    (2, 1, 3, 11, 7, (5, 3), 1, 0),   # one input channel
    (2, 5, 1, 9, 9, 5, 2, 2),         # one output channel, 5x5
    (3, 2, 3, 6, 7, 3, 1, 0),         # 3x3 stride 1, no padding
    (2, 3, 2, 5, 5, 5, 3, 2),         # 5x5 at stride 3 on 9x9 padded: 2 outputs a side, a padded row unread
    (1, 2, 2, 4, 4, 3, 2, 0),         # a single output
    (9, 32, 8, 24, 24, 3, 2, 1),      # 9 images of 144 x 288 cols: two chunks at the default size
]


def _ids(shape):
    n, c, f, h, w, k, s, p = shape
    k = f"{k[0]}x{k[1]}" if isinstance(k, tuple) else f"{k}x{k}"
    return f"N{n}C{c}F{f}_{h}x{w}_k{k}s{s}p{p}"


def _data(shape, dtype):
    """x, the float64 reference layer, its output y, an upstream gradient g, and its grads."""
    n, c, f, h, w, k, s, p = shape
    rng = np.random.default_rng(sum(map(hash, map(str, shape))) % 2**32)
    ref = Conv2d(c, f, k, s, p, rng=rng, dtype=np.float64, method="reference")
    ref.bias.data = rng.standard_normal(f)               # the default init is tiny: make b count
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = ref.forward(x.astype(np.float64))
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = ref.backward(g.astype(np.float64))
    return x, ref, y, g, (dx, ref.weight.grad, ref.bias.grad)


def assert_close(actual, expected, rtol):
    """max |actual - expected| <= rtol * max(1, max |expected|)."""
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:g} * {scale:.3g}"


def _check(shape, dtype, need_input_grad=True):
    x, ref, y, g, want = _data(shape, dtype)
    s, p = ref.stride, ref.padding
    w, b = ref.weight.data.astype(dtype), ref.bias.data.astype(dtype)
    got_y = gemm_conv_forward(x, w, b, s, p)
    assert got_y.dtype == dtype and got_y.flags.c_contiguous
    assert_close(got_y, y, RTOL[dtype])
    got = gemm_conv_backward(g, x, w, s, p, need_input_grad)
    if not need_input_grad:
        assert got[0] is None
        got, want = got[1:], want[1:]
    for name, a, e in zip(("dx", "dw", "db")[-len(got):], got, want):
        assert a.dtype == dtype and a.flags.c_contiguous, name
        assert_close(a, e, RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_forward_and_backward_match_reference(shape, dtype):
    _check(shape, dtype)


def test_the_default_chunk_holds_fewer_images_than_the_last_shape():
    n, c, f, h, w, k, s, p = SHAPES[-1]
    per_image = ((h + 2 * p - k) // s + 1) * ((w + 2 * p - k) // s + 1) * k * k * c
    assert conv_gemm.COLS_PER_CHUNK // per_image < n


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[1]], ids=_ids)
def test_input_grad_skipped_returns_none_and_same_weight_grads(shape):
    _check(shape, np.float32, need_input_grad=False)
    x, ref, _, g, _ = _data(shape, np.float32)
    w = ref.weight.data.astype(np.float32)
    _, dw, db = gemm_conv_backward(g, x, w, ref.stride, ref.padding, True)
    _, dw2, db2 = gemm_conv_backward(g, x, w, ref.stride, ref.padding, False)
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cols_per_chunk", [1, 500, 1 << 30])
@pytest.mark.parametrize("shape", [(7, 3, 4, 6, 5, 3, 2, 1), (7, 5, 3, 4, 6, 1, 1, 0)], ids=_ids)
def test_chunks_and_threads_do_not_change_the_result(shape, threads, cols_per_chunk, monkeypatch,
                                                     numba_threads):
    """One image per chunk, chunks that do not divide a thread's share, one chunk for all;
    one thread or two, each summing its own dW and db: the same numbers."""
    numba_threads(threads)
    monkeypatch.setattr(conv_gemm, "COLS_PER_CHUNK", cols_per_chunk)
    monkeypatch.setattr(threads_module, "WORK_PER_THREAD", 1)     # a thread even for this small call
    _check(shape, np.float64)


def test_non_contiguous_input_and_gradient_are_accepted():
    x, ref, y, g, want = _data((2, 3, 4, 9, 8, 3, 2, 1), np.float64)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)   # NHWC memory, NCHW view
    g_strided = np.repeat(g, 2, axis=3)[..., ::2]
    assert not x_nhwc.flags.c_contiguous and not g_strided.flags.c_contiguous
    w, b = ref.weight.data, ref.bias.data
    assert_close(gemm_conv_forward(x_nhwc, w, b, 2, 1), y, 1e-12)
    for a, e in zip(gemm_conv_backward(g_strided, x_nhwc, w, 2, 1), want):
        assert_close(a, e, 1e-12)


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (1, 1, 0)])
def test_empty_batch(kernel, stride, padding):
    x = np.zeros((0, 3, 6, 6))
    w, b = np.ones((4, 3, kernel, kernel)), np.ones(4)
    y = gemm_conv_forward(x, w, b, stride, padding)
    dx, dw, db = gemm_conv_backward(np.zeros(y.shape), x, w, stride, padding)
    assert y.shape[0] == 0 and dx.shape == x.shape
    assert dw.shape == w.shape and not dw.any() and db.shape == (4,) and not db.any()


def test_calls_do_not_accumulate():
    """The per-thread buffers are reused from chunk to chunk, never from call to call."""
    x, ref, y, g, want = _data((5, 3, 4, 8, 8, 3, 2, 1), np.float64)
    w, b = ref.weight.data, ref.bias.data
    for _ in range(2):
        assert_close(gemm_conv_forward(x, w, b, 2, 1), y, 1e-12)
        for a, e in zip(gemm_conv_backward(g, x, w, 2, 1), want):
            assert_close(a, e, 1e-12)


# -- the layer: Conv2d(method="im2col") --------------------------------------------

@pytest.mark.parametrize("c,f,k,s,p", [(3, 4, 3, 2, 1), (4, 5, 1, 1, 0), (2, 3, (2, 3), 3, 2)])
def test_layer_gradients_by_finite_differences(c, f, k, s, p, rng):
    layer = Conv2d(c, f, k, s, p, rng=rng, dtype=np.float64, method="im2col")
    errors = check_layer(layer, rng.standard_normal((2, c, 7, 6)), rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("needs_input_grad", [True, False])
def test_layer_matches_reference_layer(dtype, needs_input_grad, rng):
    x = rng.standard_normal((5, 8, 11, 10)).astype(dtype)
    ref, fast = (Conv2d(8, 6, 3, 2, 1, rng=0, dtype=dtype, method=m, needs_input_grad=needs_input_grad)
                 for m in ("reference", "im2col"))
    y = ref.forward(x)
    assert_close(fast.forward(x), y, RTOL[dtype])
    g = rng.standard_normal(y.shape).astype(dtype)
    dx, got = ref.backward(g), fast.backward(g)
    if needs_input_grad:
        assert_close(got, dx, RTOL[dtype])
    else:
        assert got is None
    assert_close(fast.weight.grad, ref.weight.grad, RTOL[dtype])
    assert_close(fast.bias.grad, ref.bias.grad, RTOL[dtype])
