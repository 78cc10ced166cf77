"""Winograd F(2x2, 3x3): a 3x3 stride-1 convolution with 16 multiplies per 2x2 outputs instead of 36.

Cut the (zero-padded) input into 4x4 tiles ``d`` that overlap by 2, one per
2x2 block of outputs. For each tile and each (output, input) channel pair,
Lavin & Gray (2015, "Fast Algorithms for Convolutional Neural Networks")::

    Y = A^T [ (G w G^T)  (.)  (B^T d B) ] A         (.) = elementwise, 4x4
          \\__ U: 4x4 __/       \\_ V: 4x4 _/

    B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [ 0    0    1 ]

Summing over input channels c turns the elementwise product into 16 matrix
products, one per position xi = (a, b) of the 4x4 grid, over every tile t of
the batch::

    M[xi] = U[xi] @ V[xi]        U: (16, F, C)  V: (16, C, T)  ->  M: (16, F, T)

The 16 products are BLAS GEMMs (:func:`numpy_cnn.kernels.threads.batched_matmul`
spreads them over the cores); the transforms are numba loops. Multiplies:
16/36 = 0.44 of the direct convolution's, plus transforms that cost O(C + F)
per tile rather than O(C * F) (so the method pays with many channels).

Backward is the adjoint of each step, in reverse order (every step is linear)::

    dM[xi] = A dY A^T  (per tile; dY is the 2x2 block of grad_y, zeros past the edge)
    dU[xi] = dM[xi] @ V[xi]^T         -> dw = G^T dU G    (summed over tiles by the GEMM)
    dV[xi] = U[xi]^T @ dM[xi]         -> dx += B dV B^T   (tiles overlap: their sums add)

Padding is read, not copied: a tile's input rows and columns outside the
image are zeros written straight into the transform's buffer, and dx is
accumulated in a per-image buffer whose border is dropped when copied out.
Output sizes that are odd get one half-empty tile per row or column.
float32 rounding: the transforms add and subtract up to 9 inputs with
weights of 1 or 1/2, so results agree with the direct sum to a few ulp of
the largest term (the tests allow 1e-5 of the output's scale).
"""

import numpy as np

from numpy_cnn.kernels._jit import jit
from numpy_cnn.kernels.threads import split_work

__all__ = ["winograd_forward", "winograd_backward"]

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------
# The transforms: V = B^T d B (input), Y = A^T M A (output), and their adjoints
# ----------------------------------------------------------------------------

# Each kernel handles one chunk of images [n0, n1) and walks channels outside,
# tiles inside, so each of the 16 planes of v or m is read or written as one
# contiguous stream (images outside made 16 short scattered writes per tile
# and ran 3x slower). The drivers below give each thread its own chunks.

@jit()
def _input_tiles(x, n0, n1, pad, th, tw, v):
    """x[n0:n1]: (n, C, H, W) -> v: (C, 16, >= n*th*tw), v[c, 4a+b, t] = (B^T d B)[a, b] of tile t.

    Tile t = ((i - n0)*th + ty)*tw + tx of image i reads its padded rows
    2ty..2ty+3, columns 2tx..2tx+3.
    """
    _, C, H, W = x.shape
    wb = 2 * tw + 2                                    # >= W + 2*pad: every column a tile reads
    rows = np.zeros((4, wb), dtype=x.dtype)            # 4 padded input rows; the border stays 0
    bt_d = np.empty((4, wb), dtype=x.dtype)            # B^T applied down every column
    for c in range(C):
        for n in range(n0, n1):
            for ty in range(th):
                for r in range(4):
                    yy = 2 * ty + r - pad
                    if 0 <= yy < H:
                        for s in range(W):
                            rows[r, pad + s] = x[n, c, yy, s]
                    else:
                        for s in range(wb):
                            rows[r, s] = 0
                for s in range(wb):                    # B^T d: rows d0-d2, d1+d2, d2-d1, d1-d3
                    bt_d[0, s] = rows[0, s] - rows[2, s]
                    bt_d[1, s] = rows[1, s] + rows[2, s]
                    bt_d[2, s] = rows[2, s] - rows[1, s]
                    bt_d[3, s] = rows[1, s] - rows[3, s]
                base = ((n - n0) * th + ty) * tw
                for tx in range(tw):                   # (B^T d) B: the same along each row
                    s = 2 * tx
                    t = base + tx
                    for a in range(4):
                        v[c, 4 * a, t] = bt_d[a, s] - bt_d[a, s + 2]
                        v[c, 4 * a + 1, t] = bt_d[a, s + 1] + bt_d[a, s + 2]
                        v[c, 4 * a + 2, t] = bt_d[a, s + 2] - bt_d[a, s + 1]
                        v[c, 4 * a + 3, t] = bt_d[a, s + 1] - bt_d[a, s + 3]


@jit()
def _output_tiles(m, b, n0, n1, th, tw, y):
    """m: (F, 16, >= n*th*tw) -> y[n0:n1]: (n, F, HO, WO), y = A^T M A + b (outputs past the edge dropped)."""
    _, F, HO, WO = y.shape
    out = np.empty((2, 2 * tw), dtype=y.dtype)
    for f in range(F):
        bias = b[f]
        for n in range(n0, n1):
            for ty in range(th):
                base = ((n - n0) * th + ty) * tw
                for tx in range(tw):
                    t = base + tx
                    # A^T M: rows m0+m1+m2 and m1-m2-m3, for each column k
                    u00 = m[f, 0, t] + m[f, 4, t] + m[f, 8, t]
                    u01 = m[f, 1, t] + m[f, 5, t] + m[f, 9, t]
                    u02 = m[f, 2, t] + m[f, 6, t] + m[f, 10, t]
                    u03 = m[f, 3, t] + m[f, 7, t] + m[f, 11, t]
                    u10 = m[f, 4, t] - m[f, 8, t] - m[f, 12, t]
                    u11 = m[f, 5, t] - m[f, 9, t] - m[f, 13, t]
                    u12 = m[f, 6, t] - m[f, 10, t] - m[f, 14, t]
                    u13 = m[f, 7, t] - m[f, 11, t] - m[f, 15, t]
                    # (A^T M) A: the same along each row
                    out[0, 2 * tx] = bias + u00 + u01 + u02
                    out[0, 2 * tx + 1] = bias + u01 - u02 - u03
                    out[1, 2 * tx] = bias + u10 + u11 + u12
                    out[1, 2 * tx + 1] = bias + u11 - u12 - u13
                for i in range(min(2, HO - 2 * ty)):
                    for ox in range(WO):
                        y[n, f, 2 * ty + i, ox] = out[i, ox]


@jit()
def _grad_tiles(gy, n0, n1, th, tw, dm):
    """gy[n0:n1]: (n, F, HO, WO) -> dm: (F, 16, >= n*th*tw), dm = A dY A^T per tile (the adjoint of _output_tiles)."""
    _, F, HO, WO = gy.shape
    g = np.zeros((2, 2 * tw), dtype=gy.dtype)          # one row of 2x2 blocks; zeros past the edge
    for f in range(F):
        for n in range(n0, n1):
            for ty in range(th):
                for i in range(2):
                    if 2 * ty + i < HO:
                        for ox in range(WO):
                            g[i, ox] = gy[n, f, 2 * ty + i, ox]
                    else:
                        for ox in range(2 * tw):
                            g[i, ox] = 0
                base = ((n - n0) * th + ty) * tw
                for tx in range(tw):
                    t = base + tx
                    g00 = g[0, 2 * tx]
                    g01 = g[0, 2 * tx + 1]
                    g10 = g[1, 2 * tx]
                    g11 = g[1, 2 * tx + 1]
                    # A = [[1, 0], [1, 1], [1, -1], [0, -1]]: the rows of A g are
                    # g0, g0+g1, g0-g1, -g1; then the same along each row.
                    p0, q0 = g00, g01
                    p1, q1 = g00 + g10, g01 + g11
                    p2, q2 = g00 - g10, g01 - g11
                    p3, q3 = -g10, -g11
                    dm[f, 0, t] = p0
                    dm[f, 1, t] = p0 + q0
                    dm[f, 2, t] = p0 - q0
                    dm[f, 3, t] = -q0
                    dm[f, 4, t] = p1
                    dm[f, 5, t] = p1 + q1
                    dm[f, 6, t] = p1 - q1
                    dm[f, 7, t] = -q1
                    dm[f, 8, t] = p2
                    dm[f, 9, t] = p2 + q2
                    dm[f, 10, t] = p2 - q2
                    dm[f, 11, t] = -q2
                    dm[f, 12, t] = p3
                    dm[f, 13, t] = p3 + q3
                    dm[f, 14, t] = p3 - q3
                    dm[f, 15, t] = -q3


@jit()
def _input_grad_tiles(dv, n0, n1, pad, th, tw, dx):
    """dv: (C, 16, >= n*th*tw) -> dx[n0:n1]: (n, C, H, W), the sum over tiles of B dV B^T (the adjoint of _input_tiles)."""
    _, C, H, W = dx.shape
    wb = 2 * tw + 2
    acc = np.empty((2 * th + 2, wb), dtype=dx.dtype)       # dx of one padded image
    e = np.empty((4, 4), dtype=dx.dtype)
    for c in range(C):
        for n in range(n0, n1):
            for r in range(2 * th + 2):
                for s in range(wb):
                    acc[r, s] = 0
            for ty in range(th):
                base = ((n - n0) * th + ty) * tw
                for tx in range(tw):
                    t = base + tx
                    # B dV down each column b: B = [[1,0,0,0],[0,1,-1,1],[-1,1,1,0],[0,0,0,-1]]
                    for b in range(4):
                        v0 = dv[c, b, t]
                        v1 = dv[c, 4 + b, t]
                        v2 = dv[c, 8 + b, t]
                        v3 = dv[c, 12 + b, t]
                        e[0, b] = v0
                        e[1, b] = v1 - v2 + v3
                        e[2, b] = v1 + v2 - v0
                        e[3, b] = -v3
                    # (B dV) B^T along each row, added into the tile's 4x4 window
                    s = 2 * tx
                    for r in range(4):
                        row = acc[2 * ty + r]
                        row[s] += e[r, 0]
                        row[s + 1] += e[r, 1] - e[r, 2] + e[r, 3]
                        row[s + 2] += e[r, 1] + e[r, 2] - e[r, 0]
                        row[s + 3] -= e[r, 3]
            for r in range(H):
                for s in range(W):
                    dx[n, c, r, s] = acc[r + pad, pad + s]


# ----------------------------------------------------------------------------
# The public functions
# ----------------------------------------------------------------------------

def _tiles(H, W, pad):
    """(HO, WO, th, tw): output size and 2x2 tiles per column and row."""
    HO, WO = H + 2 * pad - 2, W + 2 * pad - 2
    return HO, WO, (HO + 1) // 2, (WO + 1) // 2


def _planes(channels, tiles, dtype):
    """An empty (channels, 16, Tp) array for the 16 transformed planes of ``tiles`` tiles.

    Tp is ``tiles`` rounded up to an odd multiple of 16 floats: the 16 planes a
    transform writes at once are then 64 * odd bytes apart, which puts them in
    16 different L1 cache sets. (With Tp a multiple of 1024, all 16 streams
    fall into one set and the transforms ran 2-3x slower.)
    """
    tp = -(-tiles // 16) * 16
    tp += 16 * (1 - (tp // 16) % 2)
    return np.empty((channels, 16, tp), dtype=dtype)


def _as_matrices(planes, tiles):
    """(K, 16, Tp) planes -> the (16, K, tiles) stack of matrices the GEMMs read and write (a view)."""
    return planes.transpose(1, 0, 2)[:, :, :tiles]


def _weight_tiles(w):
    """w: (F, C, 3, 3) -> U: (16, F, C), U[4a+b] = (G w G^T)[a, b]."""
    F, C = w.shape[:2]
    g = G.astype(w.dtype)
    u = g @ w @ g.T                                                     # (F, C, 4, 4)
    return np.ascontiguousarray(u.reshape(F, C, 16).transpose(2, 0, 1))


# A chunk is about this many tiles: its planes (C*16*TILES_PER_CHUNK floats,
# 1 MB at C = 64) stay in the L2 cache between the transform and the GEMM,
# and the GEMMs are still wide enough for BLAS to run near its peak.
TILES_PER_CHUNK = 256


def _chunked(n_images, tiles_per_image, work):
    """Run ``work(n0, n1, scratch)`` on chunks of images, each thread its own slice of the batch.

    ``scratch`` is a dict the thread's chunks share (its buffers are made once
    per thread). Returns the list of each thread's ``scratch`` when done.
    """
    per_chunk = max(1, TILES_PER_CHUNK // tiles_per_image)

    def run(lo, hi):
        scratch = {}
        for n0 in range(lo, hi, per_chunk):
            work(n0, min(n0 + per_chunk, hi), scratch)
        return scratch

    return split_work(run, n_images)


def _buffers(scratch, shapes, dtype):
    """The thread's (K, 16, Tp) plane buffers named in ``shapes`` (name: (K, tiles)), made on first use."""
    for name, (k, tiles) in shapes.items():
        if name not in scratch:
            scratch[name] = _planes(k, tiles, dtype)
    return [scratch[name] for name in shapes]


def winograd_forward(x, w, b, padding=0):
    """x: (N, C, H, W), w: (F, C, 3, 3), b: (F,) -> y: (N, F, H', W'), stride 1, ``H' = H + 2*padding - 2``."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    F = w.shape[0]
    HO, WO, th, tw = _tiles(H, W, padding)
    u = _weight_tiles(w)
    b = np.ascontiguousarray(b, dtype=x.dtype)
    y = np.empty((N, F, HO, WO), dtype=x.dtype)
    most = max(1, TILES_PER_CHUNK // (th * tw)) * th * tw

    def work(n0, n1, scratch):
        t = (n1 - n0) * th * tw
        v, m = _buffers(scratch, {"v": (C, most), "m": (F, most)}, x.dtype)
        _input_tiles(x, n0, n1, padding, th, tw, v)
        np.matmul(u, _as_matrices(v, t), out=_as_matrices(m, t))       # M[xi] = U[xi] @ V[xi]
        _output_tiles(m, b, n0, n1, th, tw, y)

    _chunked(N, th * tw, work)
    return y


def winograd_backward(grad_y, x, w, padding=0, need_input_grad=True):
    """Gradients of winograd_forward: ``-> (dx or None, dw, db)``.

    grad_y: (N, F, H', W'); x: (N, C, H, W) and w: (F, C, 3, 3) as given to the
    forward pass (V is recomputed from x, chunk by chunk, rather than stored).
    New arrays of w's dtype; nothing accumulates across calls.
    """
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    F = w.shape[0]
    _, _, th, tw = _tiles(H, W, padding)
    grad_y = np.ascontiguousarray(grad_y, dtype=x.dtype)
    u_t = _weight_tiles(w).transpose(0, 2, 1)                            # (16, C, F)
    dx = np.empty((N, C, H, W), dtype=x.dtype) if need_input_grad else None
    most = max(1, TILES_PER_CHUNK // (th * tw)) * th * tw

    def work(n0, n1, scratch):
        t = (n1 - n0) * th * tw
        v, dm = _buffers(scratch, {"v": (C, most), "dm": (F, most)}, x.dtype)
        _input_tiles(x, n0, n1, padding, th, tw, v)
        _grad_tiles(grad_y, n0, n1, th, tw, dm)
        dm_t = _as_matrices(dm, t)                                      # (16, F, t)
        du = dm_t @ _as_matrices(v, t).transpose(0, 2, 1)               # dU[xi] = dM[xi] @ V[xi]^T
        scratch["du"] = scratch["du"] + du if "du" in scratch else du
        if need_input_grad:
            np.matmul(u_t, dm_t, out=_as_matrices(v, t))                 # dV[xi] = U[xi]^T @ dM[xi], into v
            _input_grad_tiles(v, n0, n1, padding, th, tw, dx)

    du = sum(scratch["du"] for scratch in _chunked(N, th * tw, work))
    g = G.astype(x.dtype)
    dw = g.T @ du.transpose(1, 2, 0).reshape(F, C, 4, 4) @ g           # G^T dU G: (F, C, 3, 3)
    return dx, np.ascontiguousarray(dw), grad_y.sum(axis=(0, 2, 3))
