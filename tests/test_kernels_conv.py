"""Tests of the numba direct convolution (numpy_cnn.kernels.conv_direct).

The expected values come from a plain NumPy reference written here: one
einsum per kernel tap over strided slices of the padded input, computed in
float64. Every test checks the forward output AND all three gradients
(dx, dw, db), with stride, padding, odd and non-square sizes, and batch 1.
The second half covers the stacked layout (several small padded images in
one flat row, in chunks per thread): 5-16 px images, padding 0-2 (also
padding >= kernel), chunk bounds inside the batch, one and two threads, and
the layer through Conv2d against Conv2d(method="reference").

Tolerances: float64 results must match to 1e-12 of the output's scale (only
summation order differs). float32 results are compared with the float64
reference computed from the same float32 inputs, to 1e-5 of the scale: a sum
of a few hundred float32 products carries a relative rounding error of
about 1e-6.
"""

import numpy as np
import pytest

from kernel_support import compiled_with
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
    # stride > 1 runs the polyphase split (numpy_cnn.kernels.conv_phases): its cases
    (2, 4, 6, 24, 24, 3, 3, 2, 1),     # the grid's stride-2 layer, small
    (1, 3, 5, 9, 11, 3, 3, 2, 1),      # batch 1, odd F, odd sizes
    (2, 2, 3, 10, 8, 3, 3, 2, 0),      # even sizes, no padding
    (2, 3, 4, 13, 12, 5, 5, 2, 2),     # 5x5, padding 2
    (2, 3, 4, 11, 10, 5, 5, 3, 2),     # stride 3
    (2, 3, 4, 12, 12, 3, 3, 3, 1),     # stride 3 on a 3x3 kernel: 1x1 phases
    (2, 5, 3, 7, 9, 1, 1, 2, 0),       # 1x1 at stride 2
    (2, 3, 4, 9, 10, 2, 4, 2, 1),      # non-square, even kernel
    (2, 3, 4, 6, 6, 6, 6, 3, 2),       # kernel as large as the input
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
def test_result_does_not_depend_on_thread_count(threads, numba_threads):
    numba_threads(threads)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 10, 10))
    w = rng.standard_normal((6, 3, 5, 5))
    g = rng.standard_normal((5, 6, 6, 6))
    dx, dw, db = conv2d_backward(g, x, w)
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


# ----------------------------------------------------------------------------
# Small padded images: several images stacked in one flat row (conv_direct's
# "stacked layout"), chunked per thread
# ----------------------------------------------------------------------------

# (N, C, F, H, W, kH, kW, stride, padding): 5..16 px, padding 0-2, 3x3, 5x5 and
# rectangular kernels, strides 1-2, C_in 1-4, odd F, N = 1 and N odd (not a
# multiple of the thread count or of a chunk).
SMALL_SHAPES = [
    (7, 3, 16, 12, 12, 3, 3, 1, 1),        # the grid's 3->16 layer at 12x12
    (1, 3, 5, 5, 5, 3, 3, 1, 1),           # batch 1, smallest image, odd F
    (5, 1, 3, 16, 16, 5, 5, 1, 2),         # one input channel, padding 2
    (3, 4, 7, 9, 13, 3, 5, 1, (1, 2)),     # rectangular kernel, padding per axis
    (6, 2, 4, 8, 6, 5, 3, 2, (2, 1)),      # stride 2, rectangular kernel
    (5, 3, 9, 11, 11, 3, 3, 2, 1),         # stride 2 (a 3x3s2p1 layer), odd F
    (7, 6, 16, 22, 22, 5, 5, 1, 0),        # the paper's conv2: images side by side, 3 a stripe
    (5, 2, 3, 18, 20, 5, 3, 1, 0),         # unpadded, wider than 16, rectangular: side by side
    (3, 3, 6, 24, 24, 5, 5, 1, 0),         # side by side, chunks of 1 and 2 images (2 threads)
    (9, 2, 2, 6, 14, 3, 3, (1, 2), 1),     # stride per axis, 9 images
    (4, 3, 6, 10, 10, 5, 5, 1, 0),         # unpadded but narrow: stacked too
    (3, 4, 8, 7, 7, 2, 4, 1, 2),           # even kernel, padding larger than half of it
    (2, 3, 4, 5, 8, 5, 5, 1, 1),           # 5x5 kernel on a 5-row image
    (3, 2, 3, 5, 6, 1, 1, 1, 1),           # padding >= kernel: border outputs see only zeros
]


def _small_case(shape, dtype, seed=0):
    N, C, F, H, W, kH, kW, stride, padding = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, kH, kW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b, stride, padding


@pytest.fixture(params=[None, 4096], ids=["chunks_by_rule", "tiny_chunks"])
def chunk_bytes(request, monkeypatch):
    """Run a test with the chunking rule as shipped, and with chunks of one to three images
    (so chunk bounds fall inside the batch and threads get uneven shares)."""
    from numpy_cnn.kernels import conv_direct
    if request.param is not None:
        monkeypatch.setattr(conv_direct, "CHUNK_BYTES", request.param)
    return request.param


@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no_dx"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda s: "N{}C{}F{}_{}x{}_k{}x{}_s{}_p{}".format(*s))
def test_stacked_small_images_match_reference(shape, dtype, need_dx, chunk_bytes):
    x, w, b, stride, padding = _small_case(shape, dtype)
    y = conv2d_forward(x, w, b, stride, padding)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, reference_forward(x64, w64, b.astype(np.float64), stride, padding), RTOL[dtype])

    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(g, x, w, stride, padding, need_input_grad=need_dx)
    dx_ref, dw_ref, db_ref = reference_backward(g.astype(np.float64), x64, w64, stride, padding)
    assert (dx is None) == (not need_dx)
    for got, want in ((dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        if got is not None:
            assert got.dtype == dtype and got.flags.c_contiguous
            assert_close(got, want, RTOL[dtype])


@pytest.mark.parametrize("threads", [1, 2])
def test_stacked_result_does_not_depend_on_threads_or_chunks(threads, monkeypatch, numba_threads):
    numba_threads(threads)
    from numpy_cnn.kernels import conv_direct
    x, w, b, stride, padding = _small_case((7, 3, 5, 12, 12, 3, 3, 1, 1), np.float64)
    g = np.random.default_rng(2).standard_normal((7, 5, 12, 12))
    want = reference_backward(g, x, w, stride, padding)
    for chunk in (1 << 30, 8192, 1):      # all images in one chunk, a few, one per chunk
        monkeypatch.setattr(conv_direct, "CHUNK_BYTES", chunk)
        assert_close(conv2d_forward(x, w, b, stride, padding),
                     reference_forward(x, w, b, stride, padding), 1e-12)
        for got, ref in zip(conv2d_backward(g, x, w, stride, padding), want):
            assert_close(got, ref, 1e-12)


def test_stacked_layout_shares_the_padding_between_rows_and_images():
    """Two 2x3 images, padding 1: rows of pitch W + 1 and images of pitch H + 1 rows,
    each zero row or column serving as the padding on both of its sides."""
    from numpy_cnn.kernels.conv_direct import _stacked
    x = np.arange(1, 13, dtype=np.float64).reshape(2, 1, 2, 3)
    want = np.array([0, 0, 0, 0,
                     0, 1, 2, 3,
                     0, 4, 5, 6,
                     0, 0, 0, 0,
                     0, 7, 8, 9,
                     0, 10, 11, 12,
                     0, 0, 0, 0,
                     0], dtype=np.float64)
    np.testing.assert_array_equal(_stacked(x, 0, 2, 3, 3, 1, 1, 1)[0], want)
    # one unpadded image is its own layout: a view, no copy
    assert np.shares_memory(_stacked(x, 1, 2, 3, 3, 0, 0, 1), x)


def test_side_by_side_chunks_of_one_and_two_images_match_reference(numba_threads):
    """3 images on 2 threads: chunks of 1 and 2 images, laid out 2 a stripe; the lone image
    must be copied into that layout too (its unpadded view has the wrong row pitch)."""
    numba_threads(2)
    from numpy_cnn.kernels.conv_direct import chunk_starts
    x, w, b, stride, padding = _small_case((3, 3, 6, 24, 24, 5, 5, 1, 0), np.float64)
    starts, across = chunk_starts(3, 3, 6, 24, 24, 5, 5, 0, 0, 8)
    assert list(starts) == [0, 1, 3] and across == 2                 # (forward; backward: one image a chunk)
    assert_close(conv2d_forward(x, w, b, stride, padding), reference_forward(x, w, b, stride, padding), 1e-12)
    g = np.random.default_rng(3).standard_normal((3, 6, 20, 20))
    for got, want in zip(conv2d_backward(g, x, w, stride, padding), reference_backward(g, x, w, stride, padding)):
        assert_close(got, want, 1e-12)


def test_stacked_layout_puts_images_side_by_side():
    """Three 2x3 images, two a stripe, no padding, a 2x2 kernel: rows of pitch 2*3; the third
    image starts a second stripe of 2 rows; one zero row after it for the last windows."""
    from numpy_cnn.kernels.conv_direct import _stacked
    x = np.arange(1, 19, dtype=np.float64).reshape(3, 1, 2, 3)
    want = np.array([1, 2, 3, 7, 8, 9,
                     4, 5, 6, 10, 11, 12,
                     13, 14, 15, 0, 0, 0,
                     16, 17, 18, 0, 0, 0], dtype=np.float64)
    np.testing.assert_array_equal(_stacked(x, 0, 3, 2, 2, 0, 0, 2)[0], want)


@pytest.mark.parametrize("N,H,W,ph,pw,threads", [(64, 12, 12, 1, 1, 2), (4, 12, 12, 1, 1, 2), (5, 48, 48, 1, 1, 2),
                                                 (64, 22, 22, 0, 0, 2), (7, 10, 10, 0, 0, 2), (1, 5, 5, 2, 2, 1)])
def test_chunk_starts_cover_the_batch_in_balanced_chunks(N, H, W, ph, pw, threads, numba_threads):
    numba_threads(threads)
    from numpy_cnn.kernels.conv_direct import CHUNK_BYTES, chunk_starts
    from numpy_cnn.kernels.threads import LANES
    starts, across = chunk_starts(N, 3, 16, H, W, 3, 3, ph, pw, 4)
    sizes = np.diff(starts)
    assert starts[0] == 0 and starts[-1] == N and sizes.min() >= 1
    assert sizes.max() - sizes.min() <= 1                      # balanced
    summed, across1 = chunk_starts(N, 3, 16, H, W, 3, 3, ph, pw, 4, summed=True)      # backward's
    summed_sizes = np.diff(summed)
    assert summed[0] == 0 and summed[-1] == N and summed_sizes.max() - summed_sizes.min() <= 1
    assert len(summed_sizes) >= min(N, LANES) and across1 == 1                         # a chunk per lane
    if ph == pw == 0 and W > 16:                               # the paper's layers: one stripe a chunk,
        assert across == sizes.max() == min(-(-1024 // ((H - 2) * W)), -(-N // threads))   # no empty slot
        assert list(summed) == list(range(N + 1))              # backward: one image a chunk
    else:
        assert across == 1
        assert len(sizes) >= min(N, threads)                   # every thread gets work
        for most in (sizes.max(), summed_sizes.max()):
            assert most == 1 or most * (3 + 16 + 2) * (H + ph) * (W + pw) * 4 <= CHUNK_BYTES


@pytest.mark.parametrize("N,H,W,ph,pw", [(64, 12, 12, 1, 1), (4, 12, 12, 1, 1), (7, 10, 10, 0, 0),
                                         (64, 22, 22, 0, 0), (3, 48, 48, 1, 1)])
def test_backward_chunks_do_not_depend_on_the_threads(N, H, W, ph, pw, numba_threads):
    """dw sums over the backward's chunks, so they are a function of the batch alone."""
    from numpy_cnn.kernels.conv_direct import chunk_starts
    cuts = []
    for threads in (1, 2):
        numba_threads(threads)
        cuts.append(chunk_starts(N, 3, 16, H, W, 3, 3, ph, pw, 4, summed=True)[0].tolist())
    assert cuts[0] == cuts[1]


@pytest.mark.parametrize("padding", [0, 1])
def test_empty_batch_gives_empty_outputs_and_zero_weight_grads(padding):
    x = np.zeros((0, 3, 12, 12))
    w = np.ones((4, 3, 3, 3))
    y = conv2d_forward(x, w, np.zeros(4), 1, padding)
    assert y.shape == (0, 4, 10 + 2 * padding, 10 + 2 * padding)
    dx, dw, db = conv2d_backward(y, x, w, 1, padding)
    assert dx.shape == x.shape and not dw.any() and not db.any()


@pytest.mark.parametrize("need_dx", [True, False])
def test_direct_layer_matches_reference_layer_on_small_padded_images(need_dx):
    """Through Conv2d, as the network runs it: method="direct" equals method="reference"."""
    from numpy_cnn.nn.layers import Conv2d
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 3, 9, 9))
    layers = [Conv2d(3, 5, 3, 1, 1, rng=0, dtype=np.float64, method=m, needs_input_grad=need_dx)
              for m in ("direct", "reference")]
    ys = [layer.forward(x) for layer in layers]
    assert_close(ys[0], ys[1], 1e-12)
    g = rng.standard_normal(ys[0].shape)
    dxs = [layer.backward(g) for layer in layers]
    if need_dx:
        assert_close(dxs[0], dxs[1], 1e-12)
    else:
        assert dxs[0] is None and dxs[1] is None
    for a, b in ((layers[0].weight.grad, layers[1].weight.grad), (layers[0].bias.grad, layers[1].bias.grad)):
        assert_close(a, b, 1e-12)


# ----------------------------------------------------------------------------
# Five taps x four channels per pass (the AVX-512 targets' pass), on any host
# ----------------------------------------------------------------------------

def _compiled_with(name, **changed):
    """conv_direct's kernel ``name`` compiled with the globals ``changed`` (FOUR_BY_FIVE, or a kernel it calls)."""
    from numpy_cnn.kernels import conv_direct
    return compiled_with(getattr(conv_direct, name), **changed)


def _with_four_by_five(name, four_by_five):
    """conv_direct's kernel ``name`` compiled with FOUR_BY_FIVE as given, whatever this host's CPU."""
    return _compiled_with(name, FOUR_BY_FIVE=four_by_five)


# (output channels (even), input channels, kH, kW, row_len, n_out, zeros at each end of the input: dx's trimming)
CORRELATE_CASES = [
    (16, 6, 5, 5, 22, 17 * 22 + 18, 0),      # the paper's conv2 forward: four groups of four
    (6, 16, 5, 5, 26, 22 * 26 + 22, 108),    # conv2's dx (P0 = 4*26 + 4 zeros): a group of four and a pair
    (10, 3, 3, 10, 31, 201, 40),             # kW = 10: two five-tap passes; two groups and a pair
    (2, 5, 5, 5, 12, 7, 0),                  # no group of four; n_out shorter than one vector
    (4, 2, 2, 5, 9, 16 * 5 + 15, 13),        # n_out = 95: a multiple of 16 plus a remainder
    (8, 3, 5, 7, 15, 100, 30),               # kW = 7: taps left over, so the pairs' passes as before
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CORRELATE_CASES, ids=lambda c: "F{}C{}k{}x{}_R{}_L{}_z{}".format(*c))
def test_five_taps_four_channels_gives_the_two_channel_bits(case, dtype):
    """The four-channel five-tap pass adds each sum's terms in the two-channel pass's order:
    _correlate_flat gives the same bits either way, for whole rows (the forward) and for
    passes trimmed to the non-zero part of the input (dx's nz_lo, nz_hi)."""
    F, C, kH, kW, R, n_out, zeros = case
    rng = np.random.default_rng(sum(case))
    length = (kH - 1) * R + (kW - 1) + n_out
    x = rng.standard_normal((C, length)).astype(dtype)
    nz_lo, nz_hi = zeros, length - zeros
    x[:, :nz_lo] = 0                                       # as dx's input: grad_y with a border of zeros
    x[:, nz_hi:] = 0
    w = rng.standard_normal((F, C, kH, kW)).astype(dtype)
    start = rng.standard_normal((F, n_out + 5)).astype(dtype)   # the sums start from the bias (forward)
    got = {}
    for four in (False, True):
        acc = start.copy()
        _with_four_by_five("_correlate_flat", four)(x, w, R, n_out, acc, nz_lo, nz_hi)
        got[four] = acc
    bits = np.uint32 if dtype == np.float32 else np.uint64
    assert np.array_equal(got[True].view(bits), got[False].view(bits))
    assert not np.array_equal(got[True], start)            # (the passes did run)
    # and it is the correlation: acc[o, j] = start + sum_{i, ky, kx} w[o, i, ky, kx] * x[i, ky*R + kx + j]
    want = start[:, :n_out].astype(np.float64)
    for ky in range(kH):
        for kx in range(kW):
            want += w[:, :, ky, kx].astype(np.float64) @ x[:, ky * R + kx:ky * R + kx + n_out].astype(np.float64)
    assert_close(got[True][:, :n_out], want, RTOL[dtype])
    np.testing.assert_array_equal(got[True][:, n_out:], start[:, n_out:])     # nothing past n_out


def test_five_taps_four_channels_is_the_avx512_choice():
    """This host's kernels take the four-channel pass exactly when they are compiled with 32 vector registers."""
    from numpy_cnn.kernels import conv_direct
    from numpy_cnn.kernels._cpu import vector_registers
    assert conv_direct.FOUR_BY_FIVE == (vector_registers() == 32)


# ----------------------------------------------------------------------------
# Five taps x four channels per dw pass (AVX-512 targets), on any host
# ----------------------------------------------------------------------------

# (output channels (even), input channels, kH, kW, row_len, n_out, g_start)
WEIGHT_GRAD_CASES = [
    (16, 6, 5, 5, 22, 17 * 22 + 18, 0),      # the paper's conv2: four groups of four
    (6, 3, 5, 5, 48, 43 * 48 + 44, 196),     # conv1 (P0 = 4*48 + 4 in front of g): a group of four and a pair
    (10, 3, 3, 10, 31, 201, 64),             # kW = 10: two five-tap passes; two groups and a pair
    (2, 5, 5, 5, 12, 7, 0),                  # no group of four; n_out shorter than one vector
    (4, 2, 2, 5, 9, 16 * 5 + 15, 13),        # n_out = 95: a multiple of 16, then 4s, then single j
    (8, 3, 5, 8, 15, 100, 30),               # kW = 8: five taps x four, then three taps x four
    (8, 2, 3, 7, 15, 3, 5),                  # kW = 7: two taps left one at a time; n_out = 3
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", WEIGHT_GRAD_CASES, ids=lambda c: "F{}C{}k{}x{}_R{}_L{}_g{}".format(*c))
def test_weight_grad_five_taps_four_channels_matches_reference(case, dtype):
    """_weight_grad_flat with five taps x four channels per pass (the AVX-512 targets' path) is
    the dot products dw[o, i, ky, kx] += sum_j g[o, g_start + j] * x[i, ky*R + kx + j], and adds
    onto what dw held, as the two-channel path does.

    Each dot product is one loop over j on either path, which LLVM splits into
    vector lanes the same way, so the two agree to the last bit: on this host,
    and as vectorised for Intel's AVX-512 cores (tests/test_kernels_cpu.py runs
    that code's arithmetic here)."""
    F, C, kH, kW, R, n_out, g_start = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((C, (kH - 1) * R + (kW - 1) + n_out)).astype(dtype)
    g = rng.standard_normal((F, g_start + n_out + 7)).astype(dtype)
    start = rng.standard_normal((F, C, kH, kW)).astype(dtype)       # a lane's dw after earlier chunks
    got = {}
    for four in (False, True):
        dw = start.copy()
        _with_four_by_five("_weight_grad_flat", four)(g, g_start, x, R, n_out, dw)
        got[four] = dw
    want = start.astype(np.float64)
    for ky in range(kH):
        for kx in range(kW):
            want[:, :, ky, kx] += (g[:, g_start:g_start + n_out].astype(np.float64)
                                   @ x[:, ky * R + kx:ky * R + kx + n_out].astype(np.float64).T)
    for dw in got.values():
        assert_close(dw, want, RTOL[dtype])
    bits = np.uint32 if dtype == np.float32 else np.uint64
    assert np.array_equal(got[True].view(bits), got[False].view(bits))


def _backward_with_four_by_five():
    """conv_direct._backward_stacked calling the AVX-512 targets' _weight_grad_flat (a copy, not cached)."""
    return _compiled_with("_backward_stacked", _weight_grad_flat=_with_four_by_five("_weight_grad_flat", True))


# (N, C, F, H, W, padding), 5x5 kernels
BACKWARD_CASES = [(9, 6, 16, 22, 22, 0), (5, 3, 6, 48, 48, 0), (10, 3, 8, 12, 12, 2)]


@pytest.mark.parametrize("case", BACKWARD_CASES, ids=lambda c: "N{}C{}F{}_{}x{}_p{}".format(*c))
def test_weight_grad_four_channels_does_not_depend_on_threads(case, monkeypatch, numba_threads):
    """The whole backward with the AVX-512 targets' dw pass gives the same dw on one and two
    threads, and here the two-channel pass's bits: the pass changes only the loop inside one
    chunk's dot products, not the chunks, lanes or the order they are added in. The paper's
    conv2 and conv1 (wide images, one a chunk) and small padded images stacked."""
    from numpy_cnn.kernels import conv_direct
    N, C, F, H, W, p = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((F, C, 5, 5)).astype(np.float32)
    g = rng.standard_normal((N, F, H + 2 * p - 4, W + 2 * p - 4)).astype(np.float32)
    numba_threads(1)
    pairs = conv2d_backward(g, x, w, 1, p)[1]
    monkeypatch.setattr(conv_direct, "_backward_stacked", _backward_with_four_by_five())
    for threads in (1, 2):
        numba_threads(threads)
        _, dw, _ = conv2d_backward(g, x, w, 1, p)
        assert np.array_equal(dw.view(np.uint32), pairs.view(np.uint32)), threads
