"""ReLU in numba: one pass forward, one pass backward.

The readable version is :class:`numpy_cnn.nn.layers.ReLU` with
``method="reference"``: ``np.maximum(x, 0)`` forward, ``dy * (x > 0)``
backward. NumPy's ``maximum`` takes its NaN-aware path and costs about four
times a plain elementwise pass; the loops below are one plain pass each
(measurements: ``docs/performance.md``, "ReLU").

Semantics kept exactly: a NaN input stays NaN (``not v <= 0`` is true for NaN,
as ``np.maximum`` propagates it), and the gradient at ``x <= 0`` (or NaN)
is 0, as in PyTorch. Backward reads the *output* y: ``y > 0`` exactly when
``x > 0``, so no mask needs to be stored.
"""

import numpy as np

from numpy_cnn.kernels._jit import jit

__all__ = ["relu_forward", "relu_backward"]


@jit()
def _forward(x, y):
    zero = x.dtype.type(0)
    for i in range(x.shape[0]):
        v = x[i]
        y[i] = v if not v <= 0 else zero


@jit()
def _backward(grad_y, y, dx):
    zero = dx.dtype.type(0)
    for i in range(y.shape[0]):
        dx[i] = grad_y[i] if y[i] > 0 else zero


def relu_forward(x):
    """Any shape float -> ``max(x, 0)``, same shape and dtype (a new array)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _forward(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(grad_y, y):
    """``dx = dy * [y > 0]``, from the forward *output* y; same shape and dtype as y."""
    grad_y = np.ascontiguousarray(grad_y, dtype=y.dtype)
    dx = np.empty_like(y)
    _backward(grad_y.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
