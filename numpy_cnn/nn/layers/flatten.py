"""Flatten: ``(N, C, H, W) -> (N, C*H*W)``."""

from __future__ import annotations

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Module


class Flatten(Module):
    """Keep the batch axis, merge all others (PyTorch's ``nn.Flatten()`` with ``start_dim=1``).

    x: (N, d1, d2, ...) -> (N, d1*d2*...). Backward only restores the shape.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, None, "(N, ...)")
        if x.ndim < 2:
            raise UserError(f"{self.describe()}: expected input (N, ...) with a batch axis, got {x.shape}")
        self._shape = x.shape
        y = x.reshape(x.shape[0], -1)
        self._y_shape = y.shape
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.check_grad(grad_out)
        return grad_out.reshape(self._shape)
