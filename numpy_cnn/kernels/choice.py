"""Which convolution kernel ``Conv2d(method=None)`` runs: a speed rule, measured on this machine.

Pure Python: the network core imports it when it builds a layer, and that
must not import numba (see :mod:`numpy_cnn.kernels`). The measurements the
rule was learnt from, and how to repeat them (``benchmarks/bench_conv.py
--grid --methods``), are in ``docs/performance.md#how-conv2d-picks-its-method``.
"""

from __future__ import annotations

__all__ = ["choose_method", "choose_forward"]


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


def choose_forward(method: str, out_channels: int, kernel_size: tuple[int, int], dtype: type) -> str:
    """The method whose forward pass a layer runs when ``method`` was chosen by :func:`choose_method`.

    ``"direct"`` for float32 with out_channels a multiple of 16 (the register-blocked
    loops of :mod:`numpy_cnn.kernels.conv_blocked`, which ``"direct"``'s forward runs
    then) when the rule chose ``"winograd"`` or ``"im2col"`` for a kernel larger than
    1x1; otherwise ``method``. The backward pass keeps ``method``: every numba method
    keeps x for backward, so any forward pairs with any of their backwards.

    Measured on the grid's layers, forward only, two threads (Zen 1, 2026-12-06,
    ``docs/performance.md#register-blocked-forward``): the blocked forward took
    0.3-0.6x im2col's time on the stride-2 layer and 0.5-0.9x Winograd's on the
    3x3 layers at 24x24 and 48x48; it lost one cell, 64 -> 64 channels at 12x12,
    batch 4 (1.2-1.5x Winograd's), and won that layer at batch 64 (0.6x).
    """
    if (method in ("winograd", "im2col") and kernel_size != (1, 1) and out_channels % 16 == 0
            and dtype == "float32"):
        return "direct"
    return method
