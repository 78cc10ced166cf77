"""Stride s as stride 1: the polyphase (space-to-depth) decomposition of a strided convolution.

With ``xpad`` the zero-padded input and every tap split as ``ky = s*qy + ry``,
``kx = s*qx + rx`` (``0 <= ry, rx < s``), the strided sum::

    y[n, f, oy, ox] = sum_{c, ky, kx} w[f, c, ky, kx] * xpad[n, c, s*oy + ky, s*ox + kx]

becomes::

    y[n, f, oy, ox] = sum_{c, ry, rx, qy, qx} w[f, c, s*qy + ry, s*qx + rx]
                                              * xpad[n, c, s*(oy + qy) + ry, s*(ox + qx) + rx]

Read the second factor as a new image per phase (ry, rx): ``xs[n, c, ry, rx, i, j]
= xpad[n, c, s*i + ry, s*j + rx]``, every s-th row and column starting at
(ry, rx). Then it is ``xs[n, c, ry, rx, oy + qy, ox + qx]``: a stride-1
correlation. Stack the s*s phases as channels and the weights the same
way, ``ws[f, (c, ry, rx), qy, qx] = w[f, c, s*qy + ry, s*qx + rx]``, and the
layer is ONE stride-1, unpadded convolution, which
:mod:`numpy_cnn.kernels.conv_direct` already computes fast::

    xpad (one channel), s = 2            the four phases, now channels of xs
     a b a b a b                          a a a    b b b
     c d c d c d                          a a a    b b b
     a b a b a b            ->            a a a    b b b
     c d c d c d
     a b a b a b                          c c c    d d d
     c d c d c d                          c c c    d d d
                                          c c c    d d d

    x: (N, C, H, W) -> xs: (N, C*sh*sw, Hs, Ws)      Hs = H' + qh - 1, Ws = W' + qw - 1
    w: (F, C, kH, kW) -> ws: (F, C*sh*sw, qh, qw)    qh = ceil(kH / sh), qw = ceil(kW / sw)
    conv(xs, ws, b, stride 1, padding 0): (N, F, H', W'), exactly the strided layer's output

A 3x3 kernel at stride 2 becomes a 2x2 kernel over 4C channels. Taps
``s*qy + ry >= kH`` do not exist (phase (1, 1) has only w[., ., 1, 1]);
their weights are zeros, so the stride-1 layer does 16C multiplies per
output where the strided sum has 9C (and computing at stride 1 and keeping
every second output, what the direct kernel did before, 36C). An axis can
also be split alone: with ``sw = 1`` phases along the width (``rx = qx = 0``
throughout) the columns stay whole and the stride-1 layer keeps the
width's stride and padding.

Hs = H' + qh - 1 rows per phase are exactly what the outputs read: rows of
xpad beyond s*Hs (the floor in H') are never used, rows past x's end are the
zero padding. Each pixel of x lands in exactly one phase, at one place, so
the backward pass is the same copy read the other way round:

* ``dx``: the stride-1 backward's ``dxs`` put back where each pixel came from
  (depth-to-space); pixels no output reads get 0.
* ``dw``: ``dws`` gathered back to ``w``'s taps; the zero taps' gradients
  are dropped (nothing may change them).
* ``db``: grad_y's sum, as for any convolution.

So every result is the stride-1 kernel's, rearranged: the weight gradient is
the same on any number of threads because that kernel's is.

Split every axis? Only where it pays
------------------------------------
The direct kernel runs each kernel row as passes over j taking five or
three taps at once, and a leftover tap alone at about twice the cost per
tap (its sums are loaded and stored for every tap; :func:`row_cost`). A
3-wide row at stride 2 split into phases becomes rows 2 and 1 taps wide:
single-tap passes, 8 units where computing every column and keeping every
second costs 2 x 3 = 6. So :func:`split_plan` always splits the height
(each kernel row is a pass of its own anyway, and fewer rows are computed)
but the width only when its phases' passes cost no more: for 3x3 at
stride 2 the width stays whole, a 2x3 kernel over 2C channels at stride
(1, 2) -- three-tap passes over four output channels, every second column
dropped (24C multiplies per output, at full speed). 5x5 at stride 2 (3-tap
phases) and every kernel at stride 3 split both axes.

Measured (2026-12-06, AMD EPYC Zen 1, 2 cores shared with a training job,
two threads, forward, time / im2col's, median of 15 interleaved rounds),
the grid's layer (3x3, stride 2, 32 -> 64, 24x24) at batch 4 and 64: both
axes split 1.96 and 2.76, the width kept whole 1.57 and 1.95, computing at
stride 1 and keeping every s-th output (the kernel's old way) 1.70 and
2.52; forward and backward, 2.40 and 2.60, 1.81 and 1.74, 2.07 and 2.21.

Why one stride-1 call over C*sh*sw channels, and not the s*s exact
sub-convolutions (for 3x3 at stride 2 kernels 2x2, 2x1, 1x2 and 1x1 over C,
exactly 9C multiplies, the partial outputs summed): measured the same day
on six stride-2 and -3 layers (forward, 7-11 rounds), the sum of s*s calls
was slower in 8 of 12 cells, by up to 4.4x (each call pays its own thread
start, copies and output; 3-channel layers and stride 3 most), and faster
in 4 by 6-32%: the grid's layer at both batches, where keeping the width
whole ties it (2.33 against 2.37, 1.76 against 1.76), and two batch-64
cells. One call is also the simpler code.

Neither beats im2col + GEMM (:mod:`numpy_cnn.kernels.conv_gemm`) on the
grid's layer, so ``Conv2d(method=None)`` keeps im2col at stride > 1
(:mod:`numpy_cnn.kernels.choice`). This module is what ``method="direct"``
runs there, 1.1-3.0x faster than the old stride-1-and-subsample; the
figures, and what a faster pass would need, are in ``docs/performance.md``,
"Stride 2: the polyphase split".

Plain NumPy: two strided copies per phase (forward, dx), two reshapes of w.
"""

from __future__ import annotations

import numpy as np

__all__ = ["merge_input_grad", "merge_weight_grad", "phase_sizes", "row_cost", "split_input", "split_plan",
           "split_weight"]


def row_cost(taps: int) -> int:
    """What conv_direct's passes over j cost for one kernel row of ``taps`` taps, in taps of a long pass.

    Its passes take five taps at once, then three, then the rest one at a
    time. A one-tap pass loads and stores its sums for every tap: two FMAs
    per three loads and two stores, against ten per seven and two in a
    five-tap pass. llvm-mca models it at 1.33 cycles per FMA against 0.57-0.70
    (sapphirerapids and znver1), and timed on Zen 1 the grid's stride-2 layer
    split into 2x2 kernels (one-tap passes) took 2.06 and 2.64 of im2col's
    time at batch 4 and 64, against 1.25 and 1.29 with a prototype pass
    taking both rows of taps at once (2026-12-06). So a single tap counts twice.
    """
    five, rest = divmod(taps, 5)
    three = 3 if rest >= 3 else 0
    return 5 * five + three + 2 * (rest - three)


def split_plan(kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(phases, taken, rest_stride, rest_padding)``: which axes to split, and what is left to do.

    * Along the height, always ``sh`` phases: each kernel row is a pass of its
      own anyway, and H' rows of qh*sh taps cost less than the sh*H' rows of
      kH taps of computing at stride 1 (never more, with a 1-row kernel).
    * Along the width, ``sw`` phases when their ``sw`` rows of ceil(kW/sw)
      taps cost no more than computing every column (``sw`` times kW taps,
      :func:`row_cost`), otherwise 1 (kept whole). A 3-wide kernel at stride 2 stays
      whole: 2 phases x 2 single taps cost 8, 2 x a 3-tap pass 6. A 5-wide one
      splits (2 x 3 against 2 x 5), and so does any kernel at stride 3 or more.

    ``taken``: the padding the split builds into the phases (a split axis's, else 0);
    ``rest_stride``, ``rest_padding``: what the direct kernel still does on an axis
    kept whole (its stride, by computing every output and keeping every s-th, and
    its padding), or (1, 0) on a split one.
    """
    kW, (sh, sw), (ph, pw) = kernel[1], stride, padding
    split_h = sh > 1
    split_w = sw > 1 and row_cost(-(-kW // sw)) <= row_cost(kW)
    phases = (sh, sw if split_w else 1)
    taken = (ph if split_h else 0, pw if split_w else 0)
    return phases, taken, (1, 1 if split_w else sw), (0 if split_h else ph, 0 if split_w else pw)


def phase_sizes(H: int, W: int, kH: int, kW: int, stride: tuple[int, int],
                padding: tuple[int, int]) -> tuple[int, int, int, int]:
    """(Hs, Ws, qh, qw): one phase's image size and the phase kernel's, for an (H, W) input.

    ``Hs = H' + qh - 1`` with ``H' = (H + 2p - kH) // s + 1`` and ``qh = ceil(kH / s)``:
    the stride-1 layer over Hs rows with a qh-row kernel has exactly H' outputs.
    """
    (sh, sw), (ph, pw) = stride, padding
    qh, qw = -(-kH // sh), -(-kW // sw)
    return (H + 2 * ph - kH) // sh + qh, (W + 2 * pw - kW) // sw + qw, qh, qw


def _rows(size: int, s: int, p: int, r: int, n: int) -> tuple[slice, slice]:
    """Phase r along one axis: (its slots i, the rows of x they hold), as two slices.

    Slot i holds row ``s*i + r - p`` of x (the padded row ``s*i + r``); the
    slots whose row lies before x's first row or after its last are padding
    and hold 0. Only ``n`` slots exist.
    """
    i0 = max(0, -(-(p - r) // s))                 # the first slot on a row of x
    r0 = s * i0 + r - p
    count = max(0, min(n - i0, -(-(size - r0) // s)))
    return slice(i0, i0 + count), slice(r0, r0 + s * count, s)


def split_input(x: np.ndarray, stride: tuple[int, int], padding: tuple[int, int],
                kernel: tuple[int, int]) -> np.ndarray:
    """Space to depth: ``x (N, C, H, W) -> xs (N, C*sh*sw, Hs, Ws)``, channel ``(c*sh + ry)*sw + rx``.

    ``xs[n, (c, ry, rx), i, j] = xpad[n, c, sh*i + ry, sw*j + rx]``, zero where
    that is padding; one copy of x, by strided slices (no padded copy).
    """
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    Hs, Ws, _, _ = phase_sizes(H, W, *kernel, stride, padding)
    xs = np.zeros((N, C, sh, sw, Hs, Ws), dtype=x.dtype)
    for ry in range(sh):
        slots_y, rows = _rows(H, sh, ph, ry, Hs)
        for rx in range(sw):
            slots_x, cols = _rows(W, sw, pw, rx, Ws)
            xs[:, :, ry, rx, slots_y, slots_x] = x[:, :, rows, cols]
    return xs.reshape(N, C * sh * sw, Hs, Ws)


def merge_input_grad(dxs: np.ndarray, shape: tuple[int, int, int, int], stride: tuple[int, int],
                     padding: tuple[int, int]) -> np.ndarray:
    """Depth to space, split_input backwards: ``dxs (N, C*sh*sw, Hs, Ws) -> dx`` of x's ``shape``.

    Each pixel of x went to one place of one phase, so its gradient is read
    back from there; pixels no output window reaches (the floor in H') get 0.
    """
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = shape
    Hs, Ws = dxs.shape[2], dxs.shape[3]
    phases = dxs.reshape(N, C, sh, sw, Hs, Ws)
    dx = np.zeros(shape, dtype=dxs.dtype)
    for ry in range(sh):
        slots_y, rows = _rows(H, sh, ph, ry, Hs)
        for rx in range(sw):
            slots_x, cols = _rows(W, sw, pw, rx, Ws)
            dx[:, :, rows, cols] = phases[:, :, ry, rx, slots_y, slots_x]
    return dx


def split_weight(w: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """Split the kernel like x: ``w (F, C, kH, kW) -> ws (F, C*sh*sw, qh, qw)``.

    ``ws[f, (c, ry, rx), qy, qx] = w[f, c, sh*qy + ry, sw*qx + rx]``, zero for a
    tap beyond kH or kW: w padded with zero taps to (sh*qh, sw*qw), each kernel
    axis cut into (q, r) and the two r axes moved next to c (a reshape, a
    transpose and one copy).
    """
    sh, sw = stride
    F, C, kH, kW = w.shape
    qh, qw = -(-kH // sh), -(-kW // sw)
    wpad = np.zeros((F, C, sh * qh, sw * qw), dtype=w.dtype)
    wpad[:, :, :kH, :kW] = w
    ws = wpad.reshape(F, C, qh, sh, qw, sw).transpose(0, 1, 3, 5, 2, 4)   # (F, C, ry, rx, qy, qx)
    return np.ascontiguousarray(ws).reshape(F, C * sh * sw, qh, qw)


def merge_weight_grad(dws: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """split_weight backwards: ``dws (F, C*sh*sw, qh, qw) -> dw (F, C, kH, kW)``, the zero taps dropped."""
    sh, sw = stride
    kH, kW = kernel
    F, _, qh, qw = dws.shape
    C = dws.shape[1] // (sh * sw)
    dwpad = dws.reshape(F, C, sh, sw, qh, qw).transpose(0, 1, 4, 2, 5, 3).reshape(F, C, sh * qh, sw * qw)
    return np.ascontiguousarray(dwpad[:, :, :kH, :kW])
