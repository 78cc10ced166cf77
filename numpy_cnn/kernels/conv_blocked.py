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
"""

from __future__ import annotations

import numpy as np
from numba import prange

from numpy_cnn.kernels._cpu import vector_registers
from numpy_cnn.kernels._jit import jit
from numpy_cnn.kernels.choice import blocked_takes
from numpy_cnn.kernels.layout import scratch
from numpy_cnn.kernels.simd import LANES, block_offsets, fma_broadcast, load16, repeat, store_transposed
from numpy_cnn.kernels.threads import share, threads_for

__all__ = ["POSITIONS", "fits", "blocked_forward"]

# Output positions per block: 12 sums in zmm registers (AVX-512), or 6 in pairs of ymm (AVX2).
# A compile-time constant; the code generator's feature string, which decides it, is also the
# on-disk cache's key (numpy_cnn.kernels._cpu), so code for one is never loaded for the other.
POSITIONS = 12 if vector_registers() >= 32 else 6


def fits(dtype: np.dtype, out_channels: int, outputs_per_image: int, terms: int) -> bool:
    """Whether :func:`blocked_forward` takes a layer: a block's outputs per image, and
    :func:`numpy_cnn.kernels.choice.blocked_takes` (float32, channels a multiple of 16, at
    least BLOCKED_MIN_TERMS = 64 terms a sum, where the measurement is)."""
    return outputs_per_image >= POSITIONS and blocked_takes(dtype, out_channels, terms)


@jit()
def _padded(x, n, pad, xp):
    """xp (C, H + 2*pad, W + 2*pad) = image n of x with a border of ``pad`` zeros (written every time: xp is reused)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xp[:] = 0
    for c in range(C):
        for r in range(H):
            xp[c, pad + r, pad:pad + W] = x[n, c, r]


@jit()
def _image(xp, wb, bias, stride_row, stride_col, wo, y, n):
    """y[n] (F, H'*W') from xp (C, Hp, Wp), image n with its zero border;
    wb (F/16, C, kH, kW, 16)."""
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
                    tap = (c * hp + i) * wp        # xp[c, i, 0] from a position's corner
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
                _image(xp[t], wb, bias, stride_row, stride_col, wo, y, n)
            else:
                _image(x[n], wb, bias, stride_row, stride_col, wo, y, n)


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
    wb[...] = w.reshape(F // LANES, LANES, C, kh, kw).transpose(0, 2, 3, 4, 1)
    hp, wp = H + 2 * padding, W + 2 * padding
    threads = threads_for(N, N * ho * wo * C * kh * kw * F)
    xp = scratch("blocked_xp", (threads, C, hp, wp), x.dtype)
    y = np.empty((N, F, ho, wo), dtype=x.dtype)
    _forward_threads(x, wb, b, padding, stride[0], stride[1], wo, threads, xp, y.reshape(N, F, ho * wo))
    return y
