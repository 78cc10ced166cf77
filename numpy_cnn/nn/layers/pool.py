"""MaxPool2d: the maximum of each window; backward routes the gradient to it."""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn._fast import kernels
from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Module
from numpy_cnn.shapes import pair

METHODS = ("reference", "numba")


class MaxPool2d(Module):
    """x: (N, C, H, W) -> y: (N, C, H', W'), ``H' = (H - kH) // sH + 1`` (floors, as PyTorch).

    ``stride`` defaults to ``kernel_size``. Rows and columns that no window
    reaches are dropped.

    Backward: only the window's maximum influenced the output, so
    ``dx[argmax of window] += dy`` and every other input in the window gets 0.
    With overlapping windows (stride < kernel) an input can be the maximum of
    several windows and receives the sum. Ties go to the first maximum in
    row-major window order, as in PyTorch.

    ``method="reference"`` is the readable NumPy version below (one strided
    view per window tap); ``"numba"`` (the default) runs the same algorithm
    as numba loops (:mod:`numpy_cnn.kernels.pool`), 5-10x faster here.
    """

    def __init__(self, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None, *, method: str = "numba") -> None:
        self.kernel_size = pair(kernel_size, "kernel_size", "MaxPool2d")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", "MaxPool2d")
        if method not in METHODS:
            raise UserError(f"MaxPool2d: method must be one of {METHODS}, got {method!r}")
        self.method = method

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        n, c, h, w = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if h < kh or w < kw:
            raise UserError(f"{self.describe()}: input {tuple(input_shape)} is smaller than the "
                            f"{kh}x{kw} window; use larger images or fewer pooling layers")
        return n, c, (h - kh) // sh + 1, (w - kw) // sw + 1

    def _window(self, x: np.ndarray, i: int, j: int, ho: int, wo: int) -> np.ndarray:
        """The strided view of tap (i, j) of every window: (N, C, H', W')."""
        sh, sw = self.stride
        return x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, 4, "(N, C, H, W)")
        _, _, ho, wo = self._y_shape = self.output_shape(x.shape)
        self._x_shape = x.shape
        if self.method == "numba":
            y, self._argmax = kernels().maxpool2d_forward(x, self.kernel_size, self.stride)
            return y
        kh, kw = self.kernel_size
        best = self._window(x, 0, 0, ho, wo).copy()
        argmax = np.zeros(best.shape, dtype=np.int32)   # window tap t = i*kW + j of the max
        for t in range(1, kh * kw):
            v = self._window(x, t // kw, t % kw, ho, wo)
            better = v > best                            # strict: ties keep the first maximum
            best[better] = v[better]
            argmax[better] = t
        self._argmax = argmax
        return best

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.check_grad(grad_out)
        if self.method == "numba":
            return kernels().maxpool2d_backward(grad_out, self._argmax, self._x_shape,
                                                 self.kernel_size, self.stride)
        _, _, ho, wo = grad_out.shape
        kh, kw = self.kernel_size
        dx = np.zeros(self._x_shape, dtype=grad_out.dtype)
        for t in range(kh * kw):
            # += (not =): overlapping windows can send several gradients to one input.
            self._window(dx, t // kw, t % kw, ho, wo)[...] += np.where(self._argmax == t, grad_out, 0)
        return dx
