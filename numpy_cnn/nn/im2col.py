"""im2col and col2im: a convolution as one matrix multiply.

This is the readable NumPy reference, kept for study and as the test oracle:
``Conv2d(method="reference")`` runs :func:`conv2d_forward` and
:func:`conv2d_backward` at the bottom of this file. The fast path,
:mod:`numpy_cnn.kernels.conv_gemm`, runs the same algorithm on chunks of
images laid out channels last (its columns are these, transposed).

The layout, for an input ``x`` of shape ``(N, C, H, W)``, a ``kH x kW`` kernel,
stride ``s`` and zero padding ``p``::

    H' = (H + 2p - kH) // s + 1          W' = (W + 2p - kW) // s + 1
    K  = C * kH * kW                     P  = H' * W'

    cols[n, k, q] = xpad[n, c, oy*s + i, ox*s + j]
        with k = (c*kH + i)*kW + j       (a row: one input channel and tap)
        and  q = oy*W' + ox              (a column: one output position)

             q = 0   1   2  ...  P-1         one column = one receptive field,
    k = 0  [ x00 x01 x02 ...         ]       flattened in the same (c, i, j)
    k = 1  [ x01 x02 x03 ...         ]       order as a row of the weight
     ...                                     matrix w.reshape(F, K)
    k = K-1[ ...                     ]

so the convolution of image ``n`` is ``w.reshape(F, K) @ cols[n]``, which is
already ``(F, H'*W')``: the output comes out in NCHW order with no transpose.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.shapes import conv_output_size


def im2col_reference(x: np.ndarray, kernel: tuple[int, int], stride: int = 1,
                     padding: int = 0) -> np.ndarray:
    """Unfold receptive fields into columns.

    x: (N, C, H, W) -> cols: (N, C*kH*kW, H'*W'), same dtype.
    """
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    # One strided slice per kernel tap (i, j) gathers that tap for every output position.
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + stride * (ho - 1) + 1:stride,
                                  j:j + stride * (wo - 1) + 1:stride]
    return cols.reshape(n, c * kh * kw, ho * wo)


def col2im_reference(cols: np.ndarray, x_shape: tuple[int, int, int, int],
                     kernel: tuple[int, int], stride: int = 1, padding: int = 0) -> np.ndarray:
    """The adjoint of :func:`im2col_reference`: fold columns back, summing overlaps.

    cols: (N, C*kH*kW, H'*W') -> dx: (N, C, H, W).

    An input pixel that sits in several receptive fields receives the sum of
    their gradients (the chain rule sums over every use of a variable).
    """
    n, c, h, w = x_shape
    kh, kw = kernel
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + stride * (ho - 1) + 1:stride,
                j:j + stride * (wo - 1) + 1:stride] += cols[:, :, i, j]
    return dxp[:, :, padding:padding + h, padding:padding + w]


# ----------------------------------------------------------------------------
# The convolution: one GEMM forward, two backward
# ----------------------------------------------------------------------------

def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1,
                   padding: int = 0) -> tuple[np.ndarray, tuple[np.ndarray, tuple[int, ...]]]:
    """x: (N, C, H, W), weight: (F, C, kH, kW), bias: (F,) -> (y: (N, F, H', W'), cache), x's dtype.

    ``y[n] = W @ cols[n] + b`` with ``W = weight.reshape(F, K)``. The cache,
    ``(cols, x.shape)``, is all that :func:`conv2d_backward` needs: ``cols`` is
    the layer's largest array, kept so that backward need not unfold x again.
    """
    n, _, h, w = x.shape
    f, _, kh, kw = weight.shape
    cols = im2col_reference(x, (kh, kw), stride, padding)                  # (N, K, P)
    y = weight.reshape(f, -1) @ cols                                        # (N, F, P)
    y += bias[:, None]
    y = y.reshape(n, f, conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding))
    return y, (cols, x.shape)


def conv2d_backward(grad_out: np.ndarray, cache: tuple[np.ndarray, tuple[int, ...]], weight: np.ndarray,
                    stride: int = 1, padding: int = 0, needs_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """grad_out: (N, F, H', W'), forward's cache and weight -> (dx or None, dweight, dbias).

    ``dW = sum_n dy[n] @ cols[n]^T``, ``db = sum of dy over n and positions``,
    ``dcols = W^T @ dy[n]``, then col2im sums the overlaps into dx. With
    ``needs_input_grad=False``, dx (the costlier half) is skipped: ``None``.
    """
    cols, x_shape = cache
    n, f = grad_out.shape[:2]
    dy = grad_out.reshape(n, f, -1)                                         # (N, F, P)
    # dW = sum_n dy[n] @ cols[n]^T over the batch: one tensordot is one GEMM.
    dw = np.tensordot(dy, cols, axes=([0, 2], [0, 2])).reshape(weight.shape)
    db = dy.sum(axis=(0, 2))
    if not needs_input_grad:
        return None, dw, db
    dcols = weight.reshape(f, -1).T @ dy                                    # (N, K, P)
    return col2im_reference(dcols, x_shape, weight.shape[2:], stride, padding), dw, db
