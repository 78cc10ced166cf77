"""Tests of the polyphase decomposition (numpy_cnn.kernels.conv_phases), which the direct kernel runs at stride > 1.

First the four rearrangements alone, against their definitions written here
with ``np.pad`` and strided slices; then a stride per axis against the sum
written out, a finite-difference check in float64, and the same bits on one
and two threads. The whole strided convolution against the loop reference
(forward and all three gradients, float32 and float64, odd and even sizes,
padding 0-2, 1x1, 3x3, 5x5 and non-square kernels, batch 1) is
tests/test_kernels_conv.py's, whose SHAPES hold this path's cases.

Tolerances as in tests/test_kernels_conv.py: float64 to 1e-12 of the
output's scale (only the summation order differs from the reference),
float32 against the float64 reference to 1e-5 (a sum of a few hundred
float32 products carries a relative rounding error of about 1e-6).
"""

import numpy as np
import pytest

from numpy_cnn.kernels import conv2d_backward, conv2d_forward
from numpy_cnn.kernels import conv_phases as phases
from numpy_cnn.nn.gradcheck import TOLERANCE, check_layer
from numpy_cnn.nn.layers import Conv2d

RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def assert_close(actual, expected, rtol):
    """max |actual - expected| <= rtol * max(1, max |expected|)."""
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual.astype(np.float64) - expected).max())
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:g} * {scale:.3g}"


# -- the rearrangements, against their definitions ------------------------------

# (H, W, kH, kW, stride, padding)
SPLITS = [
    (24, 24, 3, 3, (2, 2), (1, 1)),    # the benchmark grid's stride-2 layer
    (9, 8, 3, 3, (2, 2), (1, 1)),      # odd height
    (11, 10, 5, 5, (3, 3), (2, 2)),    # stride 3, padding 2
    (7, 9, 1, 1, (2, 2), (0, 0)),      # 1x1: three of the four phases are never read
    (10, 11, 4, 2, (2, 1), (1, 2)),    # stride only along the height, padding larger than kW
    (6, 6, 6, 6, (3, 3), (2, 2)),      # kernel as large as the input
]


def padded(x, padding, Hs, Ws, stride):
    """xpad of the definition: x with its zero border, cut or zero-extended to (sh*Hs, sw*Ws)."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    xpad = np.zeros((N, C, max(sh * Hs, H + 2 * ph), max(sw * Ws, W + 2 * pw)), dtype=x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    return xpad[:, :, :sh * Hs, :sw * Ws]


@pytest.mark.parametrize("split", SPLITS, ids=str)
def test_split_input_is_space_to_depth_of_the_padded_input(split):
    H, W, kH, kW, stride, padding = split
    (sh, sw) = stride
    x = np.random.default_rng(0).standard_normal((2, 3, H, W))
    xs = phases.split_input(x, stride, padding, (kH, kW))
    Hs, Ws, _, _ = phases.phase_sizes(H, W, kH, kW, stride, padding)
    assert xs.shape == (2, 3 * sh * sw, Hs, Ws)
    xpad = padded(x, padding, Hs, Ws, stride)
    for c in range(3):
        for ry in range(sh):
            for rx in range(sw):
                np.testing.assert_array_equal(xs[:, (c * sh + ry) * sw + rx], xpad[:, c, ry::sh, rx::sw])


@pytest.mark.parametrize("split", SPLITS, ids=str)
def test_merge_input_grad_is_the_adjoint_of_split_input(split):
    """<split(x), g> == <x, merge(g)> for every x and g: merge is split's transpose, so dx is right."""
    H, W, kH, kW, stride, padding = split
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, H, W))
    xs = phases.split_input(x, stride, padding, (kH, kW))
    g = rng.standard_normal(xs.shape)
    dx = phases.merge_input_grad(g, x.shape, stride, padding)
    assert dx.shape == x.shape
    assert np.isclose(np.sum(xs * g), np.sum(x * dx), rtol=1e-12)
    # each pixel lands in one place: merging its own phases back gives x, zero where no window reads
    back = phases.merge_input_grad(xs, x.shape, stride, padding)
    used = phases.merge_input_grad(np.ones_like(xs), x.shape, stride, padding) == 1
    np.testing.assert_array_equal(back, np.where(used, x, 0.0))


@pytest.mark.parametrize("kernel,stride", [((3, 3), (2, 2)), ((5, 5), (2, 2)), ((3, 3), (3, 3)),
                                           ((1, 1), (2, 2)), ((4, 2), (2, 1)), ((2, 5), (3, 2))])
def test_split_weight_stacks_the_taps_and_merge_gives_them_back(kernel, stride):
    (kH, kW), (sh, sw) = kernel, stride
    w = np.random.default_rng(2).standard_normal((4, 3, kH, kW))
    ws = phases.split_weight(w, stride)
    qh, qw = -(-kH // sh), -(-kW // sw)
    assert ws.shape == (4, 3 * sh * sw, qh, qw) and ws.flags.c_contiguous
    for c in range(3):
        for ry in range(sh):
            for rx in range(sw):
                for qy in range(qh):
                    for qx in range(qw):
                        ky, kx = sh * qy + ry, sw * qx + rx
                        want = w[:, c, ky, kx] if ky < kH and kx < kW else 0.0   # a tap that does not exist
                        np.testing.assert_array_equal(ws[:, (c * sh + ry) * sw + rx, qy, qx], want)
    np.testing.assert_array_equal(phases.merge_weight_grad(ws, kernel, stride), w)


@pytest.mark.parametrize("kernel,stride,want", [
    ((3, 3), (2, 2), (2, 1)),     # 2 phases x 2 single taps would cost more than 2 x a 3-tap pass
    ((5, 5), (2, 2), (2, 2)),     # 3-tap phases against 5-tap rows computed twice
    ((3, 3), (3, 3), (3, 3)),
    ((2, 2), (2, 2), (2, 2)),
    ((3, 3), (1, 2), (1, 1)),     # nothing to split along the height; the width as for 3x3 at stride 2
    ((5, 5), (1, 1), (1, 1)),     # stride 1: the direct kernel alone
])
def test_split_plan_splits_the_height_always_and_the_width_when_it_pays(kernel, stride, want):
    split, taken, rest_stride, rest_padding = phases.split_plan(kernel, stride, (1, 2))
    assert split == want
    for axis in range(2):
        cut = split[axis] > 1
        assert taken[axis] == ((1, 2)[axis] if cut else 0)
        assert rest_padding[axis] == (0 if cut else (1, 2)[axis])
        assert rest_stride[axis] == (1 if cut else stride[axis])


# -- the strided convolution through the direct kernel ----------------------------

# The forward and all three gradients at stride > 1 (the split path) against the loop reference:
# tests/test_kernels_conv.py's SHAPES, whose strided rows include the split's cases.


def test_per_axis_stride_matches_a_loop_reference():
    """Stride (2, 1) and padding (1, 2), which the im2col layer does not take: against the sum written out."""
    N, C, F, H, W, kH, kW, stride, padding = 2, 3, 2, 8, 9, 3, 5, (2, 1), (1, 2)
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, kH, kW)), rng.standard_normal(F)
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
    HO, WO = (H + 2 - kH) // 2 + 1, W + 4 - kW + 1
    want = np.zeros((N, F, HO, WO)) + b[:, None, None]
    for ky in range(kH):
        for kx in range(kW):
            want += np.einsum("nchw,fc->nfhw", xpad[:, :, ky:ky + 2 * HO - 1:2, kx:kx + WO], w[:, :, ky, kx])
    assert_close(conv2d_forward(x, w, b, stride, padding), want, 1e-12)


def test_input_grad_skipped_gives_the_same_weight_grads():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((4, 6, 6, 6)).astype(np.float32)
    dx, dw, db = conv2d_backward(g, x, w, 2, 1, need_input_grad=True)
    none, dw2, db2 = conv2d_backward(g, x, w, 2, 1, need_input_grad=False)
    assert dx is not None and none is None
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


# -- the layer: Conv2d(method="direct") at stride > 1 -------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 9, 8, 4, 3, 2, 1), (2, 2, 11, 10, 3, 5, 2, 2),
                                   (1, 3, 10, 11, 2, (3, 2), 3, 0), (2, 2, 7, 7, 3, 1, 2, 0)])
def test_finite_differences_float64(shape, rng):
    """Central differences in float64, weighted by a random upstream gradient (numpy_cnn.nn.gradcheck)."""
    n, c, h, w, f, k, s, p = shape
    layer = Conv2d(c, f, k, stride=s, padding=p, rng=rng, dtype=np.float64, method="direct")
    errors = check_layer(layer, rng.standard_normal((n, c, h, w)), rng)
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.parametrize("batch", [4, 7, 64])
def test_same_bits_on_one_and_two_threads(batch, numba_threads, monkeypatch):
    """The weight gradient is the stride-1 kernel's, summed in lanes the batch fixes: no thread count shows."""
    from numpy_cnn.kernels import threads as threads_module
    monkeypatch.setattr(threads_module, "WORK_PER_THREAD", 1)    # a thread even for the small calls

    def run():
        rng = np.random.default_rng(batch)
        x = rng.standard_normal((batch, 16, 12, 12)).astype(np.float32)
        layer = Conv2d(16, 16, 3, 2, 1, rng=0, method="direct")
        y = layer.forward(x)
        dx = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
        return [y, dx, layer.weight.grad, layer.bias.grad]

    numba_threads(1)
    want = run()
    numba_threads(2)
    for part, a, b in zip(("y", "dx", "dw", "db"), want, run()):
        assert np.array_equal(a, b), f"batch {batch}: {part} differs"
