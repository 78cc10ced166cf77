"""im2col + GEMM convolution in cache-sized chunks, channels last: any kernel, stride and padding.

The algorithm is the textbook one of :mod:`numpy_cnn.im2col` (read that
first); only the layout and the order of work differ. For a chunk of images,
with ``P = H'*W'`` output positions per image and ``K = kH*kW*C``::

    cols[q, (i*kW + j)*C + c] = xpad[n, c, oy*s + i, ox*s + j]     q = (n*H' + oy)*W' + ox
    W2[(i*kW + j)*C + c, f]   = w[f, c, i, j]                       (K, F)

    y     = cols @ W2 + b          (P_chunk, F), then back to NCHW
    dW2  += cols^T @ dy            (K, F), summed over chunks and threads
    db   += sum_q dy[q]            (F,)
    dcols = dy @ W2^T              (P_chunk, K), then col2im sums overlaps -> dx

Why channels last: a row of ``cols`` is kH runs of kW*C floats, each run
contiguous in the channels-last input ``xpad[n, oy*s + i, ox*s : ox*s + kW, :]``
whatever the stride, so the unfold is kH contiguous copies per output
position. The NCHW unfold this replaced (numba loops over the reference's
layout) copied runs of W' floats read at stride s, 12 floats at a time on a
24x24 stride-2 layer, and took longer than the GEMM itself.

Why chunks: a chunk is whole images whose ``cols`` fill about
COLS_PER_CHUNK floats, so the columns stay in the L2 cache from unfold to
GEMM (and in backward from GEMM to col2im). OpenBLAS multiplies such
in-cache operands at ~90% of this CPU's peak and the whole-batch matrix (10
MB at batch 64 on the stride-2 grid layer) at ~75%. Each thread runs its own
slice of the batch (:mod:`numpy_cnn.kernels.threads`) with single-threaded
BLAS and sums its own dW.

Layout of one thread's buffers (scratch memory that lives on from call to
call, :func:`numpy_cnn.kernels.layout.scratch`: fresh arrays of a few
hundred KB would be page-faulted in on every call)::

    xpad  (n, H + 2p, W + 2p, C)   the chunk channels last, its border written
                                   as zeros (no padded copy of the batch)
    cols  (n*P, K)                 the unfold, recomputed in backward rather
                                   than stored (it costs less than a GEMM)
    out   (n*P, F)                 forward's GEMM result, copied to NCHW + bias
    dyt   (F, n*P)                 backward: the chunk's grad_y, images side by side
    dcols (n*P, K), dxpad like xpad

A 1x1 kernel at stride 1 without padding needs no unfold: in NCHW its
columns are the image itself, ``y[n] = w2d @ x[n]`` with w2d (F, C) and
x[n] (C, H*W), so that case runs one GEMM per image on the arrays as given.

Measured per image on the grid's stride-2 layer (3x3, 32 -> 64 channels,
24x24 -> 12x12, float32, one thread, AMD EPYC Zen 4): the GEMM 56 us, the
channels-last copy 6 us, the unfold 4 us, the copy of y to NCHW with the
bias 3-7 us; PyTorch's whole forward is 55-57 us, so the GEMM alone ties it
and the copies are what is left to win. Tried and slower: a K-major unfold
straight from NCHW (the layout whose GEMM writes y in NCHW at once) in the
same chunks, 55 us, as its runs of W' floats read at stride s are too short
to vectorise; one gather from NCHW into cols, 20 us against the 15 of copy +
unfold at the time; the GEMM with y^T as its output, 70 us.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.kernels._jit import REDUCE, jit
from numpy_cnn.kernels.threads import split_work
from numpy_cnn.kernels.layout import U, channels_first, channels_last, scratch

__all__ = ["gemm_conv_forward", "gemm_conv_backward"]

# Floats of cols per chunk (whole images, at least one): 1 MB in float32,
# half the L2 cache of a Zen 4 core. On the stride-2 grid layer at batch 64
# (one thread, fwd+bwd against torch) 64, 128, 256 and 512 Ki floats gave
# 1.13, 1.08, 1.05 and 1.08: bigger chunks spend less on Python per image,
# until dcols no longer stays in L2 for col2im.
COLS_PER_CHUNK = 1 << 18


# ----------------------------------------------------------------------------
# The unfold and its adjoint, on 2-D views of the channels-last chunk
# ----------------------------------------------------------------------------

# xp2 is the padded chunk (n, Hp, Wp, C) seen as (n*Hp, Wp*C): row (i, r)
# holds image row r, and the kW taps of one output position in one kernel
# row are the contiguous run xp2[i*Hp + r, ox*s*C : (ox*s + kW)*C].
# Indices are unsigned (U, see numpy_cnn.kernels.layout): numba then has no
# negative index to check and LLVM vectorises the copy of each run (the
# unfold ran 4.1 -> 3.4 us per image of the stride-2 grid layer).


@jit()
def _unfold(xp2, rows_per_image, kh, run, stride_c, stride, ho, wo, cols):
    """cols[(i*ho + oy)*wo + ox, a*run : (a+1)*run] = xp2[i*Hp + oy*s + a, ox*s*C : ox*s*C + run]."""
    n = cols.shape[0] // (ho * wo)
    for i in range(n):
        for oy in range(ho):
            for ox in range(wo):
                q = U((i * ho + oy) * wo + ox)
                for a in range(kh):
                    r, c0, d0 = U(i * rows_per_image + oy * stride + a), U(ox * stride_c), U(a * run)
                    for t in range(U(run)):
                        cols[q, d0 + t] = xp2[r, c0 + t]


@jit()
def _nchw_to_cols(x, n0, pad, xp, rows_per_image, kh, run, stride_c, stride, ho, wo, cols):
    """Images n0 .. n0 + len(xp) of x -> xp (channels last, border written as 0) -> cols.

    One numba call rather than two: each call from a worker thread gives up
    the GIL and takes it back, and waiting for it costs tens of microseconds
    on the VM this was tuned on (see numpy_cnn.kernels.winograd).
    """
    n, hp, wp, C = xp.shape
    channels_last(x, n0, n0 + n, pad, xp)
    _unfold(xp.reshape(n * hp, wp * C), rows_per_image, kh, run, stride_c, stride, ho, wo, cols)


@jit()
def _fold(dcols, rows_per_image, kh, run, stride_c, stride, ho, wo, dxp2):
    """The adjoint of _unfold: dxp2 += each run of dcols at the place it was read from (overlaps add)."""
    n = dcols.shape[0] // (ho * wo)
    for i in range(n):
        for oy in range(ho):
            for ox in range(wo):
                q = U((i * ho + oy) * wo + ox)
                for a in range(kh):
                    r, c0, d0 = U(i * rows_per_image + oy * stride + a), U(ox * stride_c), U(a * run)
                    for t in range(U(run)):
                        dxp2[r, c0 + t] += dcols[q, d0 + t]


@jit()
def _cols_to_nchw(dcols, rows_per_image, kh, run, stride_c, stride, ho, wo, dxp, n0, pad, dx):
    """dcols -> dxp (channels last, overlaps summed) -> images n0 .. n0 + len(dxp) of dx, its border dropped.

    The adjoint of :func:`_nchw_to_cols`, in one numba call for the same reason.
    """
    n, hp, wp, C = dxp.shape
    dxp[:] = 0
    _fold(dcols, rows_per_image, kh, run, stride_c, stride, ho, wo, dxp.reshape(n * hp, wp * C))
    channels_first(dxp, n0, pad, dx)


@jit()
def _to_nchw_bias(out, bias, n0, y):
    """y[n0 + i, f, q] = out[i*P + q, f] + bias[f] for each image i of the chunk: (n*P, F) -> NCHW."""
    n_img, F, P = out.shape[0] // y.shape[2], y.shape[1], y.shape[2]
    for i in range(n_img):
        yi = y[n0 + i]
        for q in range(P):
            row = out[i * P + q]
            for f in range(F):
                yi[f, q] = row[f] + bias[f]


@jit()
def _add_bias(y, bias, n0, n1):
    """y[n, f, q] += bias[f] for n0 <= n < n1 (NumPy's broadcast add took 3-4x longer)."""
    for n in range(n0, n1):
        for f in range(y.shape[1]):
            row = y[n, f]
            bf = bias[f]
            for q in range(row.shape[0]):
                row[q] += bf


@jit(fastmath=REDUCE)
def _add_bias_grad(dy, n0, n1, db):
    """db[f] += sum_q dy[n, f, q] for n0 <= n < n1 (NumPy's dy.sum(axis=(0, 2)) took ~5x longer)."""
    for n in range(n0, n1):
        for f in range(dy.shape[1]):
            row = dy[n, f]
            total = db[f]
            for q in range(row.shape[0]):
                total += row[q]
            db[f] = total


# ----------------------------------------------------------------------------
# The public functions
# ----------------------------------------------------------------------------

def _geometry(x_shape, w_shape, stride, padding):
    """(H', W', P, K) for x: (N, C, H, W) and w: (F, C, kH, kW)."""
    _, C, H, W = x_shape
    _, _, kh, kw = w_shape
    ho, wo = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    return ho, wo, ho * wo, kh * kw * C


def _is_pointwise(w_shape, stride, padding):
    """A 1x1 kernel at stride 1 with no padding: its NCHW columns are the image itself."""
    return w_shape[2:] == (1, 1) and stride == 1 and padding == 0


def _chunked(n_images, floats_per_image, macs, work):
    """Run ``work(n0, n1, state)`` on chunks of whole images, each thread its own slice of the batch.

    ``state`` is a dict one thread's chunks share: ``work`` carries its
    running sums there (its buffers are :func:`numpy_cnn.kernels.layout.scratch`
    memory). ``macs``, the call's multiply-adds, decides how many threads are
    worth waking (:func:`numpy_cnn.kernels.threads.split_work`). Returns each
    thread's ``state``.
    """
    most = max(1, COLS_PER_CHUNK // floats_per_image)

    def run(lo, hi):
        # Chunks of equal size rather than full ones and a remainder: 4 images at
        # most 3 per chunk run as 2 + 2, not 3 + 1.
        chunks = max(1, -(-(hi - lo) // most))                  # one empty chunk for an empty batch
        cuts = [lo + (hi - lo) * c // chunks for c in range(chunks + 1)]
        state = {}
        for n0, n1 in zip(cuts[:-1], cuts[1:]):
            work(n0, n1, state)
        return state

    return split_work(run, n_images, macs)


def _add(state, name, value):
    """state[name] += value (the first chunk's value is kept as it is)."""
    state[name] = state[name] + value if name in state else value


class _Unfolder:
    """One layer's unfold geometry: a chunk of NCHW images -> its cols (n*P, K), and the adjoint."""

    def __init__(self, x_shape, w_shape, stride, padding):
        _, self.C, self.H, self.W = x_shape
        self.kh, self.kw = w_shape[2:]
        self.stride, self.padding = stride, padding
        self.ho, self.wo, self.P, self.K = _geometry(x_shape, w_shape, stride, padding)
        self.hp, self.wp = self.H + 2 * padding, self.W + 2 * padding

    def _args(self):
        C = self.C
        return self.hp, self.kh, self.kw * C, self.stride * C, self.stride, self.ho, self.wo

    def cols(self, x, n0, n1):
        """x[n0:n1] -> cols (n*P, K), a view of the thread's scratch memory."""
        n = n1 - n0
        xp = scratch("gemm_xp", (n, self.hp, self.wp, self.C), x.dtype)
        cols = scratch("gemm_cols", (n * self.P, self.K), x.dtype)
        _nchw_to_cols(x, n0, self.padding, xp, *self._args(), cols)
        return cols

    def fold(self, dcols, n0, dx):
        """dx[n0:n0+n] = col2im(dcols), dcols (n*P, K)."""
        n = dcols.shape[0] // self.P
        dxp = scratch("gemm_dxp", (n, self.hp, self.wp, self.C), dcols.dtype)
        _cols_to_nchw(dcols, *self._args(), dxp, n0, self.padding, dx)


def gemm_conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                      padding: int = 0) -> np.ndarray:
    """x: (N, C, H, W), w: (F, C, kH, kW), b: (F,) -> y: (N, F, H', W'), ``H' = (H + 2p - kH) // s + 1``."""
    x = np.ascontiguousarray(x)
    N = x.shape[0]
    F = w.shape[0]
    ho, wo, P, K = _geometry(x.shape, w.shape, stride, padding)
    y = np.empty((N, F, ho, wo), dtype=x.dtype)
    b = np.ascontiguousarray(b, dtype=x.dtype)
    if _is_pointwise(w.shape, stride, padding):
        w2d, xs, ys = w.reshape(F, K).astype(x.dtype, copy=False), x.reshape(N, K, P), y.reshape(N, F, P)

        def work(n0, n1, state):
            np.matmul(w2d, xs[n0:n1], out=ys[n0:n1])                   # y[n] = w2d @ x[n]
            _add_bias(ys, b, n0, n1)
    else:
        unfolder = _Unfolder(x.shape, w.shape, stride, padding)
        w2 = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=x.dtype).reshape(K, F)

        def work(n0, n1, state):
            cols = unfolder.cols(x, n0, n1)
            out = scratch("gemm_out", (cols.shape[0], F), x.dtype)
            np.matmul(cols, w2, out=out)                                  # (n*P, K) @ (K, F)
            _to_nchw_bias(out, b, n0, y.reshape(N, F, P))

    _chunked(N, P * K, N * P * K * F, work)
    return y


def gemm_conv_backward(grad_y: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1,
                       padding: int = 0, need_input_grad: bool = True
                       ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of gemm_conv_forward: ``-> (dx or None, dw, db)``.

    grad_y: (N, F, H', W'); x: (N, C, H, W) and w: (F, C, kH, kW) as given to
    the forward pass (cols are recomputed from x, chunk by chunk). New arrays
    of x's dtype; nothing accumulates across calls.
    """
    x = np.ascontiguousarray(x)
    N = x.shape[0]
    F = w.shape[0]
    _, _, P, K = _geometry(x.shape, w.shape, stride, padding)
    dy = np.ascontiguousarray(grad_y, dtype=x.dtype).reshape(N, F, P)
    dx = np.empty(x.shape, dtype=x.dtype) if need_input_grad else None
    if _is_pointwise(w.shape, stride, padding):
        w2d, xs = w.reshape(F, K).astype(x.dtype, copy=False), x.reshape(N, K, P)

        def work(n0, n1, state):
            # dW = sum_n dy[n] @ x[n]^T; dx[n] = w2d^T @ dy[n]
            _add(state, "dw", np.matmul(dy[n0:n1], xs[n0:n1].transpose(0, 2, 1)).sum(axis=0))
            _add_bias_grad(dy, n0, n1, state.setdefault("db", np.zeros(F, x.dtype)))
            if need_input_grad:
                np.matmul(w2d.T, dy[n0:n1], out=dx[n0:n1].reshape(n1 - n0, K, P))

        parts = _chunked(N, P * K, (2 if need_input_grad else 1) * N * P * K * F, work)
        return dx, sum(p["dw"] for p in parts).reshape(w.shape), sum(p["db"] for p in parts)

    unfolder = _Unfolder(x.shape, w.shape, stride, padding)
    w_fk = np.ascontiguousarray(w.transpose(0, 2, 3, 1), dtype=x.dtype).reshape(F, K)   # W2^T

    def work(n0, n1, state):
        n = n1 - n0
        cols = unfolder.cols(x, n0, n1)
        # grad_y's images side by side, (F, n*P): both GEMMs then read it at full speed.
        dyt = scratch("gemm_dyt", (F, n * P), x.dtype)
        dyt.reshape(F, n, P)[:] = dy[n0:n1].transpose(1, 0, 2)
        _add(state, "dw", dyt @ cols)                                  # dW2^T (F, K) = dy^T @ cols
        _add_bias_grad(dy, n0, n1, state.setdefault("db", np.zeros(F, x.dtype)))
        if need_input_grad:
            dcols = scratch("gemm_dcols", (n * P, K), x.dtype)
            np.matmul(dyt.T, w_fk, out=dcols)                            # dcols = dy @ W2^T
            unfolder.fold(dcols, n0, dx)

    parts = _chunked(N, P * K, (2 if need_input_grad else 1) * N * P * K * F, work)
    dw = sum(p["dw"] for p in parts).reshape(F, *w.shape[2:], -1)       # (F, kH, kW, C)
    return dx, np.ascontiguousarray(dw.transpose(0, 3, 1, 2)), sum(p["db"] for p in parts)
