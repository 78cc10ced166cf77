"""Linear (fully connected): ``y = x W^T + b``."""

from __future__ import annotations

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.init import as_generator, default_uniform
from numpy_cnn.nn.module import Module, Parameter
from numpy_cnn.shapes import positive


class Linear(Module):
    """x: (N, in_features) -> y: (N, out_features).

    Parameters as PyTorch stores them: ``weight (out, in)``, ``bias (out,)``,
    initialised ``U(-1/sqrt(in), 1/sqrt(in))``.

    Backward, from ``y[n, o] = sum_i x[n, i] W[o, i] + b[o]``::

        dW = dy^T x        (out, in)
        db = sum_n dy      (out,)
        dx = dy W          (N, in)
    """

    def __init__(self, in_features: int, out_features: int, *,
                 rng: np.random.Generator | int | None = None, dtype: type = np.float32) -> None:
        self.in_features = positive(in_features, "in_features", "Linear")
        self.out_features = positive(out_features, "out_features", "Linear")
        rng = as_generator(rng)
        self.weight = Parameter(default_uniform(rng, (out_features, in_features), in_features, dtype))
        self.bias = Parameter(default_uniform(rng, (out_features,), in_features, dtype))
        self.needs_input_grad = True

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, 2, f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise UserError(f"{self.describe()}: expected input (N, {self.in_features}), got {x.shape}")
        self._x = x
        self._y_shape = (x.shape[0], self.out_features)
        return x @ self.weight.data.T + self.bias.data

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        self.check_grad(grad_out)
        # A frozen parameter (requires_grad False) gets no gradient: its GEMM is skipped.
        self.weight.grad = grad_out.T @ self._x if self.weight.requires_grad else None
        self.bias.grad = grad_out.sum(axis=0) if self.bias.requires_grad else None
        return grad_out @ self.weight.data if self.needs_input_grad else None
