"""Convolution and pooling written as plain loops: the definition, nothing else.

Far too slow to train with; here to read, and as the oracle the faster
paths are tested against (and the baseline of the speed benchmark).
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.shapes import conv_output_size


def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                 padding: int = 0) -> np.ndarray:
    """x: (N, C, H, W), w: (F, C, kH, kW), b: (F,) -> y: (N, F, H', W').

    ``y[n, f, oy, ox] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, c, oy*s + i, ox*s + j]``
    """
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(wd, kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.empty((n, f, ho, wo), dtype=x.dtype)
    for oy in range(ho):
        for ox in range(wo):
            field = xp[:, :, oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]  # (N, C, kH, kW)
            y[:, :, oy, ox] = np.tensordot(field, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return y


def maxpool2d_naive(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H', W'), ``y[.., oy, ox] = max of window (oy*sH.., ox*sW..)``."""
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    y = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for oy in range(ho):
        for ox in range(wo):
            y[:, :, oy, ox] = x[:, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].max(axis=(2, 3))
    return y
