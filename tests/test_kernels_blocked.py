"""Tests of the register-blocked forward (numpy_cnn.kernels.conv_blocked) and its vectors (simd).

The reference is the readable im2col layer (numpy_cnn.nn.im2col) in float64
on the same float32 inputs, to 1e-5 of the output's scale. At stride 1 the
blocked kernel adds each output's terms in conv_direct's order, so it must
also give conv_direct's flat-row loops' bits exactly; at any stride, the
same bits on one thread and two. The assembly it compiles to, for Intel and
for AVX2, is checked in tests/test_kernels_cpu.py.
"""

import numpy as np
import pytest
from numba import njit

from kernel_support import compiled_with
from numpy_cnn.kernels import _cpu, conv_blocked, conv_direct
from numpy_cnn.kernels.choice import choose_forward
from numpy_cnn.kernels.conv_blocked import (POSITIONS, blocked_forward, blocked_input_grad, blocked_weight_grad, fits,
                                             input_grad_phases)
from numpy_cnn.kernels.conv_gemm import gemm_conv_backward
from numpy_cnn.kernels.simd import (block_offsets, fma_broadcast, load16, load_rows, offsets_at, repeat, store_rows,
                                    store_transposed)
from numpy_cnn.kernels.threads import use_threads
from numpy_cnn.nn import im2col
from numpy_cnn.nn.layers.conv import Conv2d

# (N, C, F, H, W, k, stride, padding): the paper's conv2, the grid's layers, and edge cases:
# output positions equal to a block, not a multiple of it, one row narrower than a block,
# padding wider than the kernel, non-square images and kernels, stride 3.
SHAPES = [
    (3, 6, 16, 22, 22, 5, 1, 0),
    (2, 32, 64, 24, 24, 3, 2, 1),
    (2, 3, 16, 12, 12, 3, 1, 1),
    (1, 16, 32, 9, 9, 3, 1, 1),
    (2, 5, 16, 7, 5, (3, 2), 1, 2),
    (1, 1, 48, 4, 3, 1, 1, 1),
    (2, 4, 16, 11, 10, 3, 3, 0),
    (1, 7, 16, 3, 12, (1, 3), 1, 0),
    (3, 2, 32, 6, 6, 5, 2, 2),
]


def _case(N, C, F, H, W, k, seed=0):
    rng = np.random.default_rng(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((F, C, kh, kw)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    return x, w, b


def _outputs(H, W, k, s, p):
    kh, kw = (k, k) if isinstance(k, int) else k
    return ((H + 2 * p - kh) // s + 1) * ((W + 2 * p - kw) // s + 1)


def _flat_rows(monkeypatch, x, w, b, s, p):
    """conv_direct's forward with the blocked kernel turned off: its flat-row loops."""
    monkeypatch.setattr(conv_blocked, "fits", lambda *args: False)
    return conv_direct.conv2d_forward(x, w, b, s, p)


@pytest.mark.parametrize("N, C, F, H, W, k, s, p", SHAPES)
def test_blocked_forward_matches_the_reference(N, C, F, H, W, k, s, p):
    x, w, b = _case(N, C, F, H, W, k)
    if _outputs(H, W, k, s, p) < POSITIONS:
        pytest.skip(f"fewer outputs than a block of {POSITIONS}: conv_direct keeps its own loops")
    y = blocked_forward(x, w, b, (s, s), p)
    ref, _ = im2col.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), s, p)
    assert y.dtype == np.float32 and y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("N, C, F, H, W, k, s, p", [case for case in SHAPES if case[6] == 1])
def test_blocked_forward_has_the_flat_row_loops_bits_at_stride_1(monkeypatch, N, C, F, H, W, k, s, p):
    """The same terms in the same order, each one FMA: conv_direct's forward, bit for bit
    (so a network trained before the blocked kernel trains to the same weights)."""
    x, w, b = _case(N, C, F, H, W, k, seed=1)
    if _outputs(H, W, k, s, p) < POSITIONS:
        pytest.skip(f"fewer outputs than a block of {POSITIONS}")
    y = blocked_forward(x, w, b, (s, s), p)
    assert y.tobytes() == _flat_rows(monkeypatch, x, w, b, s, p).tobytes()


def test_conv_direct_runs_the_blocked_kernel_only_where_it_fits(monkeypatch):
    """float32, channels a multiple of 16, a block's outputs, one padding: blocked; else the flat rows."""
    calls = []
    real = conv_blocked.blocked_forward
    monkeypatch.setattr(conv_blocked, "blocked_forward", lambda *a: calls.append(a[1].shape) or real(*a))
    for F, C, dtype, H, padding in [(16, 8, np.float32, 8, 1), (8, 8, np.float32, 8, 1), (16, 8, np.float64, 8, 1),
                                    (32, 8, np.float32, 3, 0), (16, 8, np.float32, 8, (1, 0)), (16, 7, np.float32, 8, 1)]:
        x, w, b = _case(1, C, F, H, H, 3)
        conv_direct.conv2d_forward(x.astype(dtype), w.astype(dtype), b.astype(dtype), 1, padding)
    assert calls == [(16, 8, 3, 3)]                  # 7 channels x 3 x 3 = 63 terms: too few
    assert fits(np.float32, 16, POSITIONS, 64) and not fits(np.float32, 16, POSITIONS - 1, 64)
    assert not fits(np.float64, 16, 100, 64) and not fits(np.float32, 24, 100, 64)
    assert not fits(np.float32, 16, 100, 63)


@pytest.mark.parametrize("N, C, F, H, W, k, s, p", [SHAPES[1], SHAPES[8]])
def test_blocked_forward_is_the_same_on_one_thread_and_two(N, C, F, H, W, k, s, p):
    x, w, b = _case(N + 3, C, F, H, W, k, seed=2)
    before = use_threads()
    try:
        use_threads(1)
        one = blocked_forward(x, w, b, (s, s), p)
        use_threads(min(2, before))
        two = blocked_forward(x, w, b, (s, s), p)
    finally:
        use_threads(before)
    assert one.tobytes() == two.tobytes()


# ----------------------------------------------------------------------------
# The backward: the weight gradient, and the input gradient by phases
# ----------------------------------------------------------------------------

def _reference_grads(x, w, dy, s, p):
    """(dx, dw, db) of the readable im2col layer in float64."""
    f64 = np.float64
    _, cache = im2col.conv2d_forward(x.astype(f64), w.astype(f64), np.zeros(len(w), f64), s, p)
    return im2col.conv2d_backward(dy.astype(f64), cache, w.astype(f64), s, p, True)


def _close(got, ref):
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("N, C, F, H, W, k, s, p", SHAPES)
def test_blocked_weight_grad_matches_the_reference(N, C, F, H, W, k, s, p):
    x, w, _ = _case(N, C, F, H, W, k)
    kh, kw = w.shape[2:]
    dy = np.random.default_rng(5).standard_normal((N, F, (H + 2 * p - kh) // s + 1,
                                                   (W + 2 * p - kw) // s + 1)).astype(np.float32)
    dw, db = blocked_weight_grad(x, dy, (kh, kw), (s, s), p)
    _, dw_ref, db_ref = _reference_grads(x, w, dy, s, p)
    _close(dw, dw_ref)
    _close(db, db_ref)


def test_blocked_weight_grad_is_the_same_on_one_thread_and_two():
    """Lanes of images, summed in lane order: the bits follow the batch, not the threads."""
    x, w, _ = _case(11, 32, 64, 12, 12, 3, seed=2)
    dy = np.random.default_rng(6).standard_normal((11, 64, 6, 6)).astype(np.float32)
    before = use_threads()
    try:
        use_threads(1)
        one = blocked_weight_grad(x, dy, (3, 3), (2, 2), 1)
        use_threads(min(2, before))
        two = blocked_weight_grad(x, dy, (3, 3), (2, 2), 1)
    finally:
        use_threads(before)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, two))


# (C, F, H, W, k, stride, padding): strides 1 to 3, padding wider than the kernel's reach,
# even kernels (phases of unequal taps), odd sizes (phases of unequal rows).
INPUT_GRAD_SHAPES = [
    (32, 64, 24, 24, 3, 2, 1),
    (16, 32, 9, 9, 3, 1, 1),
    (16, 16, 9, 9, 3, 1, 2),
    (32, 16, 11, 12, 5, 2, 2),
    (16, 32, 12, 12, 4, 2, 1),
    (16, 64, 13, 11, (2, 3), 2, 0),
    (16, 64, 8, 8, 1, 2, 0),
    (16, 64, 16, 16, 5, 3, 1),
]


@pytest.mark.parametrize("C, F, H, W, k, s, p", INPUT_GRAD_SHAPES)
def test_blocked_input_grad_matches_the_reference(C, F, H, W, k, s, p):
    x, w, _ = _case(2, C, F, H, W, k)
    kh, kw = w.shape[2:]
    dy = np.random.default_rng(7).standard_normal((2, F, (H + 2 * p - kh) // s + 1,
                                                   (W + 2 * p - kw) // s + 1)).astype(np.float32)
    dx = blocked_input_grad(dy, w, x.shape, (s, s), p)
    _close(dx, _reference_grads(x, w, dy, s, p)[0])


def test_input_grad_phases_are_the_kernels_taps_flipped():
    """Stride 1: one phase, the whole kernel flipped, dy bordered by k-1-p. Stride 2 on a 3x3
    kernel, padding 1: four phases of 1, 2, 2 and 4 taps. A phase no tap reaches is left out."""
    w = np.arange(9).reshape(1, 1, 3, 3)
    [(a, b, rows, cols, top, left)] = input_grad_phases((1, 1, 8, 8), w.shape, (1, 1), 1)
    assert (a, b, top, left) == (0, 0, -1, -1)
    assert w[0, 0, rows, cols].tolist() == w[0, 0, ::-1, ::-1].tolist()
    phases = input_grad_phases((1, 1, 8, 8), w.shape, (2, 2), 1)
    assert [w[0, 0, rows, cols].size for _, _, rows, cols, _, _ in phases] == [1, 2, 2, 4]
    assert len(input_grad_phases((1, 1, 8, 8), (1, 1, 1, 1), (2, 2), 0)) == 1       # 1x1 at stride 2
    x, w, _ = _case(1, 16, 16, 8, 8, 3)                       # 16 x 1 tap = 16 terms: too few
    assert blocked_input_grad(np.zeros((1, 16, 3, 3), np.float32), w, x.shape, (3, 3), 1) is None


def test_im2col_backward_runs_the_blocked_loops_where_they_fit(monkeypatch):
    """gemm_conv_backward: dW, db and dx by conv_blocked for a layer it fits, by the GEMMs otherwise
    (here: 8 output channels), and the reference's gradients either way."""
    calls = []
    for name in ("blocked_weight_grad", "blocked_input_grad"):
        real = getattr(conv_blocked, name)
        monkeypatch.setattr(conv_blocked, name, lambda *a, _f=real, _n=name: calls.append(_n) or _f(*a))
    for F in (32, 8):
        x, w, _ = _case(2, 16, F, 10, 10, 3, seed=3)
        dy = np.random.default_rng(8).standard_normal((2, F, 5, 5)).astype(np.float32)
        dx, dw, db = gemm_conv_backward(dy, x, w, 2, 1, True)
        dx_ref, dw_ref, db_ref = _reference_grads(x, w, dy, 2, 1)
        for got, ref in ((dx, dx_ref), (dw, dw_ref), (db, db_ref)):
            _close(got, ref)
    assert calls == ["blocked_weight_grad", "blocked_input_grad"]


def _passes_match_the_reference(layer, reference, x_shape):
    """layer's forward, dx and dW against the reference layer's (same weights) on random x and dy,
    to 1e-5 of each one's scale; returns (x, dy)."""
    x = np.random.default_rng(3).standard_normal(x_shape).astype(np.float32)
    y, y_ref = layer.forward(x), reference.forward(x)
    assert np.abs(y - y_ref).max() <= 1e-5 * np.abs(y_ref).max()
    dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    dx, dx_ref = layer.backward(dy), reference.backward(dy)
    assert np.abs(dx - dx_ref).max() <= 1e-5 * np.abs(dx_ref).max()
    assert np.abs(layer.weight.grad - reference.weight.grad).max() <= 1e-5 * np.abs(reference.weight.grad).max()
    return x, dy


def test_conv2d_runs_the_blocked_forward_with_its_rules_backward(monkeypatch):
    """A stride-2 3x3 layer of 16 -> 32 channels: the rule picks im2col, the forward runs
    direct's (blocked) loops, and forward and gradients match the reference layer's."""
    monkeypatch.setattr(_cpu, "two_512_bit_fma_units", lambda: False)    # a CPU that keeps Winograd's forward
    layer = Conv2d(16, 32, 3, stride=2, padding=1, rng=0)
    assert (layer.method, layer.forward_method) == ("im2col", "direct")
    assert Conv2d(16, 32, 3, stride=2, method="im2col").forward_method == "im2col"      # forced: both passes
    assert Conv2d(16, 32, 3, stride=2, dtype=np.float64).forward_method == "im2col"
    assert Conv2d(16, 24, 3, stride=2).forward_method == "im2col"                       # 24: not a multiple of 16
    assert Conv2d(16, 32, 1, stride=2).forward_method == "im2col"                       # 1x1: one GEMM an image
    assert Conv2d(3, 32, 3, stride=2).forward_method == "im2col"                        # 27 terms: too few
    assert Conv2d(16, 32, 3, padding=1).forward_method == "winograd"                    # Winograd keeps its layers
    x, dy = _passes_match_the_reference(layer, Conv2d(16, 32, 3, stride=2, padding=1, rng=0, method="reference"),
                                        (2, 16, 10, 10))
    layer.method = "reference"                       # set later: both passes follow (the cache is the reference's)
    assert layer.forward_method == "reference"
    layer.forward(x)
    assert layer.backward(dy).shape == x.shape


def test_only_intel_avx512_server_cores_count_as_two_512_bit_fma_units():
    assert _cpu.two_512_bit_fma_units("sapphirerapids", "+avx2,+avx512f")
    assert _cpu.two_512_bit_fma_units("emeraldrapids", "+avx512f")
    assert _cpu.two_512_bit_fma_units("skylake-avx512", "+avx512f")
    assert not _cpu.two_512_bit_fma_units("znver4", "+avx512f")                   # 512 bits as two halves
    assert not _cpu.two_512_bit_fma_units("tigerlake", "+avx512f")                # a client core: one unit
    assert not _cpu.two_512_bit_fma_units("sapphirerapids", "+avx2,-avx512f")     # AVX-512 turned off
    assert not _cpu.two_512_bit_fma_units("znver1", "+avx2")


def test_winograd_layers_run_the_blocked_forward_on_two_512_bit_fma_units(monkeypatch):
    """On Intel's AVX-512 server cores a Winograd layer's forward runs direct's blocked loops
    (its backward stays Winograd's, and the pair gives the reference's gradients); elsewhere,
    and for layers the blocked loops do not take, Winograd runs both passes."""
    f32 = np.float32
    assert choose_forward("winograd", 32, 64, (3, 3), f32, two_512_bit_fma_units=True) == "direct"
    assert choose_forward("winograd", 32, 64, (3, 3), f32, two_512_bit_fma_units=False) == "winograd"
    assert choose_forward("winograd", 16, 24, (3, 3), f32, two_512_bit_fma_units=True) == "winograd"
    assert choose_forward("winograd", 32, 64, (3, 3), np.float64, two_512_bit_fma_units=True) == "winograd"
    assert choose_forward("direct", 6, 16, (5, 5), f32, two_512_bit_fma_units=True) == "direct"
    monkeypatch.setattr(_cpu, "two_512_bit_fma_units", lambda: True)
    layer = Conv2d(32, 64, 3, padding=1, rng=0)
    assert (layer.method, layer.forward_method, layer.methods) == ("winograd", "direct", "direct/winograd")
    _passes_match_the_reference(layer, Conv2d(32, 64, 3, padding=1, rng=0, method="reference"), (2, 32, 12, 12))
    monkeypatch.setattr(_cpu, "two_512_bit_fma_units", lambda: False)
    assert layer.forward_method == "winograd"


# ----------------------------------------------------------------------------
# The vectors (simd), on their own
# ----------------------------------------------------------------------------

@njit
def _one_block(a, offsets_from, width, step_row, step_col, w, k, out):
    corner = block_offsets(offsets_from[0], offsets_from[1], width, step_row, step_col, 3)
    sums = fma_broadcast(repeat(load16(w, 0), 3), a, corner, k, load16(w, 16))
    store_transposed(out, 0, 3, sums)                # out (16, 3): lane v of sum p at out[v, p]
    return corner


def test_simd_operations_do_what_their_docstrings_say():
    rng = np.random.default_rng(5)
    a = rng.standard_normal(200).astype(np.float32)
    w = rng.standard_normal(32).astype(np.float32)
    out = np.zeros((16, 3), np.float32)
    # positions (1, 3), (1, 4), (2, 0) of a grid 5 wide; rows 40 apart, columns 2
    corner = _one_block(a, np.array([1, 3]), 5, 40, 2, w, 7, out)
    assert corner == (1 * 40 + 3 * 2, 1 * 40 + 4 * 2, 2 * 40 + 0)
    for p, offset in enumerate(corner):
        expected = w[:16].astype(np.float64) + np.float64(a[offset + 7]) * w[16:]
        np.testing.assert_allclose(out[:, p], expected, rtol=1e-6)


def _store_block(n):
    """A numba function storing a block of n vectors (src's first n*16 floats) with store_transposed."""
    @njit
    def store(src, out, at, row_stride):
        sums = (load16(src, 0), load16(src, 16), load16(src, 32), load16(src, 48), load16(src, 64), load16(src, 80),
                load16(src, 96), load16(src, 112), load16(src, 128), load16(src, 144), load16(src, 160),
                load16(src, 176))[:n]
        store_transposed(out, at, row_stride, sums)
    return store


@njit
def _rows_round_trip(a, table, out):
    offsets = offsets_at(table, 1, 3)
    store_rows(out, 2, 20, load_rows(a, 1, 17, 3))     # three 16-float rows, 17 apart -> 20 apart
    return offsets


def test_offsets_at_and_load_and_store_rows_do_what_their_docstrings_say():
    a = np.arange(100, dtype=np.float32)
    out = np.full(80, -1, dtype=np.float32)
    offsets = _rows_round_trip(a, np.array([5, 7, 9, 11, 13], dtype=np.int64), out)
    assert offsets == (7, 9, 11)
    expected = np.full(80, -1, dtype=np.float32)
    for p in range(3):
        expected[2 + 20 * p:18 + 20 * p] = a[1 + 17 * p:17 + 17 * p]
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize("n", [1, 6, 12])
def test_store_transposed_writes_each_lane_as_a_row_and_nothing_else(n):
    """Block (n positions x 16 lanes) -> 16 rows of n at ``at``, rows ``row_stride`` apart;
    every float around them stays as it was."""
    src = np.arange(12 * 16, dtype=np.float32)
    out = np.full((20, 30), -1.0, np.float32)
    _store_block(n)(src, out, 3 * 30 + 5, 30)
    want = np.full((20, 30), -1.0, np.float32)
    want[3:19, 5:5 + n] = src[:n * 16].reshape(n, 16).T
    assert out.tobytes() == want.tobytes()


def test_the_twelve_position_blocks_of_avx512_give_the_same_bits_here():
    """conv_blocked._image as compiled for AVX-512 (12 positions a block) runs here too
    (LLVM splits each vector into AVX2's halves): the same sums in the same order, so the
    same bits as this host's 6-position blocks."""
    twelve = compiled_with(conv_blocked._image, POSITIONS=12)
    for N, C, F, H, W, k, s, p in [SHAPES[0], SHAPES[1], SHAPES[4]]:
        x, w, b = _case(N, C, F, H, W, k, seed=6)
        kh, kw = (k, k) if isinstance(k, int) else k
        wb = np.ascontiguousarray(w.reshape(F // 16, 16, C, kh, kw).transpose(0, 2, 3, 4, 1))
        ho, wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
        y = np.empty((N, F, ho * wo), np.float32)
        for n in range(N):
            xp = np.ascontiguousarray(np.pad(x[n], ((0, 0), (p, p), (p, p))))
            twelve(xp, wb, b, s, s, wo, 0, y, n)
        assert y.reshape(N, F, ho, wo).tobytes() == blocked_forward(x, w, b, (s, s), p).tobytes()
