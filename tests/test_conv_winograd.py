"""Tests of the Winograd F(2x2, 3x3) kernels and of how Conv2d picks a method.

The oracle is the plain NumPy reference of tests/test_kernels_conv.py (one
einsum per kernel tap, float64), plus finite differences and PyTorch for the
layer. Tolerances as there: 1e-12 of the output's scale in float64, 1e-5 in
float32 (Winograd adds and subtracts up to 9 inputs per transform, which
keeps float32 within a few ulp of the largest term).
"""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.gradcheck import TOLERANCE, check_layer
from numpy_cnn.kernels import threads as threads_module
from numpy_cnn.kernels import winograd
from numpy_cnn.kernels import winograd_backward, winograd_forward
from numpy_cnn.nn.layers import Conv2d
from numpy_cnn.kernels.choice import choose_method
from test_kernels_conv import RTOL, assert_close, reference_backward, reference_forward

# (N, C, F, H, W, padding)
SHAPES = [
    (2, 3, 5, 7, 9, 1),        # odd output width: a half-empty tile per row
    (1, 4, 3, 6, 6, 0),        # batch 1, no padding
    (3, 2, 4, 5, 8, 2),        # padding 2, non-square input
    (2, 16, 32, 12, 12, 1),    # the grid's 12x12 layers, small
    (1, 1, 1, 3, 3, 0),        # a single output
    (2, 3, 2, 4, 11, 1),       # wide and flat
]


def _data(shape, dtype):
    N, C, F, H, W, p = shape
    rng = np.random.default_rng(hash(shape) % 2**32)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    g = rng.standard_normal((N, F, H + 2 * p - 2, W + 2 * p - 2)).astype(dtype)
    return x, w, b, g, p


def _check_against_reference(x, w, b, g, p, rtol):
    f64 = [a.astype(np.float64) for a in (x, w, b, g)]
    y = winograd_forward(x, w, b, p)
    assert y.dtype == x.dtype and y.flags.c_contiguous
    assert_close(y, reference_forward(*f64[:3], 1, p), rtol)
    dx, dw, db = winograd_backward(g, x, w, p)
    want = reference_backward(f64[3], f64[0], f64[1], 1, p)
    for got, ref in zip((dx, dw, db), want):
        assert got.dtype == x.dtype and got.flags.c_contiguous
        assert_close(got, ref, rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}C{}F{}_{}x{}_p{}".format(*s))
def test_forward_and_backward_match_reference(shape, dtype):
    _check_against_reference(*_data(shape, dtype), RTOL[dtype])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk_bytes", [1, 2 * 9 * 16 * 7 * 8, 10**9])   # 1, 2 or all 7 images
def test_chunks_and_threads_do_not_change_the_result(threads, chunk_bytes, monkeypatch, numba_threads):
    """Chunks of one image, of two (9 tiles of 16 * (3 + 4) float64 each), which do not divide
    the batch, one chunk for all; one thread or two, each summing its own dU: the same numbers."""
    numba_threads(threads)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(threads_module, "WORK_PER_THREAD", 1)     # a thread even for this small call
    _check_against_reference(*_data((7, 3, 4, 6, 5, 1), np.float64), 1e-12)


def test_scratch_reused_across_shapes_leaves_no_trace():
    """Scratch buffers live on between calls: after a large call filled them
    with other numbers, a smaller, differently padded one must still see
    zeros in its border and the right sums (float64, so garbage would show)."""
    big = _data((4, 6, 7, 20, 20, 2), np.float64)
    winograd_forward(*big[:3], big[4])
    winograd_backward(big[3], *big[:2], big[4])
    for shape in [(2, 3, 5, 7, 9, 1), (3, 6, 7, 9, 8, 0), (1, 2, 2, 5, 5, 2)]:
        _check_against_reference(*_data(shape, np.float64), 1e-12)


def test_input_grad_skipped_returns_none_and_same_weight_grads():
    x, w, b, g, p = _data((3, 4, 6, 8, 8, 1), np.float32)
    dx, dw, db = winograd_backward(g, x, w, p, need_input_grad=True)
    none, dw2, db2 = winograd_backward(g, x, w, p, need_input_grad=False)
    assert dx is not None and none is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


def test_non_contiguous_input_is_accepted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 9, 3)).transpose(0, 3, 1, 2)   # NHWC memory, NCHW view
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    assert_close(winograd_forward(x, w, b, 1), reference_forward(x, w, b, 1, 1), 1e-12)


# -- the layer: Conv2d(method="winograd"), finite differences, torch, dispatch ------

@pytest.mark.parametrize("shape", [(2, 3, 6, 5, 4, 1), (1, 2, 5, 5, 3, 0), (2, 2, 4, 7, 2, 2)])
def test_layer_gradients_by_finite_differences(shape, rng):
    n, c, h, w, f, p = shape
    layer = Conv2d(c, f, 3, padding=p, rng=rng, dtype=np.float64, method="winograd")
    errors = check_layer(layer, rng.standard_normal((n, c, h, w)), rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("c,f,side,k,s,p", [
    (16, 32, 12, 3, 1, 1), (3, 5, 7, 3, 1, 0), (4, 6, 9, 1, 1, 0), (8, 4, 10, 3, 2, 1),
])
@pytest.mark.parametrize("needs_input_grad", [True, False])
def test_layer_default_and_forced_methods_agree_with_reference(c, f, side, k, s, p, dtype, tol,
                                                               needs_input_grad, rng):
    x = rng.standard_normal((3, c, side, side + 1)).astype(dtype)
    methods = ["reference", None, "im2col", "direct"] + (["winograd"] if (k, s) == (3, 1) else [])
    layers = {m: Conv2d(c, f, k, s, p, rng=0, dtype=dtype, method=m, needs_input_grad=needs_input_grad)
              for m in methods}
    ref = layers.pop("reference")
    y = ref.forward(x)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = ref.backward(g)
    for m, layer in layers.items():
        scale = max(1.0, float(np.abs(y).max()))
        np.testing.assert_allclose(layer.forward(x), y, rtol=0, atol=tol * scale, err_msg=str(m))
        got = layer.backward(g)
        if needs_input_grad:
            np.testing.assert_allclose(got, dx, rtol=0, atol=tol * max(1.0, float(np.abs(dx).max())))
        else:
            assert got is None
        for name in ("weight", "bias"):
            want = getattr(ref, name).grad
            np.testing.assert_allclose(getattr(layer, name).grad, want, rtol=0,
                                       atol=tol * max(1.0, float(np.abs(want).max())), err_msg=f"{m} {name}")


def test_layer_matches_torch_float64(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")
    layer = Conv2d(5, 7, 3, padding=1, rng=rng, dtype=np.float64, method="winograd")
    x = rng.standard_normal((3, 5, 9, 8))
    g = rng.standard_normal((3, 7, 9, 8))
    y, dx = layer.forward(x), layer.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.weight.data, requires_grad=True)
    tb = torch.tensor(layer.bias.data, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(g))
    for got, want in ((y, ty), (dx, tx.grad), (layer.weight.grad, tw.grad), (layer.bias.grad, tb.grad)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=0, atol=1e-10)


def test_dispatch_rule():
    assert choose_method(3, (5, 5), 1) == "direct"       # the paper's layers keep their kernel
    assert choose_method(6, (5, 5), 1) == "direct"
    assert choose_method(3, (3, 3), 1) == "direct"       # a first layer: too few channels for Winograd
    assert choose_method(16, (3, 3), 1) == "winograd"
    assert choose_method(64, (3, 3), 2) == "im2col"      # stride 2
    assert choose_method(64, (1, 1), 1) == "im2col"      # 1x1: one GEMM
    assert Conv2d(32, 64, 3, padding=1).method == "winograd"
    assert Conv2d(32, 64, 3, padding=1, method="direct").method == "direct"   # method= still forces


@pytest.mark.parametrize("kernel,stride", [(5, 1), ((3, 2), 1), (3, 2)])
def test_winograd_refuses_other_shapes_in_one_line(kernel, stride):
    with pytest.raises(UserError, match="winograd.*3x3 kernel and stride 1"):
        Conv2d(4, 4, kernel, stride, method="winograd")


@pytest.mark.parametrize("two_units, second", [(False, "winograd"), (True, "direct/winograd")])
def test_summary_shows_the_method_each_conv_layer_runs(monkeypatch, two_units, second):
    from numpy_cnn.kernels import _cpu
    from numpy_cnn.nn.arch import build_model
    from numpy_cnn.study.summary import summarize
    monkeypatch.setattr(_cpu, "two_512_bit_fma_units", lambda: two_units)   # Intel's AVX-512 server cores: True
    model = build_model("c16k3p1-relu-c32k3p1-relu-c32k1-relu-c32k3s2p1-relu-pool2-fc8", image_size=16, rng=0)
    table = summarize(model, (1, 3, 16, 16))
    # float32, 32 output channels: the stride-2 layer's forward runs direct's register-blocked loops,
    # and so does the Winograd layer's where a core has two 512-bit FMA units
    assert [r.method for r in table.rows if r.kind == "Conv2d"] == ["direct", second, "im2col", "direct/im2col"]
    assert all(r.method is None for r in table.rows if r.kind != "Conv2d")
    assert "method" in str(table).splitlines()[0] and "winograd" in str(table)


@pytest.mark.parametrize("method", ["winograd", "im2col", "direct"])
def test_frozen_parameters_get_no_gradient_and_dx_is_unchanged(method, rng):
    x = rng.standard_normal((2, 16, 6, 6)).astype(np.float32)
    live = Conv2d(16, 8, 3, padding=1, rng=0, method=method)
    frozen = Conv2d(16, 8, 3, padding=1, rng=0, method=method)
    frozen.weight.requires_grad = frozen.bias.requires_grad = False
    g = rng.standard_normal(live.forward(x).shape).astype(np.float32)
    frozen.forward(x)
    np.testing.assert_array_equal(frozen.backward(g), live.backward(g))
    assert frozen.weight.grad is None and frozen.bias.grad is None
    assert live.weight.grad is not None
