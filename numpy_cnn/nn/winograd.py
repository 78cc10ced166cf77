"""Winograd F(2x2, 3x3) in NumPy: a 3x3, stride-1 convolution with 16 multiplies per 2x2 outputs instead of 36.

The readable twin of the numba kernel :mod:`numpy_cnn.kernels.winograd`
(which ``Conv2d`` runs for 3x3 layers with many channels); the tests prove
the two equal, and both equal to the im2col reference.

The idea (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
CVPR 2016). Cut the zero-padded input into 4x4 tiles ``d`` that overlap by 2:
tile ``(ty, tx)`` is ``xpad[2ty : 2ty+4, 2tx : 2tx+4]``, and it is exactly what
the 2x2 outputs ``y[2ty : 2ty+2, 2tx : 2tx+2]`` read through a 3x3 kernel ``g``.
Those four outputs are::

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A          ⊙ = elementwise, on 4x4
              \\_ U 4x4 _/   \\_ V 4x4 _/

    B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [ 0    0    1 ]

``U`` (the transformed kernel) is computed once per (output, input) channel
pair, ``V`` (the transformed tile) once per tile and input channel, and
``A^T (.) A`` is linear, so the sum over input channels moves inside it::

    y-tile[f] = A^T [ sum_c U[f, c] ⊙ V[c] ] A + b[f]

The sum over ``c`` is the only place with multiplies: 16 of them (one per
position of the 4x4 grid) per input channel, where the direct convolution
needs 4 x 9 = 36. The transforms only add, subtract and halve.

Odd output sizes: the last row or column of tiles would hang over the edge,
so the input gets one extra row or column of zeros there and the outputs
past the edge are dropped.

Backward runs each step's adjoint in reverse order (every step is linear; a
matrix product ``P X Q`` has adjoint ``P^T dZ Q^T``)::

    dM = A dY A^T                          per tile; dY = the tile's 2x2 of grad_out
    dU[f, c] = sum over tiles of dM[f] ⊙ V[c]      ->  dg = G^T dU G
    dV[c]    = sum over f of     dM[f] ⊙ U[f, c]   ->  dd = B dV B^T, added into dx
                                                       (tiles overlap: their sums add)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _tiles(x: np.ndarray, padding: int) -> tuple[np.ndarray, int, int]:
    """x: (N, C, H, W) -> (d: (N, C, tH, tW, 4, 4) tiles of the padded input, H', W').

    ``tH = ceil(H'/2)`` tiles down, ``tW`` across; an odd ``H'`` adds a row of zeros at the bottom.
    """
    h, w = x.shape[2:]
    ho, wo = h + 2 * padding - 2, w + 2 * padding - 2
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding + 2 * th - ho), (padding, padding + 2 * tw - wo)))
    # Every 4x4 window, then every second one down and across: the tiles, as a view (no copy).
    return sliding_window_view(xp, (4, 4), axis=(2, 3))[:, :, ::2, ::2], ho, wo


def _matrices(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B^T, G, A^T in ``dtype``: float64 matrices would turn float32 products into float64 ones."""
    return B_T.astype(dtype), G.astype(dtype), A_T.astype(dtype)


def winograd_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int = 0) -> np.ndarray:
    """x: (N, C, H, W), weight: (F, C, 3, 3), bias: (F,) -> y: (N, F, H', W'), ``H' = H + 2p - 2``, x's dtype."""
    bt, g, at = _matrices(x.dtype)
    d, ho, wo = _tiles(x, padding)                              # (N, C, tH, tW, 4, 4)
    v = bt @ d @ bt.T                                           # B^T d B, every tile and channel
    u = g @ weight @ g.T                                        # G g G^T: (F, C, 4, 4)
    # The 16 multiplies, summed over input channels: M[n, f, tile] = sum_c U[f, c] ⊙ V[n, c, tile]
    # (y, x: the tile's row and column; a, b: a position in its 4x4 grid).
    m = np.einsum("fcab,ncyxab->nfyxab", u, v, optimize=True)  # (N, F, tH, tW, 4, 4)
    y = at @ m @ at.T                                           # A^T M A: (N, F, tH, tW, 2, 2)
    n, f, th, tw = y.shape[:4]
    # Put each tile's 2x2 block in its place: rows (ty, i), columns (tx, j).
    y = y.transpose(0, 1, 2, 4, 3, 5).reshape(n, f, 2 * th, 2 * tw)
    return y[:, :, :ho, :wo] + bias[:, None, None]


def winograd_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, padding: int = 0,
                      needs_input_grad: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """grad_out: (N, F, H', W'), and forward's x and weight -> (dx or None, dweight, dbias), x's dtype."""
    bt, g, at = _matrices(x.dtype)
    d, ho, wo = _tiles(x, padding)
    v = bt @ d @ bt.T                                           # forward's V and U, again
    u = g @ weight @ g.T
    n, f = grad_out.shape[:2]
    th, tw = d.shape[2:4]
    # grad_out cut into 2x2 tiles, zeros past the edge (outputs forward dropped): (N, F, tH, tW, 2, 2).
    dy = np.pad(grad_out, ((0, 0), (0, 0), (0, 2 * th - ho), (0, 2 * tw - wo)))
    dy = dy.reshape(n, f, th, 2, tw, 2).transpose(0, 1, 2, 4, 3, 5)
    dm = at.T @ dy @ at                                         # A dY A^T: (N, F, tH, tW, 4, 4)
    du = np.einsum("nfyxab,ncyxab->fcab", dm, v, optimize=True)  # sums over images and tiles
    dw = g.T @ du @ g                                           # (F, C, 3, 3)
    db = grad_out.sum(axis=(0, 2, 3))
    if not needs_input_grad:
        return None, dw, db
    dv = np.einsum("nfyxab,fcab->ncyxab", dm, u, optimize=True)
    dd = bt.T @ dv @ bt                                         # B dV B^T: each tile's gradient
    dxp = np.zeros(x.shape[:2] + (2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    for i in range(4):
        for j in range(4):
            # += : neighbouring tiles share two rows or columns, and their gradients add.
            dxp[:, :, i:i + 2 * th:2, j:j + 2 * tw:2] += dd[..., i, j]
    h, w = x.shape[2:]
    return dxp[:, :, padding:padding + h, padding:padding + w], dw, db
