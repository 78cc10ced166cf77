"""Direct 2-D convolution in numba: forward, and backward for dx, dw, db.

"Convolution" here is cross-correlation, as in PyTorch's ``conv2d``::

    y[n, f, oy, ox] = b[f] + sum_{c, ky, kx} w[f, c, ky, kx] * x[n, c, s*oy + ky, s*ox + kx]

Shapes (NCHW, weights stored as PyTorch stores them)::

    x: (N, C, H, W),  w: (F, C, kH, kW),  b: (F,)  ->  y: (N, F, H', W')
    H' = (H + 2*p - kH) // s + 1,   W' = (W + 2*p - kW) // s + 1

float32 and float64 both work (float64 is what the gradient checks use); x, w
and b must share one dtype.

The flat-row trick
------------------
Store one channel of one image row after row, ``xf[r*W + col] = x[r, col]``.
For stride 1, output position (oy, ox) gets the flat index ``j = oy*W + ox``,
and the input that tap (ky, kx) needs sits at ``(ky*W + kx) + j``::

    y_flat[f, j] += w[f, c, ky, kx] * xf[c, (ky*W + kx) + j]     for j = 0 .. L-1
    L = (H'-1)*W + W'

So each tap is ONE long contiguous loop over j with a fixed shift: exactly
what a CPU vectorises (8 or 16 floats per instruction). The price: for j
with ``j % W >= W'`` the window runs off the right edge and wraps into the
next row. Those "wrap-around" outputs are computed and thrown away when the
result is copied into ``y``. Here that wastes (W - W')/W of the work: 4/48
for conv1 and 4/22 for conv2 of the paper's network::

    input row width W = 7, kernel 3 wide -> W' = 5
    j:      0  1  2  3  4 | 5  6 | 7  8  9 10 11 |12 13 | ...
    column: 0  1  2  3  4 | 5  6 | 0  1  2  3  4 | 5  6 |
            kept            dropped kept           dropped

The stacked layout: padding and the batch in one flat row
---------------------------------------------------------
The trick does not care where one image ends: put a chunk of images one
under another, per channel, and one pass over j covers them all. And the
zero padding need not be a padded copy of each image: one column of zeros
between two rows is the right padding of the first AND the left padding of
the second, because the window that runs off one row's right edge wraps
into the start of the next. The same holds for the zero rows between two
images. So with row pitch ``Wq = W + pw`` and image pitch ``Hq = H + ph``
rows (``pitches``: more only when the padding is at least the kernel)::

    two 2x3 images a, b, padding 1          xs[c, (n-n0)*Hq*Wq + (ph + r)*Wq + pw + col]
        0 0 0 0                                 = x[n, c, r, col], zeros elsewhere
        0 a a a
        0 a a a      each zero row and column is padding on both of its sides
        0 0 0 0
        0 b b b
        0 b b b
        0 0 0 0
        0

and ``y_flat[f, j]`` for ``j = (n-n0)*Hq*Wq + oy*Wq + ox`` is the output
(n, f, oy, ox); everything else is wrap-around, computed and dropped. The
copy into this layout (``_stacked``) is the only copy of x; one unpadded
image is already in it (a view, no copy).

Images can also go side by side: with ``across`` images in a stripe, a
stacked row holds row r of each of them (row pitch R = across*Wq, image i
of the chunk in stripe i // across at column (i % across)*Wq), and the
window that runs off one image's right edge reads the next one's left
edge, exactly as it wraps into the next row above. An unpadded layer wider
than 16 columns (the paper's) uses this: stacked one under another, each
image would add kH-1 dropped rows; side by side it adds none, and a pass
over j gets longer (see ``images_across``). A 12x12 image at padding 1 costs
13*13 = 169 outputs for 144 kept (a padded copy cost 11*14 + 12 = 166 in
passes of 166); at 48x48, 2401 for 2304.

The backward pass reuses the same loops on the same layout:

* dw[f, c, ky, kx] = sum_j g[f, j] * xs[c, ky*Wq + kx + j], a dot product,
  where ``g`` is grad_y laid out on the same flat rows with ZEROS in the
  wrap-around positions (so the thrown-away outputs contribute nothing).
* dx is a "full" correlation of that zero-padded g with the kernel flipped
  in both directions and its two channel axes swapped. With ``P0 =
  (kH-1)*Wq + (kW-1)`` zeros put in front of g, it is the forward loop again::

      dx_flat[c, q] = sum_{f, ky, kx} w[f, c, kH-1-ky, kW-1-kx] * gpad[f, ky*Wq + kx + q]

  and dx[n, c, r, col] is read off at the position x[n, c, r, col] came from
  (a padding position gets a sum too, and is ignored).

Loop layout, and why
--------------------
The rules below were each measured against the code before them; the
figures, and what was tried and dropped, are in ``docs/performance.md``,
section "Direct convolution".

* Chunks (``chunk_starts``). ``prange`` over chunks of images (forward) or
  over runs of chunks (backward's lanes, :mod:`numpy_cnn.kernels.threads`:
  each lane sums its own dw, no two threads write to the same memory, and
  the lanes' parts are added in lane order, so dw has the same bits on any
  number of threads). The rule: an unpadded image wider than 16 columns
  goes in a chunk of :func:`images_across` images side by side; otherwise
  as many images, one under another, as keep a chunk's buffers within
  CHUNK_BYTES (a quarter of L2). Why: small images stacked make long
  passes over j, and a chunk that outgrows L2 slows down; stacked one
  under another, an unpadded image adds kH-1 dropped rows, side by side
  it adds none. The forward takes at most N/threads images a chunk so
  every thread has work: its sums keep their order however the batch is
  cut, so its numbers are the same to the last bit. The backward's chunks
  sum into dw, so they depend on the batch alone (at least one per lane,
  ``chunk_count``), and it keeps wide images one per chunk: side by side,
  its dw dot products would sum in another order (10-13% faster, but other
  last bits in every trained network's weights).
* The innermost loop is always j (contiguous). Around it, two output channels
  and five taps of one kernel row are done per pass: the five shifted input
  values are loaded once and used ten times, and each accumulator is loaded
  and stored once per five taps instead of once per tap (1.8x faster than
  one tap per pass). Four channels, or two kernel rows, per pass were
  measured slower; on AVX2 they need more than its 16 vector registers
  (weights reloaded from the stack every iteration), so AVX2 targets keep
  two channels, and AVX-512 targets (32 registers) take four (below).
  Kernel widths that are not a multiple of 5 do three leftover taps per
  pass if they can (a 3x3 kernel row is one such pass), then the rest one
  at a time. An odd number of output channels gets one zero row of weights
  so the pairs always line up.
* AVX-512 targets (32 vector registers) take FOUR output channels per
  five-tap pass (``FOUR_BY_FIVE``, ``_five_taps_four_channels``): twenty
  FMAs per five input loads and four accumulator loads and stores, where
  the two-channel pass needs more loads than its FMAs can hide on Intel's
  cores (``docs/performance.md``, "Intel: what limits each kernel"). Its
  20 weights, 5 inputs and sums take about 29 registers, so AVX2 targets
  keep the pairs; the choice is made when the kernels are compiled, from
  the features they are compiled for. Only for kernel widths that are a
  multiple of 5, and each sum adds its terms in the same order: every
  result is the same to the last bit on either path. The dw loop does the
  same (``_five_tap_dots_four_channels``: 20 dot products per 4 g and 5
  input loads, for any kernel width), and each dot product is vectorised
  as in the pairs, so dw keeps its bits too.
* Three taps take FOUR output channels per pass (``n_quad``; the pair o+2
  then skips its three-tap pass): twelve FMAs per three input loads and
  four accumulator loads and stores, against six per three and two. Its
  loop keeps 12 weights, 3 inputs and one sum at a time in 16 of the 32
  zmm registers (``inspect_asm``: no spills). The dw dot products are
  blocked the same way.
* The forward's sums sit in rows that start on 64-byte cache lines
  (``_line_aligned_rows``): a pass over j loads and stores them a vector at
  a time, and on Intel's AVX-512 cores a 64-byte access that straddles two
  lines costs two. The four-channel pass stores four vectors per twelve
  FMAs, so there it was the limit (``docs/performance.md``, "Intel: what
  limits each kernel"). The backward's stacked gradient rows are laid out
  the same way, with element P0 (where the dw loop starts reading) on a
  line. The sums' order, and so every result, is unchanged.
* The copies between the stacked layout and y, g and dx cost per row, not
  per byte, so they index with unsigned offsets from one view per image
  (numba then has no negative index to check).
* The j loop is bound by FMA throughput (ten vector FMAs per 16 outputs),
  so the wrap-around columns are the main cost left: conv2 (22 -> 18 wide)
  computes 22% more than it keeps, which is why it is the one layer where
  PyTorch's forward (oneDNN, no waste) stays ahead at batch 64. Only fewer
  multiplications could win there; Winograd along the height and im2col
  with one GEMM per image were tried and did not beat this loop.
* Stride > 1 becomes stride 1 by the polyphase split
  (:mod:`numpy_cnn.kernels.conv_phases`): the s phases of each split axis
  (every s-th row, every s-th column) go in as channels, with the kernel
  split the same way, and the drivers above run that stride-1 layer. The
  height is always split; the width only where the split kernel's passes
  cost no more (``conv_phases.split_plan``): a 3-wide kernel at stride 2
  keeps its width whole, and that axis alone is still computed at stride 1
  with every s-th output kept (and, backward, grad_y spread out with zeros
  in between): 2x the work along it, in three-tap passes. At stride 2 this
  is 1.1-2.2x faster than computing both axes at stride 1 was, up to 3x at
  stride 3, but still slower than ``im2col`` on the benchmark grid's
  stride-2 layer, so :mod:`numpy_cnn.kernels.choice` keeps im2col there.
"""

import numba
import numpy as np
from numba import prange

from numpy_cnn.kernels import conv_blocked, conv_phases
from numpy_cnn.kernels._cpu import vector_registers
from numpy_cnn.kernels._jit import CONTRACT, REDUCE, jit
from numpy_cnn.kernels.layout import U
from numpy_cnn.kernels.threads import chunk_count, lane_sum, lanes, share
from numpy_cnn.shapes import conv_output_size, pair

__all__ = ["conv2d_forward", "conv2d_backward", "conv_output_size"]


# Five taps x FOUR output channels per pass (_five_taps_four_channels) keeps
# 20 weights, 5 inputs and the sums in about 29 vector registers: only
# targets with 32 of them (AVX-512) take it; with AVX2's 16 the two-channel
# pass stays. Fixed at import from the features the kernels are compiled
# for (_cpu.target_features), and numba compiles a global in as a constant.
# That string is also part of numba's on-disk cache key, so code cached for
# one choice is never loaded for the other.
FOUR_BY_FIVE = vector_registers() >= 32


# ----------------------------------------------------------------------------
# The two inner loops: one for outputs (forward, dx), one for dot products (dw)
# ----------------------------------------------------------------------------

@jit(fastmath=CONTRACT)
def _five_taps_four_channels(s, w, o, i, ky, kx, a0, a1, a2, a3):
    """am[j] += sum_{t < 5} w[o + m, i, ky, kx + t] * s[j + t] for m < 4: one pass of _correlate_flat on AVX-512.

    a0..a3: the four output rows, contiguous 1-D views as in
    _three_taps_four_channels. Each sum adds its terms in the two-channel
    pass's order, a[j] + w0*s[j] + w1*s[j+1] + ... + w4*s[j+4], so the
    results are the same to the last bit. Twenty FMAs per five input loads
    and four sums loaded and stored, against ten per five and two; the loop
    holds 20 weights, 5 inputs and the sums in registers, which needs the 32
    of AVX-512 (FOUR_BY_FIVE).

    Two loops: j below a multiple of 16, then the rest. LLVM follows a vector
    loop with a scalar one for the last few j, and that one needs the 20
    weights as scalars too, in the registers that hold the vectors: 40 in
    all, and the vector loop reloaded 14 weights from the stack every
    iteration. A loop whose length is a multiple of 16 has no scalar
    remainder; the rest reads the weights again.
    """
    n = U(a0.shape[0])
    whole = n - n % U(16)                    # a multiple of every vector width (16 floats, 8 doubles)
    j = U(0)
    for part in range(2):                    # j < whole, then the rest
        last = whole if part == 0 else n
        # (read again for the rest: the stores into a0..a3 might have changed w, as far as LLVM knows,
        # so it cannot keep the first loop's weights live across that loop)
        p0, p1, p2, p3, p4 = (w[o, i, ky, kx], w[o, i, ky, kx + 1], w[o, i, ky, kx + 2],
                              w[o, i, ky, kx + 3], w[o, i, ky, kx + 4])
        q0, q1, q2, q3, q4 = (w[o + 1, i, ky, kx], w[o + 1, i, ky, kx + 1], w[o + 1, i, ky, kx + 2],
                              w[o + 1, i, ky, kx + 3], w[o + 1, i, ky, kx + 4])
        r0, r1, r2, r3, r4 = (w[o + 2, i, ky, kx], w[o + 2, i, ky, kx + 1], w[o + 2, i, ky, kx + 2],
                              w[o + 2, i, ky, kx + 3], w[o + 2, i, ky, kx + 4])
        t0, t1, t2, t3, t4 = (w[o + 3, i, ky, kx], w[o + 3, i, ky, kx + 1], w[o + 3, i, ky, kx + 2],
                              w[o + 3, i, ky, kx + 3], w[o + 3, i, ky, kx + 4])
        while j < last:
            x0 = s[j]
            x1 = s[j + U(1)]
            x2 = s[j + U(2)]
            x3 = s[j + U(3)]
            x4 = s[j + U(4)]
            a0[j] = a0[j] + p0 * x0 + p1 * x1 + p2 * x2 + p3 * x3 + p4 * x4
            a1[j] = a1[j] + q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3 + q4 * x4
            a2[j] = a2[j] + r0 * x0 + r1 * x1 + r2 * x2 + r3 * x3 + r4 * x4
            a3[j] = a3[j] + t0 * x0 + t1 * x1 + t2 * x2 + t3 * x3 + t4 * x4
            j += U(1)


@jit(fastmath=CONTRACT)
def _three_taps_four_channels(s, w, o, i, ky, kx, a0, a1, a2, a3):
    """am[j] += sum_{t < 3} w[o + m, i, ky, kx + t] * s[j + t] for m < 4: one pass of _correlate_flat.

    a0..a3: the four output rows, each a contiguous 1-D view (numba vectorises
    those; a 2-D slice of four rows would not be).
    (A function of its own: inlined in _correlate_flat's body it made LLVM
    compile that function's five-tap loop 2-4% slower.)
    """
    p0, p1, p2 = w[o, i, ky, kx], w[o, i, ky, kx + 1], w[o, i, ky, kx + 2]
    q0, q1, q2 = w[o + 1, i, ky, kx], w[o + 1, i, ky, kx + 1], w[o + 1, i, ky, kx + 2]
    r0, r1, r2 = w[o + 2, i, ky, kx], w[o + 2, i, ky, kx + 1], w[o + 2, i, ky, kx + 2]
    t0, t1, t2 = w[o + 3, i, ky, kx], w[o + 3, i, ky, kx + 1], w[o + 3, i, ky, kx + 2]
    for j in range(a0.shape[0]):
        x0 = s[j]
        x1 = s[j + 1]
        x2 = s[j + 2]
        a0[j] = a0[j] + p0 * x0 + p1 * x1 + p2 * x2
        a1[j] = a1[j] + q0 * x0 + q1 * x1 + q2 * x2
        a2[j] = a2[j] + r0 * x0 + r1 * x1 + r2 * x2
        a3[j] = a3[j] + t0 * x0 + t1 * x1 + t2 * x2


@jit(fastmath=CONTRACT)
def _correlate_flat(x, w, row_len, n_out, acc, nz_lo, nz_hi):
    """acc[o, j] += sum_{i, ky, kx} w[o, i, ky, kx] * x[i, ky*row_len + kx + j],  j < n_out.

    x: (Cin, length) with length >= (kH-1)*row_len + (kW-1) + n_out;
    w: (Cout, Cin, kH, kW) with Cout even; acc: (Cout, >= n_out).
    Only x[:, nz_lo:nz_hi] may be non-zero: each pass skips the j whose five
    inputs all lie outside it. (The forward pass gives the whole row; dx,
    whose input is grad_y with a border of zeros, skips about 18%.)
    With FOUR_BY_FIVE (AVX-512 targets) and kW a multiple of 5, the five-tap
    passes take four output channels at a time: each sum still gets its
    terms in the same order (the pair o + 2 has nothing else to add), so
    every result is the same to the last bit.
    """
    n_o, n_i, KH, KW = w.shape
    n_quad = n_o - n_o % 4                           # channels in groups of four
    # five taps x four channels per pass; only when kW is a multiple of 5: with taps left
    # over, the pair o + 2 would add them in another order relative to its five-tap terms
    wide = FOUR_BY_FIVE and KW % 5 == 0
    for o in range(0, n_o, 2):                       # two output channels ...
        if wide and o < n_quad and o % 4 == 2:
            continue                                 # (the pair o - 2 did these two)
        for i in range(n_i):                         # ... times every input channel
            for ky in range(KH):                     # ... times every kernel row
                kx = 0
                while wide and o < n_quad and kx + 5 <= KW:     # five taps x FOUR channels per pass
                    shift = ky * row_len + kx
                    j_lo = min(max(nz_lo - shift - 4, 0), n_out)
                    j_hi = max(min(nz_hi - shift, n_out), j_lo)
                    _five_taps_four_channels(x[i, shift + j_lo:shift + j_hi + 4], w, o, i, ky, kx,
                                             acc[o, j_lo:j_hi], acc[o + 1, j_lo:j_hi],
                                             acc[o + 2, j_lo:j_hi], acc[o + 3, j_lo:j_hi])
                    kx += 5
                while kx + 5 <= KW:                  # five taps per pass over j
                    # j whose inputs x[i, shift + j .. shift + j + 4] touch [nz_lo, nz_hi)
                    shift = ky * row_len + kx
                    j_lo = min(max(nz_lo - shift - 4, 0), n_out)
                    j_hi = max(min(nz_hi - shift, n_out), j_lo)
                    a0 = acc[o, j_lo:j_hi]           # 1-D views indexed from 0: numba then
                    a1 = acc[o + 1, j_lo:j_hi]       # knows every index is >= 0 and vectorises
                    s = x[i, shift + j_lo:shift + j_hi + 4]
                    p0 = w[o, i, ky, kx]
                    p1 = w[o, i, ky, kx + 1]
                    p2 = w[o, i, ky, kx + 2]
                    p3 = w[o, i, ky, kx + 3]
                    p4 = w[o, i, ky, kx + 4]
                    q0 = w[o + 1, i, ky, kx]
                    q1 = w[o + 1, i, ky, kx + 1]
                    q2 = w[o + 1, i, ky, kx + 2]
                    q3 = w[o + 1, i, ky, kx + 3]
                    q4 = w[o + 1, i, ky, kx + 4]
                    for j in range(j_hi - j_lo):     # the long contiguous loop
                        x0 = s[j]
                        x1 = s[j + 1]
                        x2 = s[j + 2]
                        x3 = s[j + 3]
                        x4 = s[j + 4]
                        a0[j] = a0[j] + p0 * x0 + p1 * x1 + p2 * x2 + p3 * x3 + p4 * x4
                        a1[j] = a1[j] + q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3 + q4 * x4
                    kx += 5
                if kx + 3 <= KW and o < n_quad:      # three taps x FOUR channels per pass
                    if o % 4 == 0:                   # (the pair o + 2 gets them here)
                        shift = ky * row_len + kx
                        j_lo = min(max(nz_lo - shift - 2, 0), n_out)
                        j_hi = max(min(nz_hi - shift, n_out), j_lo)
                        _three_taps_four_channels(x[i, shift + j_lo:shift + j_hi + 2], w, o, i, ky, kx,
                                                  acc[o, j_lo:j_hi], acc[o + 1, j_lo:j_hi],
                                                  acc[o + 2, j_lo:j_hi], acc[o + 3, j_lo:j_hi])
                    kx += 3
                if kx + 3 <= KW:                     # three taps per pass, the last odd pair
                    shift = ky * row_len + kx
                    j_lo = min(max(nz_lo - shift - 2, 0), n_out)
                    j_hi = max(min(nz_hi - shift, n_out), j_lo)
                    a0 = acc[o, j_lo:j_hi]
                    a1 = acc[o + 1, j_lo:j_hi]
                    s = x[i, shift + j_lo:shift + j_hi + 2]
                    p0 = w[o, i, ky, kx]
                    p1 = w[o, i, ky, kx + 1]
                    p2 = w[o, i, ky, kx + 2]
                    q0 = w[o + 1, i, ky, kx]
                    q1 = w[o + 1, i, ky, kx + 1]
                    q2 = w[o + 1, i, ky, kx + 2]
                    for j in range(j_hi - j_lo):
                        x0 = s[j]
                        x1 = s[j + 1]
                        x2 = s[j + 2]
                        a0[j] = a0[j] + p0 * x0 + p1 * x1 + p2 * x2
                        a1[j] = a1[j] + q0 * x0 + q1 * x1 + q2 * x2
                    kx += 3
                while kx < KW:                       # leftover taps, one per pass
                    shift = ky * row_len + kx
                    j_lo = min(max(nz_lo - shift, 0), n_out)
                    j_hi = max(min(nz_hi - shift, n_out), j_lo)
                    a0 = acc[o, j_lo:j_hi]
                    a1 = acc[o + 1, j_lo:j_hi]
                    s = x[i, shift + j_lo:shift + j_hi]
                    p0 = w[o, i, ky, kx]
                    q0 = w[o + 1, i, ky, kx]
                    for j in range(j_hi - j_lo):
                        a0[j] = a0[j] + p0 * s[j]
                        a1[j] = a1[j] + q0 * s[j]
                    kx += 1


@jit(fastmath=REDUCE)
def _five_tap_dots_four_channels(g0, g1, g2, g3, s, dw, o, i, ky, kx):
    """dw[o + m, i, ky, kx + t] += sum_j gm[j] * s[j + t] for m < 4, t < 5: one pass of _weight_grad_flat on AVX-512.

    g0..g3: the four channels' gradient rows and s the input row from tap kx
    on, contiguous 1-D views (len(s) >= len(g0) + 4). Twenty dot products
    share each load of g0..g3 and of the five shifted inputs: 20 FMAs per 9
    loads, against 10 per 7 in the two-channel pass, whose loads outnumber
    what its FMAs can hide on Intel's cores (``docs/performance.md``, "Intel:
    what limits each kernel"). The 20 sums stay in registers for the whole
    pass, with 4 g and 5 inputs: 29 vector registers, so only AVX-512
    targets (32) take it (FOUR_BY_FIVE); compiled for AVX2's 16 it keeps 11
    sums on the stack. The model (llvm-mca, sapphirerapids, not timed):
    10.2 cycles per 16 j against 2 x 6.1 for the pairs; counting split
    input loads, FMA-bound at 10 where the pairs need 11.7 of loads, about
    1.17x. Each sum is the same loop as in the two-channel pass (start from
    dw, one term per j, vectorised by LLVM as a reduction), split into lanes
    the same way: dw has the same bits on either path.
    """
    p0, p1, p2, p3, p4 = dw[o, i, ky, kx], dw[o, i, ky, kx + 1], dw[o, i, ky, kx + 2], \
        dw[o, i, ky, kx + 3], dw[o, i, ky, kx + 4]
    q0, q1, q2, q3, q4 = dw[o + 1, i, ky, kx], dw[o + 1, i, ky, kx + 1], dw[o + 1, i, ky, kx + 2], \
        dw[o + 1, i, ky, kx + 3], dw[o + 1, i, ky, kx + 4]
    r0, r1, r2, r3, r4 = dw[o + 2, i, ky, kx], dw[o + 2, i, ky, kx + 1], dw[o + 2, i, ky, kx + 2], \
        dw[o + 2, i, ky, kx + 3], dw[o + 2, i, ky, kx + 4]
    t0, t1, t2, t3, t4 = dw[o + 3, i, ky, kx], dw[o + 3, i, ky, kx + 1], dw[o + 3, i, ky, kx + 2], \
        dw[o + 3, i, ky, kx + 3], dw[o + 3, i, ky, kx + 4]
    for j in range(g0.shape[0]):
        x0 = s[j]
        x1 = s[j + 1]
        x2 = s[j + 2]
        x3 = s[j + 3]
        x4 = s[j + 4]
        u = g0[j]
        p0 += u * x0
        p1 += u * x1
        p2 += u * x2
        p3 += u * x3
        p4 += u * x4
        u = g1[j]
        q0 += u * x0
        q1 += u * x1
        q2 += u * x2
        q3 += u * x3
        q4 += u * x4
        u = g2[j]
        r0 += u * x0
        r1 += u * x1
        r2 += u * x2
        r3 += u * x3
        r4 += u * x4
        u = g3[j]
        t0 += u * x0
        t1 += u * x1
        t2 += u * x2
        t3 += u * x3
        t4 += u * x4
    dw[o, i, ky, kx], dw[o, i, ky, kx + 1], dw[o, i, ky, kx + 2], dw[o, i, ky, kx + 3], dw[o, i, ky, kx + 4] = \
        p0, p1, p2, p3, p4
    dw[o + 1, i, ky, kx], dw[o + 1, i, ky, kx + 1], dw[o + 1, i, ky, kx + 2], dw[o + 1, i, ky, kx + 3], \
        dw[o + 1, i, ky, kx + 4] = q0, q1, q2, q3, q4
    dw[o + 2, i, ky, kx], dw[o + 2, i, ky, kx + 1], dw[o + 2, i, ky, kx + 2], dw[o + 2, i, ky, kx + 3], \
        dw[o + 2, i, ky, kx + 4] = r0, r1, r2, r3, r4
    dw[o + 3, i, ky, kx], dw[o + 3, i, ky, kx + 1], dw[o + 3, i, ky, kx + 2], dw[o + 3, i, ky, kx + 3], \
        dw[o + 3, i, ky, kx + 4] = t0, t1, t2, t3, t4


@jit(fastmath=REDUCE)
def _weight_grad_flat(g, g_start, x, row_len, n_out, dw):
    """dw[o, i, ky, kx] += sum_{j < n_out} g[o, g_start + j] * x[i, ky*row_len + kx + j].

    g: (Cout, >= g_start + n_out) with Cout even; x: (Cin, length) as in _correlate_flat;
    dw: (Cout, Cin, kH, kW). Same blocking (2 channels x 5 taps, 4 x 3): ten dot
    products share each load of g and x; on AVX-512 targets (FOUR_BY_FIVE)
    five taps take four channels, twenty (_five_tap_dots_four_channels).
    Each dot product runs over all j in one loop whichever pass it is in, so
    the blocking changes which sums share a load, not how a sum is added up
    (``docs/performance.md``, "Direct weight gradient"). The sums start from
    the values already in dw, which keeps them in dw's dtype (a literal 0.0
    would make them float64). (g_start, rather than passing g[:, g_start:], keeps every
    array numba sees C-contiguous; a strided 2-D view would compile a second,
    unvectorised version of this loop.)
    """
    n_o, n_i, KH, KW = dw.shape
    n_quad = n_o - n_o % 4
    for o in range(0, n_o, 2):
        g0 = g[o, g_start:g_start + n_out]
        g1 = g[o + 1, g_start:g_start + n_out]
        for i in range(n_i):
            for ky in range(KH):
                row = x[i, ky * row_len:]
                kx = 0
                if FOUR_BY_FIVE and o < n_quad:      # five taps x FOUR channels per pass (AVX-512)
                    if o % 4 == 0:                   # (the pair o + 2 gets them here)
                        g2 = g[o + 2, g_start:g_start + n_out]
                        g3 = g[o + 3, g_start:g_start + n_out]
                        while kx + 5 <= KW:
                            _five_tap_dots_four_channels(g0, g1, g2, g3, row[kx:kx + n_out + 4], dw, o, i, ky, kx)
                            kx += 5
                    kx = KW - KW % 5
                while kx + 5 <= KW:
                    p0 = dw[o, i, ky, kx]
                    p1 = dw[o, i, ky, kx + 1]
                    p2 = dw[o, i, ky, kx + 2]
                    p3 = dw[o, i, ky, kx + 3]
                    p4 = dw[o, i, ky, kx + 4]
                    q0 = dw[o + 1, i, ky, kx]
                    q1 = dw[o + 1, i, ky, kx + 1]
                    q2 = dw[o + 1, i, ky, kx + 2]
                    q3 = dw[o + 1, i, ky, kx + 3]
                    q4 = dw[o + 1, i, ky, kx + 4]
                    s = row[kx:kx + n_out + 4]
                    for j in range(n_out):
                        u = g0[j]
                        v = g1[j]
                        x0 = s[j]
                        x1 = s[j + 1]
                        x2 = s[j + 2]
                        x3 = s[j + 3]
                        x4 = s[j + 4]
                        p0 += u * x0
                        p1 += u * x1
                        p2 += u * x2
                        p3 += u * x3
                        p4 += u * x4
                        q0 += v * x0
                        q1 += v * x1
                        q2 += v * x2
                        q3 += v * x3
                        q4 += v * x4
                    dw[o, i, ky, kx] = p0
                    dw[o, i, ky, kx + 1] = p1
                    dw[o, i, ky, kx + 2] = p2
                    dw[o, i, ky, kx + 3] = p3
                    dw[o, i, ky, kx + 4] = p4
                    dw[o + 1, i, ky, kx] = q0
                    dw[o + 1, i, ky, kx + 1] = q1
                    dw[o + 1, i, ky, kx + 2] = q2
                    dw[o + 1, i, ky, kx + 3] = q3
                    dw[o + 1, i, ky, kx + 4] = q4
                    kx += 5
                if kx + 3 <= KW and o < n_quad:      # three taps x four channels
                    if o % 4 == 0:
                        g2 = g[o + 2, g_start:g_start + n_out]
                        g3 = g[o + 3, g_start:g_start + n_out]
                        p0, p1, p2 = dw[o, i, ky, kx], dw[o, i, ky, kx + 1], dw[o, i, ky, kx + 2]
                        q0, q1, q2 = dw[o + 1, i, ky, kx], dw[o + 1, i, ky, kx + 1], dw[o + 1, i, ky, kx + 2]
                        r0, r1, r2 = dw[o + 2, i, ky, kx], dw[o + 2, i, ky, kx + 1], dw[o + 2, i, ky, kx + 2]
                        t0, t1, t2 = dw[o + 3, i, ky, kx], dw[o + 3, i, ky, kx + 1], dw[o + 3, i, ky, kx + 2]
                        s = row[kx:kx + n_out + 2]
                        for j in range(n_out):
                            x0 = s[j]
                            x1 = s[j + 1]
                            x2 = s[j + 2]
                            p0 += g0[j] * x0
                            p1 += g0[j] * x1
                            p2 += g0[j] * x2
                            q0 += g1[j] * x0
                            q1 += g1[j] * x1
                            q2 += g1[j] * x2
                            r0 += g2[j] * x0
                            r1 += g2[j] * x1
                            r2 += g2[j] * x2
                            t0 += g3[j] * x0
                            t1 += g3[j] * x1
                            t2 += g3[j] * x2
                        dw[o, i, ky, kx], dw[o, i, ky, kx + 1], dw[o, i, ky, kx + 2] = p0, p1, p2
                        dw[o + 1, i, ky, kx], dw[o + 1, i, ky, kx + 1], dw[o + 1, i, ky, kx + 2] = q0, q1, q2
                        dw[o + 2, i, ky, kx], dw[o + 2, i, ky, kx + 1], dw[o + 2, i, ky, kx + 2] = r0, r1, r2
                        dw[o + 3, i, ky, kx], dw[o + 3, i, ky, kx + 1], dw[o + 3, i, ky, kx + 2] = t0, t1, t2
                    kx += 3
                if kx + 3 <= KW:
                    p0 = dw[o, i, ky, kx]
                    p1 = dw[o, i, ky, kx + 1]
                    p2 = dw[o, i, ky, kx + 2]
                    q0 = dw[o + 1, i, ky, kx]
                    q1 = dw[o + 1, i, ky, kx + 1]
                    q2 = dw[o + 1, i, ky, kx + 2]
                    s = row[kx:kx + n_out + 2]
                    for j in range(n_out):
                        u = g0[j]
                        v = g1[j]
                        x0 = s[j]
                        x1 = s[j + 1]
                        x2 = s[j + 2]
                        p0 += u * x0
                        p1 += u * x1
                        p2 += u * x2
                        q0 += v * x0
                        q1 += v * x1
                        q2 += v * x2
                    dw[o, i, ky, kx] = p0
                    dw[o, i, ky, kx + 1] = p1
                    dw[o, i, ky, kx + 2] = p2
                    dw[o + 1, i, ky, kx] = q0
                    dw[o + 1, i, ky, kx + 1] = q1
                    dw[o + 1, i, ky, kx + 2] = q2
                    kx += 3
                while kx < KW:
                    p0 = dw[o, i, ky, kx]
                    q0 = dw[o + 1, i, ky, kx]
                    s = row[kx:kx + n_out]
                    for j in range(n_out):
                        p0 += g0[j] * s[j]
                        q0 += g1[j] * s[j]
                    dw[o, i, ky, kx] = p0
                    dw[o + 1, i, ky, kx] = q0
                    kx += 1


# ----------------------------------------------------------------------------
# Stride-1 drivers on the stacked layout: one chunk of images per pass
# ----------------------------------------------------------------------------

@jit()
def pitches(H, W, kH, kW, ph, pw):
    """(Hq, Wq): the row pitch Wq = W + gw of the stacked layout and its image pitch Hq = H + gh, in rows.

    gw zero columns after each row serve as the right padding of one row and
    the left padding of the next, so gw >= pw; and one image's W' outputs per
    row must not reach the next row's, so gw >= W' - W = 2*pw - kW + 1 (more
    than pw only when the padding is at least the kernel's width). The same
    along the height.
    """
    return H + max(ph, 2 * ph - kH + 1), W + max(pw, 2 * pw - kW + 1)


@jit()
def _geometry(H, W, kH, kW, ph, pw, across):
    """(Wq, R, P): an image's row pitch, the stacked row's pitch R = across*Wq, and a stripe's P = Hq*R."""
    Hq, Wq = pitches(H, W, kH, kW, ph, pw)
    R = across * Wq
    return Wq, R, Hq * R


@jit()
def _base(i, across, Wq, P):
    """Where image i of a chunk starts in the stacked layout: stripe i // across, slot i % across."""
    return (i // across) * P + (i % across) * Wq


@jit()
def _stacked(x, n0, n1, kH, kW, ph, pw, across):
    """Images x[n0:n1] (each (C, H, W)) -> their stacked layout, (C, stripes*P + ph*R + pw).

    out[c, _base(n-n0) + (ph + r)*R + pw + col] = x[n, c, r, col], zeros elsewhere,
    with (Wq, R, P) = _geometry(...): ``across`` images side by side per
    stripe (see "The stacked layout" above). One unpadded image alone in
    its stripe is already in that layout: its view is returned, no copy.
    """
    N, C, H, W = x.shape
    if n1 - n0 == 1 and ph == 0 and pw == 0 and across == 1:
        return x.reshape(N, C, H * W)[n0]
    Wq, R, P = _geometry(H, W, kH, kW, ph, pw, across)
    stripes = -(-(n1 - n0) // across)
    out = np.zeros((C, stripes * P + ph * R + pw), dtype=x.dtype)
    planes = x.reshape(N * C, H * W)
    for n in range(n0, n1):
        base = _base(n - n0, across, Wq, P)
        for c in range(C):
            src, dst = planes[n * C + c], out[c]
            for r in range(H):
                # unsigned offsets, as in _forward_stacked's copy-out
                d, s = np.uint64(base + (ph + r) * R + pw), np.uint64(r * W)
                for col in range(np.uint64(W)):
                    dst[d + col] = src[s + col]
    return out


@jit()
def _line_aligned_rows(rows, cols, like, at=0):
    """An uninitialised (rows, pitch) array of ``like``'s dtype, element ``at`` of every row on a 64-byte cache line.

    pitch is ``cols`` rounded up to a multiple of 64 bytes. The passes over j
    load (and the forward's sums also store) such rows a vector at a time
    from element ``at`` on, and on Intel's AVX-512 cores a 64-byte access
    that straddles two lines costs two (``docs/performance.md``, "Intel: what
    limits each kernel"). The forward's sums use ``at=0``; the backward's
    gradient rows, read by the dw loop from element P0 on, ``at=P0``. numba's
    own arrays start 32 bytes into a line half the time, and a row of
    ``cols`` floats would start anywhere. Where a number lives does not
    change how it is added up: the results are the same to the last bit.
    """
    per_line = max(1, 64 // like.itemsize)
    pitch = -(-cols // per_line) * per_line
    buf = np.empty(rows * pitch + per_line, dtype=like.dtype)
    into_line = (buf.ctypes.data % 64 + at * like.itemsize) % 64     # where element ``at`` would sit
    first = (64 - into_line) % 64 // like.itemsize
    return buf[first:first + rows * pitch].reshape(rows, pitch)


@jit(parallel=True)
def _forward_stacked(x, wp, bp, ph, pw, starts, across, y):
    """x: (N, C, H, W) unpadded; wp: (F2, C, kH, kW), bp: (F2,) with F2 = F
    rounded up to even (extra rows zero); starts: (K+1,) chunk bounds, chunk k
    is images [starts[k], starts[k+1]), laid out ``across`` side by side;
    y: (N, F, H+2ph-kH+1, W+2pw-kW+1) is filled."""
    N, C, H, W = x.shape
    F, HO, WO = y.shape[1], y.shape[2], y.shape[3]
    F2, _, KH, KW = wp.shape
    Wq, R, P = _geometry(H, W, KH, KW, ph, pw, across)
    yf = y.reshape(N, F, HO * WO)
    for k in prange(starts.shape[0] - 1):
        n0, n1 = starts[k], starts[k + 1]
        xs = _stacked(x, n0, n1, KH, KW, ph, pw, across)
        # last kept output + 1, for a full last stripe (a missing image's slot is zeros)
        L = (-(-(n1 - n0) // across) - 1) * P + (HO - 1) * R + (across - 1) * Wq + WO
        # The sums start from the bias, as y = b + sum(...) reads (and as the
        # kernel always did: adding it last rounds differently, which would
        # change every trained network's numbers in the last bits).
        acc = _line_aligned_rows(F2, L, y)
        for f in range(F2):
            acc[f] = bp[f]
        _correlate_flat(xs, wp, R, L, acc, 0, xs.shape[1])
        for n in range(n0, n1):                      # drop the wrap-around outputs
            for f in range(F):
                a = acc[f, _base(n - n0, across, Wq, P):]
                out = yf[n, f]
                for oy in range(HO):
                    # unsigned offsets: numba then needs no negative-index check per element
                    # (a view per row instead costs about as much: rows are 12-48 long)
                    src, dst = np.uint64(oy * R), np.uint64(oy * WO)
                    for ox in range(WO):
                        out[dst + np.uint64(ox)] = a[src + np.uint64(ox)]


@jit(parallel=True)
def _backward_stacked(gy, x, wflip, ph, pw, starts, across, threads, dw_lanes, dx, need_dx):
    """gy: (N, F, HO, WO), the stride-1 output gradient; x: (N, C, H, W) unpadded,
    HO = H+2ph-kH+1, WO = W+2pw-kW+1; starts, across: the chunks as in _forward_stacked.

    dw_lanes: (L, F2, C, kH, kW) zeros; lane l adds the weight gradient of
    its chunks, [l*K//L, (l+1)*K//L), in order into dw_lanes[l], and thread t
    (of ``threads``) runs lanes [t*L//threads, (t+1)*L//threads): the sums'
    order is fixed by the batch alone (:mod:`numpy_cnn.kernels.threads`).
    wflip: (C2, F2, kH, kW), wflip[c, f] = w[f, c] flipped in both axes, zero
    in padding rows; dx: (N, C, H, W), written when need_dx.
    """
    N, C, H, W = x.shape
    F, HO, WO = gy.shape[1], gy.shape[2], gy.shape[3]
    n_lanes, F2, _, KH, KW = dw_lanes.shape
    C2 = wflip.shape[0]
    Wq, R, P = _geometry(H, W, KH, KW, ph, pw, across)
    P0 = (KH - 1) * R + (KW - 1)                     # zeros in front of g, for dx
    K = starts.shape[0] - 1
    gyf = gy.reshape(N, F, HO * WO)
    dxf = dx.reshape(dx.shape[0], C, H * W)
    for t in prange(threads):
        lane0, lane1 = share(t, threads, n_lanes)
        for lane in range(lane0, lane1):
            k0, k1 = share(lane, n_lanes, K)
            for k in range(k0, k1):
                n0, n1 = starts[k], starts[k + 1]
                xs = _stacked(x, n0, n1, KH, KW, ph, pw, across)
                stripes = -(-(n1 - n0) // across)
                L = (stripes - 1) * P + (HO - 1) * R + (across - 1) * Wq + WO
                # gs[f, P0 + _base(n-n0) + oy*R + ox] = gy[n, f, oy, ox]; everything else 0.
                # Each row's element P0, where the dw loop reads it from, starts a cache line.
                gs = _line_aligned_rows(F2, P0 + stripes * P, x, P0)
                gs[:] = 0
                for n in range(n0, n1):
                    for f in range(F):
                        a = gs[f, P0 + _base(n - n0, across, Wq, P):]
                        g = gyf[n, f]
                        for oy in range(HO):
                            dst, src = np.uint64(oy * R), np.uint64(oy * WO)    # as in _forward_stacked
                            for ox in range(WO):
                                a[dst + np.uint64(ox)] = g[src + np.uint64(ox)]
                _weight_grad_flat(gs, P0, xs, R, L, dw_lanes[lane])
                if need_dx:
                    # dx on the same stacked layout: every position an output read gets its sum
                    acc = np.zeros((C2, stripes * P), dtype=x.dtype)
                    _correlate_flat(gs, wflip, R, stripes * P, acc, P0, P0 + L)
                    for n in range(n0, n1):
                        for c in range(C):
                            a = acc[c, _base(n - n0, across, Wq, P) + ph * R + pw:]
                            out = dxf[n, c]
                            for r in range(H):
                                src, dst = np.uint64(r * R), np.uint64(r * W)
                                for col in range(W):
                                    out[dst + np.uint64(col)] = a[src + np.uint64(col)]


# ----------------------------------------------------------------------------
# The public functions: check shapes, pad, handle stride, call the drivers
# ----------------------------------------------------------------------------

def _check(x, w, stride, padding):
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d wants x (N, C, H, W) and w (F, C, kH, kW), got x{x.shape} and w{w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels but w{w.shape} expects {w.shape[1]}")
    if x.dtype != w.dtype or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"conv2d wants x and w of one dtype, float32 or float64; got {x.dtype} and {w.dtype}")
    sh, sw = pair(stride, "stride", "conv2d")
    ph, pw = pair(padding, "padding", "conv2d", minimum=0)
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d wants stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    H, W = x.shape[2], x.shape[3]
    kH, kW = w.shape[2], w.shape[3]
    if H + 2 * ph < kH or W + 2 * pw < kW:
        raise ValueError(f"conv2d: kernel {kH}x{kW} is larger than the padded input {H + 2 * ph}x{W + 2 * pw}")
    return sh, sw, ph, pw


def _even_rows(a, axis=0):
    """a (as a C-contiguous array) with a zero slice appended along ``axis`` if its length there is odd."""
    if a.shape[axis] % 2 == 0:
        return np.ascontiguousarray(a)
    shape = list(a.shape)
    shape[axis] += 1
    out = np.zeros(shape, dtype=a.dtype)
    index = [slice(None)] * a.ndim
    index[axis] = slice(0, a.shape[axis])
    out[tuple(index)] = a
    return out


# Bytes one chunk's buffers (its stacked input, output and gradient rows) may
# take: a quarter of the 2 MB L2 of the Zen 4 cores measured on, so every
# pass over j finds them in cache.
CHUNK_BYTES = 512 * 1024


# Outputs a pass over j should have at least, in an unpadded layer's chunk of
# images side by side (see images_across).
PASS_OUTPUTS = 1024


def images_across(H, W, kH, kW, ph, pw):
    """How many images the stacked layout puts side by side: 1, except for an
    unpadded image wider than 16 columns (the paper's layers), where enough
    to make a pass over j at least PASS_OUTPUTS long.

    Stacked one under another, such images would add kH-1 thrown-away rows
    each; side by side they add nothing (the wrap-around columns are the
    same), and the longer passes run closer to the loop's peak: three of
    conv2's images side by side were fastest per image (``docs/performance.md``,
    "Direct convolution"); conv1's passes (2,108) are long already.
    """
    if ph or pw or W <= 16:
        return 1
    return max(1, -(-PASS_OUTPUTS // ((H - kH + 1) * W)))


def chunk_starts(N, C, F, H, W, kH, kW, ph, pw, itemsize, summed=False):
    """The drivers' chunks: ``(starts, across)``, chunk k is images [starts[k], starts[k+1]),
    laid out ``across`` side by side.

    The rule (measured, see "Loop layout, and why"): an unpadded image wider
    than 16 columns goes in a chunk of :func:`images_across` images side by
    side (one stripe); otherwise as many images per chunk as keep its
    buffers within CHUNK_BYTES, one under another. Chunks are balanced.

    * The forward's (``summed=False``): at most N/threads images a chunk, so
      every thread gets work. Its outputs are the same however the batch is
      cut (each sums its taps in one order), so the cut may follow the threads.
    * The backward's (``summed=True``), whose dw sums over the chunks: such
      wide images one per chunk, not side by side, and the count
      :func:`numpy_cnn.kernels.threads.chunk_count` gives: a function of the
      batch and the budget only, never of the thread count.
    """
    wide = 1 if summed else images_across(H, W, kH, kW, ph, pw)
    if wide > 1 or (ph == 0 and pw == 0 and W > 16):
        most = wide
    else:
        Hq, Wq = pitches(H, W, kH, kW, ph, pw)
        most = CHUNK_BYTES // ((C + F + 2) * Hq * Wq * itemsize)
    if summed:
        K = chunk_count(N, most)
    else:
        per_chunk = max(1, min(-(-N // numba.get_num_threads()), most))
        K = -(-N // per_chunk)
    starts = np.arange(K + 1, dtype=np.int64) * N // max(K, 1)   # (an empty batch: no chunks)
    # side by side: one stripe as wide as the largest chunk (no empty slots computed)
    across = int(np.diff(starts).max(initial=1)) if wide > 1 else 1
    return starts, across


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Direct convolution: ``x (N, C, H, W), w (F, C, kH, kW), b (F,) -> y (N, F, H', W')``.

    ``H' = (H + 2*padding - kH) // stride + 1`` and the same for W'. stride and
    padding are an int or a (vertical, horizontal) pair. Returns a new
    C-contiguous array of x's dtype (float32 or float64).
    """
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    sh, sw, ph, pw = _check(x, w, stride, padding)
    b = np.ascontiguousarray(b, dtype=x.dtype)
    if b.shape != (w.shape[0],):
        raise ValueError(f"conv2d: bias has shape {b.shape}, want ({w.shape[0]},)")
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    outputs = ((H + 2 * ph - kH) // sh + 1) * ((W + 2 * pw - kW) // sw + 1)
    if ph == pw and conv_blocked.fits(x.dtype, F, outputs, C * kH * kW):
        # Register-blocked (conv_blocked): faster, and at stride 1 the same bits as the loops below.
        return conv_blocked.blocked_forward(x, w, b, (sh, sw), ph)
    kernel = (kH, kW)
    split, taken, rest_stride, rest_padding = conv_phases.split_plan(kernel, (sh, sw), (ph, pw))
    if split != (1, 1):
        # Stride s as stride 1: x's phases as channels (conv_phases); an axis left whole keeps
        # its stride for the stride-1-and-subsample path below.
        xs = conv_phases.split_input(x, split, taken, kernel)
        return conv2d_forward(xs, conv_phases.split_weight(w, split), b, rest_stride, rest_padding)
    y = np.empty((N, F, H + 2 * ph - kH + 1, W + 2 * pw - kW + 1), dtype=x.dtype)
    starts, across = chunk_starts(N, C, F, H, W, kH, kW, ph, pw, x.itemsize)
    _forward_stacked(x, _even_rows(w), _even_rows(b), ph, pw, starts, across, y)
    if sh > 1 or sw > 1:
        y = np.ascontiguousarray(y[:, :, ::sh, ::sw])
    return y


def conv2d_backward(grad_y, x, w, stride=1, padding=0, need_input_grad=True):
    """Gradients of conv2d_forward: ``-> (dx or None, dw, db)``.

    grad_y: (N, F, H', W'), the gradient of the loss with respect to y;
    x: (N, C, H, W) and w: (F, C, kH, kW), as given to the forward pass.
    Returns dx (N, C, H, W) (None when ``need_input_grad`` is False: the first
    layer never needs it), dw (F, C, kH, kW) and db (F,), all new arrays of
    x's dtype. Nothing accumulates across calls.
    """
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    sh, sw, ph, pw = _check(x, w, stride, padding)
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    HO = conv_output_size(H, kH, sh, ph)
    WO = conv_output_size(W, kW, sw, pw)
    grad_y = np.ascontiguousarray(grad_y, dtype=x.dtype)
    if grad_y.shape != (N, F, HO, WO):
        raise ValueError(f"conv2d_backward: grad_y has shape {grad_y.shape}, want {(N, F, HO, WO)}")

    split, taken, rest_stride, rest_padding = conv_phases.split_plan((kH, kW), (sh, sw), (ph, pw))
    if split != (1, 1):
        # The forward's layer over the phases, backward; its gradients put back where x and w had them.
        xs = conv_phases.split_input(x, split, taken, (kH, kW))
        dxs, dws, db = conv2d_backward(grad_y, xs, conv_phases.split_weight(w, split), rest_stride,
                                       rest_padding, need_input_grad)
        dx = conv_phases.merge_input_grad(dxs, x.shape, split, taken) if need_input_grad else None
        return dx, conv_phases.merge_weight_grad(dws, (kH, kW), split), db

    db = grad_y.sum(axis=(0, 2, 3))
    if sh > 1 or sw > 1:
        # Stride s = stride 1 keeping every s-th output, so its gradient is the
        # stride-1 gradient of grad_y spread out with zeros in between.
        g1 = np.zeros((N, F, H + 2 * ph - kH + 1, W + 2 * pw - kW + 1), dtype=x.dtype)
        g1[:, :, ::sh, ::sw] = grad_y
        grad_y = g1

    # dw sums over the chunks, so they are cut by the batch alone and summed in lanes
    # (numpy_cnn.kernels.threads): any number of threads gives the same bits. Wide images
    # (the paper's layers) go one per chunk, not side by side: side by side was 10-13%
    # faster, but its dot products sum in another order (other last bits: the README's
    # results were made one per chunk).
    starts, across = chunk_starts(N, C, F, H, W, kH, kW, ph, pw, x.itemsize, summed=True)
    n_lanes, threads = lanes(len(starts) - 1, numba.get_num_threads())
    F2 = F + F % 2
    dw_lanes = np.zeros((n_lanes, F2, C, kH, kW), dtype=x.dtype)
    # wflip[c, f] = w[f, c] turned by 180 degrees; channel axes padded to even
    wflip = _even_rows(_even_rows(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), 0), 1)
    dx = np.empty((N if need_input_grad else 0, C, H, W), dtype=x.dtype)
    _backward_stacked(grad_y, x, wflip, ph, pw, starts, across, threads, dw_lanes, dx, need_input_grad)

    dw = lane_sum(dw_lanes)[:F]
    return (dx if need_input_grad else None), np.ascontiguousarray(dw), db
