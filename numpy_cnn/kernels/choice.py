"""Which convolution kernel ``Conv2d(method=None)`` runs: a speed rule, measured on this machine.

Pure Python: the network core imports it when it builds a layer, and that
must not import numba (see :mod:`numpy_cnn.kernels`). The measurements the
rule was learnt from, and how to repeat them (``benchmarks/bench_conv.py
--grid --methods``), are in ``docs/performance.md#how-conv2d-picks-its-method``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["choose_method", "choose_forward", "blocked_takes", "BLOCKED_MIN_TERMS"]

# Terms (C*kH*kW) each sum must have, at least, for the register-blocked forward
# (numpy_cnn.kernels.conv_blocked) to be worth its blocks' start and their store into
# NCHW (16 x 6 or 12 single-float copies a block). Against conv_direct's flat rows,
# forward, batch 4 and 64 (Zen 1, 2026-12-06, docs/performance.md, "Register-blocked
# forward"): 1.02-1.11x their time at 27 terms (3x3 over 3 channels), 0.97 at 54,
# 0.88-0.95 at 72-75, 0.67-0.74 at 150 (the paper's conv2).
BLOCKED_MIN_TERMS = 64


def blocked_takes(dtype: np.dtype | type, out_channels: int, terms: int) -> bool:
    """Whether the register-blocked forward takes a layer of this dtype, output channels
    and terms a sum (C*kH*kW): float32, channels in whole vectors of 16 (simd.LANES), and
    at least BLOCKED_MIN_TERMS. (:func:`numpy_cnn.kernels.conv_blocked.fits` adds that an
    image has a block's outputs; this half is pure Python, for :func:`choose_forward`.)"""
    return np.dtype(dtype) == np.float32 and out_channels % 16 == 0 and terms >= BLOCKED_MIN_TERMS


def choose_method(in_channels: int, kernel_size: tuple[int, int], stride: int) -> str:
    """The method ``Conv2d(method=None)`` runs for a layer of this shape.

    * stride > 1: ``"im2col"``. ``"direct"`` runs a strided layer as a stride-1
      one over its polyphase split (:mod:`numpy_cnn.kernels.conv_phases`),
      which still took 1.5-2.0x im2col's time on the grid's stride-2 layer
      (3x3, 32 -> 64 channels, 24x24; forward and forward+backward, batch 4
      and 64, two threads, Zen 1, 2026-12-06): its split kernels are too
      narrow for its long passes. It tied or beat im2col only on a
      3-channel 5x5 first layer (1.00 and 0.89 forward+backward), too
      narrow a case for a rule.
    * 3x3 at stride 1 with at least 16 input channels: ``"winograd"``. It does
      0.44x the multiplies, but its transforms cost O(C + F) per tile, which
      only pays off with many channels.
    * 1x1: ``"im2col"``. The columns are then the image itself: one GEMM per image.
    * everything else (the paper's 5x5 layers, 3-channel first layers):
      ``"direct"``, which never builds the column matrix.
    """
    if stride != 1:
        return "im2col"
    if kernel_size == (3, 3) and in_channels >= 16:
        return "winograd"
    if kernel_size == (1, 1):
        return "im2col"
    return "direct"


def choose_forward(method: str, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                   dtype: np.dtype | type, *, two_512_bit_fma_units: bool | None = None) -> str:
    """The method whose forward pass a layer runs when ``method`` was chosen by :func:`choose_method`.

    ``"direct"``, whose forward runs the register-blocked loops of
    :mod:`numpy_cnn.kernels.conv_blocked` at any stride, for a layer they take
    (float32, out_channels a multiple of 16, at least BLOCKED_MIN_TERMS terms a sum)
    where the rule chose

    * ``"im2col"`` for a strided layer (not 1x1), on every CPU;
    * ``"winograd"``, on CPUs with two 512-bit FMA units a core (Intel's AVX-512
      server cores; ``two_512_bit_fma_units``, default
      :func:`numpy_cnn.kernels._cpu.two_512_bit_fma_units` of the kernels' target).

    Otherwise ``method``. The backward pass keeps ``method``: every numba method
    keeps x for backward, so any of their forwards pairs with any of their backwards.

    Measured with ``python benchmarks/bench_conv.py --grid --reps 9`` (Zen 1, two
    threads, 2026-12-06; ``docs/performance.md#register-blocked-forward``): on the
    grid's stride-2 layer the blocked forward took 1.06 and 1.10 of PyTorch's time
    at batch 4 and 64, where im2col took 1.52 and 1.98. Winograd keeps its 3x3
    layers: there the blocked forward took 1.0-1.9x Winograd's time with 32 or 64
    input channels, and tied it with 16: on Zen 1 its 12 FMAs a term run at
    the CPU's peak, one 256-bit FMA a cycle, and Winograd does 0.44x the
    multiplies. Two 512-bit FMA units a cycle are four times that peak, while
    Winograd's transforms, bound by loads and stores, are not that much faster:
    on the Xeon of issue 21 (Emerald Rapids) Winograd's forward took 1.87x
    PyTorch's time (3x3, 32 -> 64, 48x48, batch 4: 2.23 ms), where the blocked
    loops' 340 MFLOP, at the 83% of the FMA peak that llvm-mca models for
    sapphirerapids, take about 1.2 ms (two cores at 2.7 GHz; a model, not yet
    timed there: ``docs/performance.md#winograds-layers-on-intel``). Zen 4 (one
    512-bit FMA a cycle) keeps Winograd, whose cells were 0.40-1.15 of PyTorch's
    there; the blocked loops were not timed on it.
    """
    kh, kw = kernel_size
    if not blocked_takes(dtype, out_channels, in_channels * kh * kw):
        return method
    if method == "im2col" and (kh, kw) != (1, 1):
        return "direct"
    if method == "winograd":
        if two_512_bit_fma_units is None:
            from numpy_cnn.kernels._cpu import two_512_bit_fma_units as probe  # imports numba: only here
            two_512_bit_fma_units = probe()
        if two_512_bit_fma_units:
            return "direct"
    return method
