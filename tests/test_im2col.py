"""im2col/col2im, the NumPy reference: col2im is im2col's adjoint, and im2col + matmul is the convolution.

(The fast im2col path, numpy_cnn/kernels/conv_gemm.py, is tested against the reference layer in test_conv_gemm.py.)
"""

import numpy as np
import pytest

from numpy_cnn.nn.im2col import col2im_reference, conv_output_size, im2col_reference
from numpy_cnn.nn.naive import conv2d_naive

# (N, C, H, W, kH, kW, stride, padding): batch 1, odd and non-square sizes and kernels,
# stride 2 and 3, padding 1 and 2, a 1x1 kernel, a kernel as large as the input.
SHAPES = [
    (1, 1, 5, 5, 3, 3, 1, 0),
    (2, 3, 7, 6, 3, 2, 1, 1),
    (3, 2, 8, 9, 3, 3, 2, 1),
    (2, 2, 6, 5, 2, 3, 2, 2),
    (1, 3, 9, 7, 5, 5, 1, 2),
    (2, 1, 6, 6, 1, 1, 1, 0),
    (2, 3, 7, 7, 3, 3, 3, 0),
    (1, 2, 4, 6, 4, 6, 1, 0),
    (4, 3, 48, 48, 5, 5, 1, 0),
    (2, 2, 6, 5, 2, 2, 3, 3),     # padding wider than the kernel: whole rows and columns of zeros
]


@pytest.mark.parametrize("shape", SHAPES)
def test_col2im_is_the_adjoint_of_im2col(shape):
    # <im2col(x), g> == <x, col2im(g)> for all x, g: col2im is exactly the transpose,
    # which is what makes it the right backward of im2col.
    n, c, h, w, kh, kw, s, p = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w))
    g = rng.standard_normal(im2col_reference(x, (kh, kw), s, p).shape)
    lhs = np.sum(im2col_reference(x, (kh, kw), s, p) * g)
    rhs = np.sum(x * col2im_reference(g, x.shape, (kh, kw), s, p))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_im2col_matmul_is_the_convolution(shape):
    n, c, h, w, kh, kw, s, p = shape
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((3, c, kh, kw))
    b = rng.standard_normal(3)
    cols = im2col_reference(x, (kh, kw), s, p)
    y = (wt.reshape(3, -1) @ cols + b[:, None]).reshape(n, 3, conv_output_size(h, kh, s, p), -1)
    np.testing.assert_allclose(y, conv2d_naive(x, wt, b, s, p), rtol=1e-12, atol=1e-12)
