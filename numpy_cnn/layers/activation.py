"""ReLU: ``y = max(x, 0)``."""

from __future__ import annotations

import numpy as np

from ..module import Module


class ReLU(Module):
    """Elementwise ``max(x, 0)``; any shape -> the same shape.

    Backward: ``dx = dy * [x > 0]``. At exactly 0 the derivative is taken as 0,
    as PyTorch does (the function has a kink there and no true derivative).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, None, "(any shape)")
        self._mask = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self._mask
