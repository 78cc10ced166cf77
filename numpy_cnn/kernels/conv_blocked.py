"""The forward convolution register-blocked: a block of outputs x 16 channels held in registers.

The same sum as every other method (:mod:`numpy_cnn.nn.im2col` derives it)::

    y[n, f, oy, ox] = b[f] + sum_{c, i, j} w[f, c, i, j] * xpad[n, c, oy*s + i, ox*s + j]

read as im2col's GEMM ``y = W @ cols + b`` without building ``cols``: each
output position's column is read straight from the (padded) input, where it
sits (an "implicit GEMM"). The GEMM's micro-kernel is the block::

    B output positions (a run of the row-major grid of outputs)
      x 16 output channels (one vector: a zmm register, or two ymm)
    = B vector sums, kept in registers over all K = C*kH*kW terms

and each term is one weight vector ``w[f0:f0 + 16, c, i, j]``, loaded once,
times B input values, each broadcast to all 16 lanes::

    for c, i, j:                                    # the K terms, in this order
        wv = w[f0:f0+16, c, i, j]                   # one vector load
        for p < B:  sum[p] += xpad[c, oy_p*s + i, ox_p*s + j] * wv     # B FMAs

B FMAs per B + 1 loads, with no sum loaded or stored until the block is
done: that is what keeps a CPU's FMA units busy. B follows the target's
registers: 12 with AVX-512's 32 (12 sums, a weight vector and room to
spare; 12 independent FMA chains cover two FMA ports of latency 4) and 6
with AVX2's 16 (6 sums of two ymm each, the weights' two and one
broadcast). The flat-row loops of :mod:`numpy_cnn.kernels.conv_direct`
instead load and store their sums every five taps and compute the
wrap-around columns they then drop; ``docs/performance.md``, section
"Register-blocked forward", has the measurements and the assembly.

The terms are added in conv_direct's order (the bias first, then c, i, j
ascending), each with one fused multiply-add, so at stride 1 the output is
the same to the last bit as conv_direct's (``tests/test_kernels_blocked.py``
checks it). The vectors are :mod:`numpy_cnn.kernels.simd`'s.

Layout, per image (a ``prange`` over each thread's share of the batch; no
sums cross images, so the output does not depend on the thread count):

* the image with its zero border, ``xp (C, Hp, Wp)`` (x[n] itself when there
  is no padding): a term's B inputs are B loads at one offset from each
  position's corner, and the innermost loop (over j) steps by one float.
  Channels last, it would step by C floats, a stride that needed a
  register of its own: compiled for Intel, the loop then reloaded it from
  the stack every term;
* weights ``wb (F/16, C, kH, kW, 16)``: each group's K vectors in a row,
  starting on a 64-byte line (scratch memory), so no weight load splits;
* a block's sums (positions x channels) are transposed in registers and
  stored as 16 rows of y (NCHW), one masked vector store each
  (:func:`numpy_cnn.kernels.simd.store_transposed`), rather than 16 x B
  single floats copied one by one. The last block of a channel group starts
  B before the end, overlapping the one before it (it writes those outputs
  again, with the same values).

Only float32, output channels a multiple of 16, at least B outputs per
image and 64 terms per sum: :func:`fits` says when.
``conv_direct.conv2d_forward`` calls this kernel when it fits, and its own
loops otherwise.

The weight gradient is the same GEMM's other product, ``dW = dy @ cols^T``
(:mod:`numpy_cnn.nn.im2col`: ``dw[f, c, i, j] = sum_{n, oy, ox} dy[n, f, oy, ox]
* xpad[n, c, oy*s + i, ox*s + j]``), blocked the same way with the roles of
positions and terms swapped::

    B terms (c, i, j)  x  16 output channels  = B vector sums, in registers
    for each output position q of an image:          # the reduction, in order
        gv = dy[n, f0:f0+16, q]                      # one vector load (dy transposed to (q, f))
        for p < B:  sum[p] += xpad[c_p, oy*s + i_p, ox*s + j_p] * gv    # B FMAs

:func:`blocked_weight_grad` runs it; each sum starts from, and goes back to,
its lane's partial dW, images in order (:mod:`numpy_cnn.kernels.threads`:
the same bits on any number of threads).

The input gradient, :func:`blocked_input_grad`, is the forward's loop again:
one stride-1 correlation of dy with flipped taps per phase of the stride
(:func:`input_grad_phases` derives them). ``conv_gemm.gemm_conv_backward``
calls both for the layers :func:`fits` takes, instead of its unfold, GEMMs
and col2im (``docs/performance.md``, "Register-blocked backward").
"""

from __future__ import annotations

import numpy as np
from numba import prange

from numpy_cnn.kernels._cpu import vector_registers
from numpy_cnn.kernels._jit import jit
from numpy_cnn.kernels.choice import blocked_takes
from numpy_cnn.kernels.layout import scratch
from numpy_cnn.kernels.simd import (LANES, block_offsets, fma_broadcast, load16, load_rows, offsets_at, repeat,
                                    store_rows, store_transposed)
from numpy_cnn.kernels.threads import lane_sum, lanes, share, threads_for

__all__ = ["POSITIONS", "fits", "blocked_forward", "blocked_weight_grad", "input_grad_phases", "blocked_input_grad"]

# Output positions per block: 12 sums in zmm registers (AVX-512), or 6 in pairs of ymm (AVX2).
# A compile-time constant; the code generator's feature string, which decides it, is also the
# on-disk cache's key (numpy_cnn.kernels._cpu), so code for one is never loaded for the other.
POSITIONS = 12 if vector_registers() >= 32 else 6


def fits(dtype: np.dtype, out_channels: int, outputs_per_image: int, terms: int) -> bool:
    """Whether :func:`blocked_forward` takes a layer: a block's outputs per image, and
    :func:`numpy_cnn.kernels.choice.blocked_takes` (float32, channels a multiple of 16, at
    least BLOCKED_MIN_TERMS = 64 terms a sum, where the measurement is)."""
    return outputs_per_image >= POSITIONS and blocked_takes(dtype, out_channels, terms)


def _vector_groups(w: np.ndarray) -> np.ndarray:
    """w (F, C, kH, kW) -> (F/16, C, kH, kW, 16): each term's 16 output channels side by side,
    one vector load (a view; the callers copy it where it must sit)."""
    F, C, kh, kw = w.shape
    return w.reshape(F // LANES, LANES, C, kh, kw).transpose(0, 2, 3, 4, 1)


@jit()
def _padded(x, n, pad, xp):
    """xp (C, H + 2*pad, W + 2*pad) = image n of x with a border of ``pad`` zeros (written every time: xp is reused)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xp[:] = 0
    for c in range(C):
        for r in range(H):
            xp[c, pad + r, pad:pad + W] = x[n, c, r]


@jit()
def _image(xp, wb, bias, stride_row, stride_col, wo, origin, y, n):
    """y[n] (F, H'*W') from xp (C, Hp, Wp), image n with its zero border, its
    window starting ``origin`` floats into each channel; wb (F/16, C, kH, kW, 16)."""
    groups, C, kh, kw = wb.shape[0], wb.shape[1], wb.shape[2], wb.shape[3]
    P = y.shape[2]
    hp, wp = xp.shape[1], xp.shape[2]
    for g in range(groups):
        q0 = 0
        while q0 < P:
            q0 = min(q0, P - POSITIONS)            # the last block overlaps the one before
            corner = block_offsets(q0 // wo, q0 % wo, wo, stride_row * wp, stride_col, POSITIONS)
            sums = repeat(load16(bias, g * LANES), POSITIONS)
            term = g * C * kh * kw                 # wb's row of this group's first term
            for c in range(C):
                for i in range(kh):
                    tap = (c * hp + i) * wp + origin   # xp[c, i, 0] (of the window) from a position's corner
                    for j in range(kw):
                        sums = fma_broadcast(sums, xp, corner, tap + j, load16(wb, (term + j) * LANES))
                    term += kw
            # (positions x channels) -> y's 16 rows (NCHW): transposed in registers, a vector store a row
            store_transposed(y[n], g * LANES * P + q0, P, sums)
            q0 += POSITIONS


@jit(parallel=True)
def _forward_threads(x, wb, bias, pad, stride_row, stride_col, wo, threads, xp, y):
    """Thread t (a prange iteration) computes images share(t, threads, N) of y (N, F, H'*W')."""
    for t in prange(threads):
        lo, hi = share(t, threads, x.shape[0])
        for n in range(lo, hi):
            if pad:
                _padded(x, n, pad, xp[t])
                _image(xp[t], wb, bias, stride_row, stride_col, wo, 0, y, n)
            else:
                _image(x[n], wb, bias, stride_row, stride_col, wo, 0, y, n)


def blocked_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: tuple[int, int],
                    padding: int) -> np.ndarray:
    """x: (N, C, H, W), w: (F, C, kH, kW), b: (F,) -> y: (N, F, H', W'), float32, when :func:`fits`.

    ``H' = (H + 2*padding - kH) // stride[0] + 1``, ``W'`` likewise with
    ``stride[1]``; one padding for both axes. Shapes are the caller's to
    check (:func:`numpy_cnn.kernels.conv_direct.conv2d_forward` does).
    """
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    ho, wo = (H + 2 * padding - kh) // stride[0] + 1, (W + 2 * padding - kw) // stride[1] + 1
    # (on a cache line, as scratch memory starts: no 64-byte weight load then splits across two lines)
    wb = scratch("blocked_weights", (F // LANES, C, kh, kw, LANES), x.dtype)
    wb[...] = _vector_groups(w)
    hp, wp = H + 2 * padding, W + 2 * padding
    threads = threads_for(N, N * ho * wo * C * kh * kw * F)
    xp = scratch("blocked_xp", (threads, C, hp, wp), x.dtype)
    y = np.empty((N, F, ho, wo), dtype=x.dtype)
    _forward_threads(x, wb, b, padding, stride[0], stride[1], wo, threads, xp, y.reshape(N, F, ho * wo))
    return y


# ----------------------------------------------------------------------------
# The weight gradient: B terms x 16 output channels in registers, summed over positions
# ----------------------------------------------------------------------------

@jit()
def _image_grad(xp, dyt, terms, stride_row, stride_col, wo, dw):
    """dw (K', F) += image n's part: ``dw[k, f] += sum_q dyt[q, f] * xp.flat[terms[k] + corner(q)]``,
    with xp (C, Hp, Wp) the image and its zero border, dyt (H'*W', F) its dy transposed,
    terms[k] the offset of term k = (c, i, j) in xp and K' a multiple of POSITIONS."""
    K, F, P = dw.shape[0], dw.shape[1], dyt.shape[0]
    for f0 in range(0, F, LANES):
        for k0 in range(0, K, POSITIONS):
            offsets = offsets_at(terms, k0, POSITIONS)
            sums = load_rows(dw, k0 * F + f0, F, POSITIONS)      # the lane's partial sums so far
            q = 0
            for oy in range(P // wo):
                for ox in range(wo):
                    sums = fma_broadcast(sums, xp, offsets, oy * stride_row + ox * stride_col,
                                         load16(dyt, q * F + f0))
                    q += 1
            store_rows(dw, k0 * F + f0, F, sums)


@jit(parallel=True)
def _weight_grad_threads(x, dy, pad, terms, stride_row, stride_col, wo, threads, xp, dyt, dw_lanes, db_lanes):
    """Lane l adds images share(l, L, N), in order, into dw_lanes[l] (K', F) and db_lanes[l] (F,);
    thread t (a prange iteration) runs lanes share(t, threads, L). dy: (N, F, H'*W')."""
    N, F, P = dy.shape[0], dy.shape[1], dy.shape[2]
    n_lanes = dw_lanes.shape[0]
    for t in prange(threads):
        lane0, lane1 = share(t, threads, n_lanes)
        for lane in range(lane0, lane1):
            n0, n1 = share(lane, n_lanes, N)
            for n in range(n0, n1):
                for f in range(F):                           # dy[n] transposed, and db
                    s = db_lanes[lane, f]
                    for q in range(P):
                        dyt[t, q, f] = dy[n, f, q]
                        s += dy[n, f, q]
                    db_lanes[lane, f] = s
                if pad:
                    _padded(x, n, pad, xp[t])
                    _image_grad(xp[t], dyt[t], terms, stride_row, stride_col, wo, dw_lanes[lane])
                else:
                    _image_grad(x[n], dyt[t], terms, stride_row, stride_col, wo, dw_lanes[lane])


def blocked_weight_grad(x: np.ndarray, grad_y: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int],
                        padding: int) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, C, H, W), grad_y: (N, F, H', W') -> (dw (F, C, kH, kW), db (F,)), float32, when :func:`fits`.

    The weight and bias gradients of :func:`blocked_forward`'s layer (same
    stride and padding), new arrays; the input gradient is the caller's.
    """
    N, C, H, W = x.shape
    F, ho, wo = grad_y.shape[1], grad_y.shape[2], grad_y.shape[3]
    kh, kw = kernel_size
    hp, wp = H + 2 * padding, W + 2 * padding
    K = C * kh * kw
    # Term k = (c, i, j)'s offset in the padded image; the last block's spare terms read offset 0
    # into sums that are dropped, so that every block is a whole one.
    c, i, j = np.meshgrid(np.arange(C), np.arange(kh), np.arange(kw), indexing="ij")
    terms = np.zeros(-(-K // POSITIONS) * POSITIONS, dtype=np.int64)
    terms[:K] = ((c * hp + i) * wp + j).reshape(-1)
    n_lanes, threads = lanes(N, threads_for(N, N * ho * wo * K * F))
    dw = np.zeros((n_lanes, len(terms), F), dtype=x.dtype)
    db = np.zeros((n_lanes, F), dtype=x.dtype)
    xp = scratch("blocked_xp", (threads, C, hp, wp), x.dtype)
    dyt = scratch("blocked_dyt", (threads, ho * wo, F), x.dtype)   # on a line: dy's vector loads do not split
    _weight_grad_threads(x, np.ascontiguousarray(grad_y).reshape(N, F, ho * wo), padding, terms,
                         stride[0] * wp, stride[1], wo, threads, xp, dyt, dw, db)
    return np.ascontiguousarray(lane_sum(dw)[:K].T.reshape(F, C, kh, kw)), lane_sum(db)


# ----------------------------------------------------------------------------
# The input gradient: the forward's loops over grad_y, one stride-1 convolution per phase
# ----------------------------------------------------------------------------

def input_grad_phases(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: tuple[int, int],
                      padding: int) -> list[tuple[int, int, slice, slice, int, int]]:
    """The phases of dx that some tap reaches: ``(a, b, rows, cols, top, left)`` each.

    ``dx[n, c, s*u + a, s*v + b]`` (one phase: rows a, a+s, ... and columns b, b+s, ...)
    gets ``w[f, c, i, j] * dy[n, f, oy, ox]`` exactly where ``s*oy + i = s*u + a + p``:
    the taps ``i = i0, i0 + s, ...`` with ``i0 = (a + p) % s``, each at ``oy = u + (a + p - i)/s``.
    So a phase is a stride-1 correlation of dy with those taps, flipped (``rows``, ``cols``:
    w's slices), over dy's window from row ``top`` and column ``left`` (may be negative:
    zeros). At stride 1 there is one phase: dy padded by kH-1-p, the whole kernel flipped.
    """
    _, _, H, W = x_shape
    _, _, kh, kw = w_shape
    out = []
    for a in range(min(stride[0], H)):
        for b in range(min(stride[1], W)):
            i0, j0 = (a + padding) % stride[0], (b + padding) % stride[1]
            m, n = len(range(i0, kh, stride[0])), len(range(j0, kw, stride[1]))
            if m and n:
                top = (a + padding - i0) // stride[0] - (m - 1)
                left = (b + padding - j0) // stride[1] - (n - 1)
                rows = slice(i0 + stride[0] * (m - 1), None if i0 == 0 else i0 - 1, -stride[0])
                cols = slice(j0 + stride[1] * (n - 1), None if j0 == 0 else j0 - 1, -stride[1])
                out.append((a, b, rows, cols, top, left))
    return out


def blocked_input_grad(grad_y: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], stride: tuple[int, int],
                       padding: int) -> np.ndarray | None:
    """grad_y: (N, F, H', W'), w: (F, C, kH, kW) -> dx: x_shape (N, C, H, W), float32, or None
    where a phase does not fit the blocked forward (C a multiple of 16, 64 terms a sum):
    the caller's own loops then run.

    Per image (in cache): dy[n] with a zero border once, then each phase of
    :func:`input_grad_phases` as :func:`blocked_forward`'s loops over its window, with
    the phase's taps flipped and transposed to (C, F, m, n), and the phase's outputs
    written into its rows and columns of dx[n]; rows no tap reaches stay zero.
    """
    N, F, ho, wo = grad_y.shape
    C, H, W = w.shape[1], x_shape[2], x_shape[3]
    phases = input_grad_phases(x_shape, w.shape, stride, padding)
    if not phases:
        return None
    taps = [np.ascontiguousarray(w[:, :, rows, cols].transpose(1, 0, 2, 3)) for _, _, rows, cols, _, _ in phases]
    sizes = [(len(range(a, H, stride[0])), len(range(b, W, stride[1]))) for a, b, *_ in phases]
    if not all(fits(grad_y.dtype, C, hu * wv, t.size // C) for t, (hu, wv) in zip(taps, sizes)):
        return None
    # One border wide enough for every phase's window: rows top .. top + hu + m - 2 of dy.
    border = max(max(-top, top + hu + t.shape[2] - 1 - ho, -left, left + wv + t.shape[3] - 1 - wo, 0)
                 for (_, _, _, _, top, left), t, (hu, wv) in zip(phases, taps, sizes))
    wp = wo + 2 * border
    # The phases' weights one after another, each (C/16, F, m, n, 16) on whole cache lines
    # (F*m*n*16 floats a group: a multiple of 16); the table says where each phase's are.
    blocks = [_vector_groups(t).reshape(-1) for t in taps]
    wb = scratch("blocked_dx_weights", (sum(b.size for b in blocks),), grad_y.dtype)
    table = np.zeros((len(phases), 8), dtype=np.int64)
    at = 0
    for k, ((a, b, _, _, top, left), t, (hu, wv), block) in enumerate(zip(phases, taps, sizes, blocks)):
        wb[at:at + block.size] = block
        table[k] = a, b, at, t.shape[2], t.shape[3], (top + border) * wp + left + border, hu, wv
        at += block.size
    threads = threads_for(N, N * H * W * F * w.shape[2] * w.shape[3] * C // (stride[0] * stride[1]))
    every_phase = len(phases) == min(stride[0], H) * min(stride[1], W)     # then every dx is written
    dx = (np.empty if every_phase else np.zeros)(x_shape, dtype=grad_y.dtype)
    dyp = scratch("blocked_dyp", (threads, F, ho + 2 * border, wp), grad_y.dtype)
    y = scratch("blocked_dx_phase", (threads, C * max(hu * wv for hu, wv in sizes)), grad_y.dtype)
    _input_grad_threads(np.ascontiguousarray(grad_y), wb, table, np.zeros(C, grad_y.dtype), border,
                        stride[0], stride[1], threads, dyp, y, dx)
    return dx


@jit(parallel=True)
def _input_grad_threads(dy, wb, table, zero_bias, border, stride_row, stride_col, threads, dyp, y, dx):
    """Thread t computes images share(t, threads, N) of dx, phase by phase (``table``: one row
    ``a, b, offset of its weights in wb, m, n, origin of its window in dyp, hu, wv`` a phase)."""
    C, F = dx.shape[1], dy.shape[1]
    for t in prange(threads):
        lo, hi = share(t, threads, dy.shape[0])
        for n in range(lo, hi):
            _padded(dy, n, border, dyp[t])
            for k in range(table.shape[0]):
                a, b, at, m, nn, origin, hu, wv = (table[k, 0], table[k, 1], table[k, 2], table[k, 3],
                                                   table[k, 4], table[k, 5], table[k, 6], table[k, 7])
                taps = wb[at:at + C * F * m * nn].reshape((C // LANES, F, m, nn, LANES))
                phase = y[t, :C * hu * wv].reshape((1, C, hu * wv))
                _image(dyp[t], taps, zero_bias, 1, 1, wv, origin, phase, 0)
                for c in range(C):                  # the phase into its rows and columns of dx[n]
                    for u in range(hu):
                        for v in range(wv):
                            dx[n, c, a + stride_row * u, b + stride_col * v] = phase[0, c, u * wv + v]
