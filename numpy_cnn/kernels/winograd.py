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
products, one per position xi = (a, b) of the 4x4 grid, over the tiles t::

    M[xi] = V[xi] @ U[xi]^T      V: (16, T, C)  U: (16, F, C)  ->  M: (16, T, F)

The 16 products are BLAS GEMMs; the transforms are numba loops. Multiplies:
16/36 = 0.44 of the direct convolution's, plus transforms that cost O(C + F)
per tile rather than O(C * F) (so the method pays with many channels).

Backward is the adjoint of each step, in reverse order (every step is linear)::

    dM[xi] = A dY A^T  (per tile; dY is the 2x2 block of grad_y, zeros past the edge)
    dU[xi]^T = V[xi]^T @ dM[xi]      -> dw = G^T dU G    (the GEMM sums over tiles)
    dV[xi] = dM[xi] @ U[xi]          -> dx += B dV B^T   (tiles overlap: their sums add)

Work is done in chunks of about CHUNK_BYTES of V and M (whole images), so a
chunk's V and M stay in the L2 cache from transform to GEMM to transform.
One numba ``prange`` loop runs every chunk; the GEMMs are OpenBLAS called
from inside it (:mod:`numpy_cnn.kernels.blas`). The chunks are cut by the
batch and that budget alone, and backward sums dU in lanes of chunks, each
in order, the lanes added in lane order (:mod:`numpy_cnn.kernels.threads`):
every GEMM has the same shape, and dw the same bits, on any number of
threads. V is not stored between forward and backward: backward
transforms x again (cheaper than keeping 16/9 of an im2col matrix).
Padding needs no padded copy of the input: each chunk is copied once into a
channels-last buffer with a border of zeros, and dx is accumulated in such a
buffer and copied out without its border. Output sizes that are odd get one
half-empty tile per row or column.
float32 rounding: the transforms add and subtract up to 9 inputs with
weights of 1 or 1/2, so results agree with the direct sum to a few ulp of
the largest term (the tests allow 1e-5 of the output's scale).
"""

from functools import cache

import numpy as np
from numba import prange

from numpy_cnn.kernels._jit import jit
from numpy_cnn.kernels.blas import matmul
from numpy_cnn.kernels.layout import U, channels_first, channels_last, scratch
from numpy_cnn.kernels.threads import chunk_count, lane_sum, lanes, share, threads_for

__all__ = ["winograd_forward", "winograd_backward"]

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
A = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, -1.0]])
SIGNS = np.array([-1.0, 1.0, -1.0, -1.0])   # the sign of the second term of each row of B^T


# ----------------------------------------------------------------------------
# The transforms: V = B^T d B (input), Y = A^T M A (output), and their adjoints
# ----------------------------------------------------------------------------

# Layout: channels last. Each chunk of images is copied to (n, rows, cols, C)
# with its zero padding (numpy_cnn.kernels.layout, which also says why the
# loops index with unsigned integers), and the 16 planes are stored as
# (16, tiles, C): the innermost loop of every transform then runs over
# channels, contiguous in memory, and vectorises (8 or 16 channels per
# instruction). Transforms over
# NCHW rows vectorise only along a tile row, 6 tiles long on a 12x12 input,
# and took a far larger share of the layer's time (docs/performance.md,
# "Winograd F(2x2, 3x3)").

@jit()
def _b(v0, v1, v2, v3):
    """B applied to a column of 4 values (the adjoint of B^T's, see _input_tiles)."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


@jit()
def _input_tiles(xp, th, tw, v, signs):
    """xp: (n, 2th+2, 2tw+2, C) padded input -> v[4a+b, t*C + c] = (B^T d B)[a, b] of tile t, channel c.

    Tile t = (i*th + ty)*tw + tx reads rows 2ty..2ty+3, columns 2tx..2tx+3 of image i.
    signs = [-1, 1, -1, -1] in xp's dtype (a float64 literal would turn float32 sums into float64 ones).
    """
    n, rows, cols, C = xp.shape
    pixels = xp.reshape(n * rows * cols, C)            # one row per pixel
    step = U(cols)                                    # from one image row to the next
    for i in range(n):
        for ty in range(th):
            for tx in range(tw):
                o = U(((i * th + ty) * tw + tx) * C)
                corner = U((i * rows + 2 * ty) * cols + 2 * tx)     # the tile's top-left pixel
                for a in range(4):             # B^T d: two rows of the tile, combined
                    sign = signs[a]
                    if a == 0:
                        lo, hi = U(0), U(2)            # d0 - d2
                    elif a == 1:
                        lo, hi = U(1), U(2)            # d1 + d2
                    elif a == 2:
                        lo, hi = U(2), U(1)            # d2 - d1
                    else:
                        lo, hi = U(1), U(3)            # d1 - d3
                    p, q = corner + lo * step, corner + hi * step
                    k = U(4 * a)
                    for c in range(U(C)):      # (B^T d) B: the same along the row
                        e0 = pixels[p, c] + sign * pixels[q, c]
                        e1 = pixels[p + U(1), c] + sign * pixels[q + U(1), c]
                        e2 = pixels[p + U(2), c] + sign * pixels[q + U(2), c]
                        e3 = pixels[p + U(3), c] + sign * pixels[q + U(3), c]
                        v[k, o + c] = e0 - e2
                        v[k + U(1), o + c] = e1 + e2
                        v[k + U(2), o + c] = e2 - e1
                        v[k + U(3), o + c] = e1 - e3


@jit()
def _output_tiles(m, bias, th, tw, yt, signs):
    """m[4a+b, t*F + f] -> yt: (n, 2th, 2tw, F), each tile's 2x2 block A^T M A + bias. signs as for _input_tiles."""
    n, _, _, F = yt.shape
    for i in range(n):
        for ty in range(th):
            for tx in range(tw):
                o = U(((i * th + ty) * tw + tx) * F)
                r, s = 2 * ty, 2 * tx
                for j in range(2):              # row j of A^T M: m0 + (m1 + m2), or m1 - (m2 + m3)
                    sign = signs[2 * j + 1]            # +1, then -1
                    k = U(4 * j)
                    y0 = yt[i, r + j, s]               # two outputs' channels (views: faster
                    y1 = yt[i, r + j, s + 1]           # here than unsigned indices, measured)
                    for f in range(U(F)):       # ... then A along the row, the same way
                        u0 = m[k, o + f] + sign * (m[k + U(4), o + f] + m[k + U(8), o + f])
                        u1 = m[k + U(1), o + f] + sign * (m[k + U(5), o + f] + m[k + U(9), o + f])
                        u2 = m[k + U(2), o + f] + sign * (m[k + U(6), o + f] + m[k + U(10), o + f])
                        u3 = m[k + U(3), o + f] + sign * (m[k + U(7), o + f] + m[k + U(11), o + f])
                        y0[f] = bias[f] + u0 + u1 + u2
                        y1[f] = bias[f] + u1 - u2 - u3


@jit()
def _grad_tiles(gt, th, tw, dm, a_mat):
    """gt: (n, 2th, 2tw, F) grad_y, zeros past the edge -> dm[4a+b, t*F + f] = (A dY A^T)[a, b].

    The adjoint of _output_tiles. a_mat is A = [[1, 0], [1, 1], [1, -1], [0, -1]]
    in gt's dtype: row a of A dY is A[a, 0]*g0 + A[a, 1]*g1 (g0, g1 the two rows
    of dY), exact, since every entry is 0 or +-1; then the same along the row.
    """
    n, _, _, F = gt.shape
    for i in range(n):
        for ty in range(th):
            for tx in range(tw):
                o = ((i * th + ty) * tw + tx) * F
                r, s = 2 * ty, 2 * tx
                g00, g01, g10, g11 = gt[i, r, s], gt[i, r, s + 1], gt[i, r + 1, s], gt[i, r + 1, s + 1]
                for a in range(4):
                    w0, w1 = a_mat[a, 0], a_mat[a, 1]
                    d0, d1, d2, d3 = dm[4 * a, o:o + F], dm[4 * a + 1, o:o + F], dm[4 * a + 2, o:o + F], dm[4 * a + 3, o:o + F]
                    for f in range(F):
                        p = w0 * g00[f] + w1 * g10[f]
                        q = w0 * g01[f] + w1 * g11[f]
                        d0[f] = p
                        d1[f] = p + q
                        d2[f] = p - q
                        d3[f] = -q


@jit()
def _add_row(dv, q, a, pixels, p, c):
    """pixels[p + b, c] += (B dV B^T)[a, b] for b < 4: row a of one tile's transform, channel c.

    dV[k, b] = dv[4k + b, q]. B goes down each column b of dV, then along
    row a of the result. Called with a literal a: once inlined, the other
    rows' values (and their loads) drop out.
    """
    e0 = _b(dv[U(0), q], dv[U(4), q], dv[U(8), q], dv[U(12), q])
    e1 = _b(dv[U(1), q], dv[U(5), q], dv[U(9), q], dv[U(13), q])
    e2 = _b(dv[U(2), q], dv[U(6), q], dv[U(10), q], dv[U(14), q])
    e3 = _b(dv[U(3), q], dv[U(7), q], dv[U(11), q], dv[U(15), q])
    d0, d1, d2, d3 = _b(e0[a], e1[a], e2[a], e3[a])
    pixels[p, c] += d0
    pixels[p + U(1), c] += d1
    pixels[p + U(2), c] += d2
    pixels[p + U(3), c] += d3


@jit()
def _input_grad_tiles(dv, th, tw, dxp):
    """dv[4a+b, t*C + c] -> dxp: (n, 2th+2, 2tw+2, C) += B dV B^T of every tile (the adjoint of _input_tiles).

    Neighbouring tiles overlap by 2 rows or columns: their sums add up.
    Indexed with unsigned integers as _input_tiles is, and one pass over the
    channels per row of the tile: the loop over c then writes 4 rows of dxp,
    not 16 (LLVM would need too many run-time checks that 16 rows do not
    overlap, and left that loop scalar), and it vectorises. Every element
    gets the same sum as one pass would give it, in the same order.
    """
    n, rows, cols, C = dxp.shape
    pixels = dxp.reshape(n * rows * cols, C)           # one row per pixel
    step = U(cols)                                    # from one image row to the next
    for i in range(n):
        for ty in range(th):
            for tx in range(tw):
                o = U(((i * th + ty) * tw + tx) * C)
                corner = U((i * rows + 2 * ty) * cols + 2 * tx)     # the tile's top-left pixel
                for c in range(U(C)):
                    _add_row(dv, o + c, 0, pixels, corner, c)
                for c in range(U(C)):
                    _add_row(dv, o + c, 1, pixels, corner + step, c)
                for c in range(U(C)):
                    _add_row(dv, o + c, 2, pixels, corner + U(2) * step, c)
                for c in range(U(C)):
                    _add_row(dv, o + c, 3, pixels, corner + U(3) * step, c)


# ----------------------------------------------------------------------------
# One chunk's steps around its GEMMs, and the threads that run the chunks
# ----------------------------------------------------------------------------

# Each step is a copy fused with a transform: one pass over the chunk's
# memory rather than two.

@jit()
def _nchw_to_v(x, n0, off, xp, th, tw, v, signs):
    """Images n0 .. n0 + len(xp) of x (N, C, H, W) -> xp (channels last, padded) -> V planes."""
    channels_last(x, n0, n0 + xp.shape[0], off, xp)
    _input_tiles(xp, th, tw, v, signs)


@jit()
def _m_to_nchw(m, bias, th, tw, yt, n0, y, signs):
    """M planes -> yt (channels last, + bias) -> images n0 .. n0 + len(yt) of y (N, F, H', W')."""
    _output_tiles(m, bias, th, tw, yt, signs)
    channels_first(yt, n0, 0, y)


@jit()
def _nchw_to_dm(grad_y, n0, gt, th, tw, dm, a_mat):
    """Images n0 .. n0 + len(gt) of grad_y -> gt (channels last, zeros past the edge) -> dM planes."""
    channels_last(grad_y, n0, n0 + gt.shape[0], 0, gt)
    _grad_tiles(gt, th, tw, dm, a_mat)


@jit()
def _dv_to_nchw(dv, th, tw, dxp, n0, off, dx):
    """dV planes -> dxp (channels last, padded, summed over overlapping tiles) -> images n0 .. of dx."""
    dxp[:] = 0
    _input_grad_tiles(dv, th, tw, dxp)
    channels_first(dxp, n0, off, dx)


# ----------------------------------------------------------------------------
# The public functions
# ----------------------------------------------------------------------------

def _tiles(H, W, pad):
    """(HO, WO, th, tw): output size and 2x2 tiles per column and row."""
    HO, WO = H + 2 * pad - 2, W + 2 * pad - 2
    return HO, WO, (HO + 1) // 2, (WO + 1) // 2


def _planes(name, size, dtype, threads=1):
    """Scratch memory ``name`` (:func:`numpy_cnn.kernels.layout.scratch`) for
    16 transformed planes of ``size`` floats each, per thread: (threads, 16, S).

    S is ``size`` rounded up to an odd multiple of 16 floats: the 16 planes a
    transform writes at once are then 64 * odd bytes apart, which puts them in
    16 different L1 cache sets. (With S a multiple of 1024, all 16 streams fall
    into one set, and the transforms ran 2-3x slower.)
    """
    s = -(-size // 16) * 16
    s += 16 * (1 - (s // 16) % 2)
    return scratch(name, (threads, 16, s), dtype)


@cache
def _constants(dtype):
    """(G, A, SIGNS) in ``dtype``, made once per dtype (a float64 constant in a
    float32 kernel would turn its sums into float64 ones)."""
    return G.astype(dtype), A.astype(dtype), SIGNS.astype(dtype)


@jit()
def _g(v0, v1, v2, half):
    """G applied to a column of 3 values: (v0, (v0 + v1 + v2)/2, (v0 - v1 + v2)/2, v2)."""
    return v0, half * (v0 + v1 + v2), half * (v0 - v1 + v2), v2


@jit()
def _weight_tiles_kernel(taps, half, u):
    """taps: (9, P), taps[3i + j, p] = w[.., .., i, j] of pair p -> u: (16, P), u[4a+b, p] = (G w G^T)[a, b].

    One loop over the (channel, channel) pairs, contiguous in every row, so
    it vectorises (a loop per pair over its 3x3 kernel did not, and was
    several times slower). half = 0.5 in the arrays' dtype.
    """
    for p in range(U(taps.shape[1])):
        # G w: G down each of the three columns of the kernel ...
        a0, a1, a2, a3 = _g(taps[U(0), p], taps[U(3), p], taps[U(6), p], half)
        b0, b1, b2, b3 = _g(taps[U(1), p], taps[U(4), p], taps[U(7), p], half)
        c0, c1, c2, c3 = _g(taps[U(2), p], taps[U(5), p], taps[U(8), p], half)
        # ... then (G w) G^T: G along each of its four rows
        u[U(0), p], u[U(1), p], u[U(2), p], u[U(3), p] = _g(a0, b0, c0, half)
        u[U(4), p], u[U(5), p], u[U(6), p], u[U(7), p] = _g(a1, b1, c1, half)
        u[U(8), p], u[U(9), p], u[U(10), p], u[U(11), p] = _g(a2, b2, c2, half)
        u[U(12), p], u[U(13), p], u[U(14), p], u[U(15), p] = _g(a3, b3, c3, half)


def _weight_tiles(w, channels_out_last):
    """w: (F, C, 3, 3) -> U[4a+b] = (G w G^T)[a, b], as (16, C, F) if ``channels_out_last`` else (16, F, C).

    U is a view of the calling thread's scratch memory (valid until its next
    call), its 16 planes at an odd multiple of 16 floats apart, as V's and
    M's: planes 8 KB apart (32 x 64 channels) share one set of the L1 cache,
    and the transform ran 9x slower.
    """
    F, C = w.shape[:2]
    order, shape = ((2, 3, 1, 0), (16, C, F)) if channels_out_last else ((2, 3, 0, 1), (16, F, C))
    taps = _planes("weight_taps", F * C, w.dtype)[0, :9, :F * C]
    taps[:] = w.transpose(order).reshape(9, F * C)
    u = _planes("weight_tiles", F * C, w.dtype)[0, :, :F * C]
    _weight_tiles_kernel(taps, _constants(w.dtype)[0][1, 0], u)
    return u.reshape(shape)


def _weight_grad(du_t):
    """dU^T: (16, C, F) -> dw: (F, C, 3, 3) = G^T dU G, the adjoint of :func:`_weight_tiles`."""
    _, C, F = du_t.shape
    g = _constants(du_t.dtype)[0]
    du = du_t.reshape(4, 4, C, F)                                       # du[a, b, c, f]
    t = np.tensordot(g, du, axes=([0], [0]))                            # (3, 4, C, F): G^T dU
    dw = np.tensordot(t, g, axes=([1], [0]))                            # (3, C, F, 3): G^T dU G
    return np.ascontiguousarray(dw.transpose(2, 1, 0, 3))


# A chunk is as many whole images (at least one) as make its V and M, 16 *
# (C + F) floats a tile, about CHUNK_BYTES: few enough that they stay in the
# L2 cache from transform to GEMM to transform. 0.5-1 MB was near the best
# on every shape measured, bigger chunks lost (docs/performance.md,
# "Winograd F(2x2, 3x3)"). The batch is cut into near-equal chunks of at
# most that many images, and at least one per lane
# (numpy_cnn.kernels.threads.chunk_count): a budget of 9 cuts 64 images into 8 x 8.
CHUNK_BYTES = 1 << 20


def _work(tiles, C, F, gemms):
    """A call's work for :func:`numpy_cnn.kernels.threads.threads_for`, in multiply-adds.

    Its GEMMs do 16*C*F multiply-adds a tile (``gemms`` of them: 1 forward,
    2 backward with dx); its transforms and copies write 16*(C+F) values a
    tile, counted as 4 multiply-adds each.
    """
    return tiles * 16 * (gemms * C * F + 4 * (C + F))


class _Plan:
    """One call's chunks and threads, and each thread's scratch memory.

    The batch is cut into ``chunks`` near-equal chunks of at most
    ``per_chunk`` images, by the batch and CHUNK_BYTES alone
    (:func:`numpy_cnn.kernels.threads.chunk_count`), so every GEMM has the
    same shape on any number of threads. The forward runs them on
    ``threads``; the backward (``summed``) sums dU in ``lanes`` of chunks
    run by ``threads`` <= lanes (:func:`numpy_cnn.kernels.threads.lanes`).
    """

    def __init__(self, x_shape, F, padding, gemms, dtype, summed=False):
        N, C, H, W = x_shape
        self.HO, self.WO, self.th, self.tw = _tiles(H, W, padding)
        per_image = self.th * self.tw
        budget = max(1, round(CHUNK_BYTES / (16 * (C + F) * per_image * dtype.itemsize)))
        self.chunks = chunk_count(N, budget)
        self.per_chunk = max(1, -(-N // max(1, self.chunks)))           # images in the largest chunk
        threads = threads_for(N, _work(N * per_image, C, F, gemms))
        if summed:
            self.lanes, self.threads = lanes(self.chunks, threads)
        else:
            self.threads = min(threads, max(1, self.chunks))
        self.tiles = self.per_chunk * per_image          # a full chunk's tiles
        self.dtype = dtype

    def images(self, name, rows, cols, channels):
        """Scratch for a chunk of images per thread: (threads, per_chunk, rows, cols, channels)."""
        return scratch(name, (self.threads, self.per_chunk, rows, cols, channels), self.dtype)

    def planes(self, name, k):
        """Scratch for the 16 transformed planes per thread, and the same memory as
        matrices: (threads, 16, S) and (threads, 16, tiles, k) (see :func:`_planes`)."""
        flat = _planes(name, self.tiles * k, self.dtype, self.threads)
        return flat, flat[:, :, :self.tiles * k].reshape(self.threads, 16, self.tiles, k)


@jit(parallel=True)
def _forward_threads(x, pad, u_t, bias, th, tw, chunks, threads, xp, v, vm, m, mm, yt, y, signs):
    """Every chunk of winograd_forward: chunk c is images share(c, chunks, N), and
    thread t (a prange iteration) runs chunks share(t, threads, chunks)."""
    N = x.shape[0]
    for t in prange(threads):
        c0, c1 = share(t, threads, chunks)
        for c in range(c0, c1):
            n0, n1 = share(c, chunks, N)
            n = n1 - n0
            tiles = n * th * tw
            _nchw_to_v(x, n0, pad, xp[t, :n], th, tw, v[t], signs)
            for k in range(16):                                          # M[xi] = V[xi] @ U[xi]^T
                matmul(vm[t, k, :tiles], u_t[k], mm[t, k, :tiles])
            _m_to_nchw(m[t], bias, th, tw, yt[t, :n], n0, y, signs)


@jit(parallel=True)
def _backward_threads(x, grad_y, pad, u, th, tw, chunks, threads, xp, gt, v, vm, dm, dmm, du_lanes,
                      dxp, dx, signs, a_mat):
    """Every chunk of winograd_backward. No dx if dx is empty.

    Chunk c is images share(c, chunks, N); lane l sums the dU^T of its chunks,
    share(l, L, chunks), in order into du_lanes[l] (zeros), and thread t runs
    lanes share(t, threads, L): the sums' order is fixed by the batch alone
    (:mod:`numpy_cnn.kernels.threads`).
    """
    N = x.shape[0]
    n_lanes = du_lanes.shape[0]
    for t in prange(threads):
        lane0, lane1 = share(t, threads, n_lanes)
        for lane in range(lane0, lane1):
            c0, c1 = share(lane, n_lanes, chunks)
            for c in range(c0, c1):
                n0, n1 = share(c, chunks, N)
                n = n1 - n0
                tiles = n * th * tw
                _nchw_to_v(x, n0, pad, xp[t, :n], th, tw, v[t], signs)
                _nchw_to_dm(grad_y, n0, gt[t, :n], th, tw, dm[t], a_mat)
                for k in range(16):
                    matmul(vm[t, k, :tiles].T, dmm[t, k, :tiles], du_lanes[lane, k], 1.0)   # dU[xi]^T += V^T @ dM
                    if dx.size:
                        matmul(dmm[t, k, :tiles], u[k], vm[t, k, :tiles])       # dV[xi] = dM[xi] @ U[xi], into V
                if dx.size:
                    _dv_to_nchw(v[t], th, tw, dxp[t, :n], n0, pad, dx)


def winograd_forward(x, w, b, padding=0):
    """x: (N, C, H, W), w: (F, C, 3, 3), b: (F,) -> y: (N, F, H', W'), stride 1, ``H' = H + 2*padding - 2``."""
    x = np.ascontiguousarray(x)
    N, C, H, W = x.shape
    F = w.shape[0]
    plan = _Plan(x.shape, F, padding, 1, x.dtype)
    th, tw = plan.th, plan.tw
    u_t = _weight_tiles(w.astype(x.dtype, copy=False), channels_out_last=True)    # (16, C, F)
    b = np.ascontiguousarray(b, dtype=x.dtype)
    y = np.empty((N, F, plan.HO, plan.WO), dtype=x.dtype)
    _forward_threads(x, padding, u_t, b, th, tw, plan.chunks, plan.threads,
                     plan.images("xp", 2 * th + 2, 2 * tw + 2, C), *plan.planes("v", C), *plan.planes("m", F),
                     plan.images("yt", 2 * th, 2 * tw, F), y, _constants(x.dtype)[2])
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
    plan = _Plan(x.shape, F, padding, 2 if need_input_grad else 1, x.dtype, summed=True)
    th, tw = plan.th, plan.tw
    grad_y = np.ascontiguousarray(grad_y, dtype=x.dtype)
    u = _weight_tiles(w.astype(x.dtype, copy=False), channels_out_last=False)     # (16, F, C)
    _, a_mat, signs = _constants(x.dtype)
    dx = np.empty((N, C, H, W) if need_input_grad else (0, C, H, W), dtype=x.dtype)
    du_lanes = scratch("du_lanes", (plan.lanes, 16, C, F), x.dtype)
    du_lanes[:] = 0     # (zeroed here: an array assignment inside the prange loop made backward 4% slower)
    xp = plan.images("xp", 2 * th + 2, 2 * tw + 2, C)
    _backward_threads(x, grad_y, padding, u, th, tw, plan.chunks, plan.threads, xp,
                      plan.images("gt", 2 * th, 2 * tw, F), *plan.planes("v", C), *plan.planes("m", F), du_lanes,
                      plan.images("dxp", 2 * th + 2, 2 * tw + 2, C) if need_input_grad else xp, dx, signs, a_mat)
    return dx if need_input_grad else None, _weight_grad(lane_sum(du_lanes)), grad_y.sum(axis=(0, 2, 3))
