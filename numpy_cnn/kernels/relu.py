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

Large arrays are cut into one contiguous share per thread (each element is
computed alone, so the result is the same on any number of threads).
"""

import numba
import numpy as np
from numba import prange

from numpy_cnn.kernels._jit import jit
from numpy_cnn.kernels.threads import share

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


# Elements a thread must have before a second one is woken: on Zen 1 two threads gained
# nothing at 46 K floats (conv1's output at batch 4) and 1.7-3.3x from 330 K up (batch 64;
# docs/performance.md, "ReLU").
ELEMENTS_PER_THREAD = 1 << 17


@jit(parallel=True)
def _forward_threads(x, y, threads):
    """Thread t runs _forward on its share of the elements (each share compiled as the serial loop)."""
    for t in prange(threads):
        lo, hi = share(t, threads, x.shape[0])
        _forward(x[lo:hi], y[lo:hi])


@jit(parallel=True)
def _backward_threads(grad_y, y, dx, threads):
    for t in prange(threads):
        lo, hi = share(t, threads, y.shape[0])
        _backward(grad_y[lo:hi], y[lo:hi], dx[lo:hi])


def _threads(size):
    """Threads for ``size`` elements (1 without asking numba below two threads' worth: a call costs)."""
    return 1 if size < 2 * ELEMENTS_PER_THREAD else min(numba.get_num_threads(), size // ELEMENTS_PER_THREAD)


def relu_forward(x):
    """Any shape float -> ``max(x, 0)``, same shape and dtype (a new array)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    threads = _threads(x.size)
    if threads > 1:
        _forward_threads(x.reshape(-1), y.reshape(-1), threads)
    else:
        _forward(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(grad_y, y):
    """``dx = dy * [y > 0]``, from the forward *output* y; same shape and dtype as y."""
    grad_y = np.ascontiguousarray(grad_y, dtype=y.dtype)
    dx = np.empty_like(y)
    threads = _threads(y.size)
    if threads > 1:
        _backward_threads(grad_y.reshape(-1), y.reshape(-1), dx.reshape(-1), threads)
    else:
        _backward(grad_y.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx
