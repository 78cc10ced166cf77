"""im2col + GEMM convolution in cache-sized chunks, channels last: any kernel, stride and padding.

The algorithm is the textbook one of :mod:`numpy_cnn.nn.im2col` (read that
first); only the layout and the order of work differ. For a chunk of images,
with ``P = H'*W'`` output positions per image and ``K = kH*kW*C``::

    cols[q, (i*kW + j)*C + c] = xpad[n, c, oy*s + i, ox*s + j]     q = (n*H' + oy)*W' + ox
    W2[(i*kW + j)*C + c, f]   = w[f, c, i, j]                       (K, F)

    y     = cols @ W2 + b          (P_chunk, F), then back to NCHW
    dW2  += cols^T @ dy            (K, F), summed over chunks in a fixed order
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
in-cache operands closer to the CPU's peak than a whole-batch matrix
(``docs/performance.md``, "im2col + GEMM"). One numba ``prange``
loop runs every chunk; the GEMMs are single-threaded OpenBLAS called from
inside it (:mod:`numpy_cnn.kernels.blas`). The chunks are cut by the batch
and that budget alone, and backward sums dW in lanes of chunks, each in
order, the lanes added in lane order (:mod:`numpy_cnn.kernels.threads`):
every GEMM has the same shape, and dW the same bits, on any number of threads.

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

On the grid's stride-2 layer the GEMM alone takes as long as PyTorch's whole
forward, so the copies around it are what is left to win; the per-step
figures and the layouts tried and dropped are in ``docs/performance.md``,
section "im2col + GEMM".
"""

from __future__ import annotations

import numpy as np

from numba import prange

from numpy_cnn.kernels import conv_blocked
from numpy_cnn.kernels._jit import REDUCE, jit
from numpy_cnn.kernels.blas import matmul
from numpy_cnn.kernels.layout import U, channels_first, channels_last, scratch
from numpy_cnn.kernels.threads import chunk_count, lane_sum, lanes, share, threads_for

__all__ = ["gemm_conv_forward", "gemm_conv_backward"]

# Floats of cols per chunk (whole images, at least one): 1 MB in float32,
# half the L2 cache of a Zen 4 core. Bigger chunks spend less per image on
# the calls around the GEMM, until dcols no longer stays in L2 for col2im
# (the sizes measured: docs/performance.md, "im2col + GEMM"). The batch is
# cut into near-equal chunks of at most that, and at least one per lane
# (numpy_cnn.kernels.threads.chunk_count).
COLS_PER_CHUNK = 1 << 18


# ----------------------------------------------------------------------------
# The unfold and its adjoint, on 2-D views of the channels-last chunk
# ----------------------------------------------------------------------------

# xp2 is the padded chunk (n, Hp, Wp, C) seen as (n*Hp, Wp*C): row (i, r)
# holds image row r, and the kW taps of one output position in one kernel
# row are the contiguous run xp2[i*Hp + r, ox*s*C : (ox*s + kW)*C].
# Indices are unsigned (U, see numpy_cnn.kernels.layout): numba then has no
# negative index to check and LLVM vectorises the copy of each run.


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

    (One pass over a chunk's memory rather than two.)
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


@jit()
def _images_to_rows(dy, n0, dyt):
    """dyt[f, i*P + q] = dy[n0 + i, f, q]: a chunk's grad_y with its images side by side, (F, n*P)."""
    n, P = dyt.shape[1] // dy.shape[2], dy.shape[2]
    for i in range(n):
        for f in range(dy.shape[1]):
            dyt[f, i * P:(i + 1) * P] = dy[n0 + i, f]


@jit(parallel=True)
def _forward_threads(x, pad, w2, bias, geometry, chunks, threads, xp, cols, out, y):
    """Every chunk of gemm_conv_forward: chunk c is images share(c, chunks, N), and
    thread t (a prange iteration) runs chunks share(t, threads, chunks).

    geometry: the unfold's arguments (:meth:`_Unfolder.geometry`); y: (N, F, P).
    """
    N, P = x.shape[0], y.shape[2]
    for t in prange(threads):
        c0, c1 = share(t, threads, chunks)
        for c in range(c0, c1):
            n0, n1 = share(c, chunks, N)
            rows = (n1 - n0) * P
            _nchw_to_cols(x, n0, pad, xp[t, :n1 - n0], *geometry, cols[t, :rows])
            matmul(cols[t, :rows], w2, out[t, :rows])                         # (n*P, K) @ (K, F)
            _to_nchw_bias(out[t, :rows], bias, n0, y)


@jit(parallel=True)
def _backward_threads(x, dy, pad, w_fk, geometry, chunks, threads, xp, cols, dyt, dcols, dxp, dw_lanes, db_lanes,
                      dx, weights):
    """Every chunk of gemm_conv_backward. No dx if dx is empty; no dW and db unless ``weights``.

    Chunk c is images share(c, chunks, N); lane l sums the dW2^T and db of its
    chunks, share(l, L, chunks), in order into dw_lanes[l] and db_lanes[l]
    (zeros), and thread t runs lanes share(t, threads, L): the sums' order is
    fixed by the batch alone (:mod:`numpy_cnn.kernels.threads`).
    """
    N, P = x.shape[0], dy.shape[2]
    n_lanes = dw_lanes.shape[0]
    for t in prange(threads):
        lane0, lane1 = share(t, threads, n_lanes)
        for lane in range(lane0, lane1):
            c0, c1 = share(lane, n_lanes, chunks)
            for c in range(c0, c1):
                n0, n1 = share(c, chunks, N)
                rows = (n1 - n0) * P
                # grad_y's images side by side, (F, n*P): both GEMMs then read it at full speed.
                _images_to_rows(dy, n0, dyt[t, :, :rows])
                if weights:
                    _nchw_to_cols(x, n0, pad, xp[t, :n1 - n0], *geometry, cols[t, :rows])
                    matmul(dyt[t, :, :rows], cols[t, :rows], dw_lanes[lane], 1.0)     # dW2^T (F, K) += dy^T @ cols
                    _add_bias_grad(dy, n0, n1, db_lanes[lane])
                if dx.size:
                    matmul(dyt[t, :, :rows].T, w_fk, dcols[t, :rows])              # dcols = dy @ W2^T
                    _cols_to_nchw(dcols[t, :rows], *geometry, dxp[t, :n1 - n0], n0, pad, dx)


@jit(parallel=True)
def _pointwise_forward(w2d, x, bias, threads, y):
    """y[n] = w2d @ x[n] + b for every image: x (N, C, P), y (N, F, P). (One GEMM per
    image, its shape the same on any number of threads.)"""
    for t in prange(threads):
        lo, hi = share(t, threads, x.shape[0])
        for n in range(lo, hi):
            matmul(w2d, x[n], y[n])
            _add_bias(y, bias, n, n + 1)                 # while y[n] is in the cache


@jit(parallel=True)
def _pointwise_backward(w2d, x, dy, threads, dw_lanes, db_lanes, dx):
    """dw_lanes[l] += dy[n] @ x[n]^T, db_lanes[l] += sum dy[n], dx[n] = w2d^T @ dy[n]. No dx if dx is empty.

    Each image is a chunk: lane l sums images share(l, L, N) in order into
    dw_lanes[l] and db_lanes[l] (zeros), and thread t runs lanes
    share(t, threads, L) (:mod:`numpy_cnn.kernels.threads`).
    """
    n_lanes = dw_lanes.shape[0]
    for t in prange(threads):
        lane0, lane1 = share(t, threads, n_lanes)
        for lane in range(lane0, lane1):
            lo, hi = share(lane, n_lanes, x.shape[0])
            for n in range(lo, hi):
                matmul(dy[n], x[n].T, dw_lanes[lane], 1.0)
                if dx.size:
                    matmul(w2d.T, dy[n], dx[n])
            _add_bias_grad(dy, lo, hi, db_lanes[lane])


def _lane_sums(n_lanes, F, K, dtype):
    """Zeroed scratch for the lanes' partial dW2^T (L, F, K) and db (L, F)
    (scratch: a fresh array of a few MB would be page-faulted in on every call)."""
    dw, db = scratch("gemm_dw", (n_lanes, F, K), dtype), scratch("gemm_db", (n_lanes, F), dtype)
    dw[:] = 0
    db[:] = 0
    return dw, db


class _Unfolder:
    """One layer's unfold geometry, its chunks of images, and each thread's scratch memory.

    The batch is cut into ``chunks`` near-equal chunks of at most ``most``
    images (:func:`numpy_cnn.kernels.threads.chunk_count`: by the batch and
    COLS_PER_CHUNK, never by the thread count, so a GEMM's row count and the
    order of dW's sums are the same on any number of threads). The forward
    runs them on ``threads``; the backward (``summed``) groups them into
    ``lanes`` run by ``threads`` <= lanes (:func:`numpy_cnn.kernels.threads.lanes`).
    """

    def __init__(self, x_shape, w_shape, stride, padding, dtype, gemms, summed=False):
        N, self.C, H, W = x_shape
        F = w_shape[0]
        self.kh, self.kw = w_shape[2:]
        self.stride = stride
        self.ho, self.wo, self.P, self.K = _geometry(x_shape, w_shape, stride, padding)
        self.hp, self.wp = H + 2 * padding, W + 2 * padding
        self.chunks = chunk_count(N, COLS_PER_CHUNK // (self.P * self.K))
        self.most = max(1, -(-N // max(1, self.chunks)))                 # images in the largest chunk
        threads = threads_for(N, gemms * N * self.P * self.K * F)
        if summed:
            self.lanes, self.threads = lanes(self.chunks, threads)
        else:
            self.threads = min(threads, max(1, self.chunks))
        self.dtype = dtype

    def geometry(self):
        """The arguments _unfold and _fold take after their array."""
        C = self.C
        return self.hp, self.kh, self.kw * C, self.stride * C, self.stride, self.ho, self.wo

    def images(self, name):
        """Scratch for a chunk of padded channels-last images per thread: (threads, most, Hp, Wp, C)."""
        return scratch(name, (self.threads, self.most, self.hp, self.wp, self.C), self.dtype)

    def rows(self, name, width):
        """Scratch for a chunk's rows of ``width`` per thread: (threads, most*P, width)."""
        return scratch(name, (self.threads, self.most * self.P, width), self.dtype)


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
        w2d = np.ascontiguousarray(w.reshape(F, K), dtype=x.dtype)
        _pointwise_forward(w2d, x.reshape(N, K, P), b, threads_for(N, N * P * K * F), y.reshape(N, F, P))
        return y
    unfolder = _Unfolder(x.shape, w.shape, stride, padding, x.dtype, 1)
    w2 = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=x.dtype).reshape(K, F)
    _forward_threads(x, padding, w2, b, unfolder.geometry(), unfolder.chunks, unfolder.threads,
                     unfolder.images("gemm_xp"), unfolder.rows("gemm_cols", K), unfolder.rows("gemm_out", F),
                     y.reshape(N, F, P))
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
    N, C, H, W = x.shape
    F = w.shape[0]
    _, _, P, K = _geometry(x.shape, w.shape, stride, padding)
    dy = np.ascontiguousarray(grad_y, dtype=x.dtype).reshape(N, F, P)
    dx = np.empty(x.shape if need_input_grad else (0, C, H, W), dtype=x.dtype)
    gemms = 2 if need_input_grad else 1
    if _is_pointwise(w.shape, stride, padding):
        n_lanes, threads = lanes(N, threads_for(N, gemms * N * P * K * F))      # one image a chunk
        dw, db = _lane_sums(n_lanes, F, K, x.dtype)
        _pointwise_backward(np.ascontiguousarray(w.reshape(F, K), dtype=x.dtype), x.reshape(N, K, P), dy,
                            threads, dw, db, dx.reshape(len(dx), K, P))
        return dx if need_input_grad else None, lane_sum(dw).reshape(w.shape), lane_sum(db)

    # The register-blocked loops where they take the layer (no unfold and no GEMM; the time
    # on the grid's stride-2 layer: docs/performance.md, "Register-blocked backward"):
    # dW and db, and dx where each of its phases fits; the GEMMs below do the rest.
    blocked = conv_blocked.fits(x.dtype, F, P, K)
    if blocked:
        dy4 = dy.reshape(grad_y.shape)
        dw_blocked, db_blocked = conv_blocked.blocked_weight_grad(x, dy4, w.shape[2:], (stride, stride), padding)
        dx_blocked = conv_blocked.blocked_input_grad(dy4, np.ascontiguousarray(w, dtype=x.dtype), x.shape,
                                                     (stride, stride), padding) if need_input_grad else None
        if dx_blocked is not None or not need_input_grad:
            return dx_blocked, dw_blocked, db_blocked
    unfolder = _Unfolder(x.shape, w.shape, stride, padding, x.dtype, gemms, summed=True)
    w_fk = np.ascontiguousarray(w.transpose(0, 2, 3, 1), dtype=x.dtype).reshape(F, K)   # W2^T
    dw, db = _lane_sums(unfolder.lanes, F, K, x.dtype)
    dyt = scratch("gemm_dyt", (unfolder.threads, F, unfolder.most * P), x.dtype)
    xp = unfolder.images("gemm_xp")
    _backward_threads(x, dy, padding, w_fk, unfolder.geometry(), unfolder.chunks, unfolder.threads,
                      xp, unfolder.rows("gemm_cols", K), dyt, unfolder.rows("gemm_dcols", K),
                      unfolder.images("gemm_dxp") if need_input_grad else xp, dw, db, dx, not blocked)
    if blocked:
        return dx, dw_blocked, db_blocked
    dw = lane_sum(dw).reshape(F, *w.shape[2:], C)                        # (F, kH, kW, C)
    return dx if need_input_grad else None, np.ascontiguousarray(dw.transpose(0, 3, 1, 2)), lane_sum(db)
