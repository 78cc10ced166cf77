"""BatchNorm in training mode, in numba: the statistics and the closed-form backward, per channel.

The readable versions are :class:`numpy_cnn.nn.layers.BatchNorm2d` with
``method="reference"`` (the graph, node by node) and ``"compact"`` (the
closed form in NumPy). Both see the input as ``(N, C, M)`` (``M = H*W``, or 1
for BatchNorm1d); so do these kernels. For each channel ``c`` over its
``m = N*M`` values::

    forward    mean = sum(x) / m;  var = sum((x - mean)^2) / m          two reads of x
               x_hat = (x - mean) / sqrt(var + eps);  y = weight * x_hat + bias    one pass
    backward   dbias = sum(dy);  dweight = sum(dy * x_hat)              one read
               dx = weight / (m * sqrt(var + eps)) * (m * dy - dbias - x_hat * dweight)   one pass

NumPy needs a temporary and a Python call per step, about a dozen whole-array
passes each way; here each pass is one loop. Sums run in float64 (as
accumulators only), so float32 statistics are accurate to float32 rounding
whatever the batch size; ``REDUCE`` lets LLVM vectorise them.

Loop layout: channels outermost, then images, then the ``M`` contiguous
positions of one image's channel. Serial: ``prange`` over the 6 or 16
channels made the epoch slower on the loaded 2-core machine (thread start-up
beside tiny per-channel work), measured at batch 4 and 64 (see
``docs/performance.md``, "BatchNorm").
"""

import numpy as np

from numpy_cnn.kernels._jit import REDUCE, jit

__all__ = ["batchnorm_forward_train", "batchnorm_backward_train"]


@jit(fastmath=REDUCE)
def _forward(x, weight, bias, eps, y, x_hat, mean, var):
    N, C, M = x.shape
    m = N * M
    for c in range(C):
        s = 0.0
        for n in range(N):
            for j in range(M):
                s += x[n, c, j]
        mu = s / m
        s2 = 0.0
        for n in range(N):
            for j in range(M):
                d = x[n, c, j] - mu
                s2 += d * d
        v = s2 / m
        inv_std = 1.0 / np.sqrt(v + eps)
        w, b = weight[c], bias[c]
        for n in range(N):
            for j in range(M):
                h = (x[n, c, j] - mu) * inv_std
                x_hat[n, c, j] = h
                y[n, c, j] = w * h + b
        mean[c] = mu
        var[c] = v


@jit(fastmath=REDUCE)
def _backward(dy, x_hat, weight, inv_std, dx, dweight, dbias):
    N, C, M = dy.shape
    m = N * M
    for c in range(C):
        sb = 0.0
        sw = 0.0
        for n in range(N):
            for j in range(M):
                g = dy[n, c, j]
                sb += g
                sw += g * x_hat[n, c, j]
        k = weight[c] * inv_std[c] / m
        for n in range(N):
            for j in range(M):
                dx[n, c, j] = k * (m * dy[n, c, j] - sb - x_hat[n, c, j] * sw)
        dbias[c] = sb
        dweight[c] = sw


def batchnorm_forward_train(x, weight, bias, eps):
    """x: (N, C, M) float -> (y, mean (C,), biased var (C,), x_hat), all in x's dtype."""
    x = np.ascontiguousarray(x)
    y, x_hat = np.empty_like(x), np.empty_like(x)
    c = x.shape[1]
    mean, var = np.empty(c, x.dtype), np.empty(c, x.dtype)
    _forward(x, weight, bias, float(eps), y, x_hat, mean, var)
    return y, mean, var, x_hat


def batchnorm_backward_train(dy, x_hat, weight, inv_std):
    """dy, x_hat: (N, C, M); weight, inv_std: (C,) -> (dx (N, C, M), dweight (C,), dbias (C,))."""
    dy = np.ascontiguousarray(dy, dtype=x_hat.dtype)
    dx = np.empty_like(x_hat)
    c = x_hat.shape[1]
    dweight, dbias = np.empty(c, x_hat.dtype), np.empty(c, x_hat.dtype)
    _backward(dy, x_hat, weight, inv_std, dx, dweight, dbias)
    return dx, dweight, dbias
