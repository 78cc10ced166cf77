"""Conv2d: a 2-D convolution (really a cross-correlation, as in every framework).

Forward is im2col followed by one matrix multiply; backward is matrix
multiplies followed by col2im (see :mod:`numpy_cnn.nn.im2col` for the layout)::

    y[n]  = W @ cols[n] + b                  W = weight.reshape(F, K), K = C*kH*kW
    dW    = sum_n dy[n] @ cols[n]^T          (F, K)
    db    = sum_n sum_q dy[n, :, q]          (F,)
    dcols = W^T @ dy[n]                      (K, P), then col2im sums overlaps -> dx

``method`` picks the implementation; all give the same numbers (the tests prove it):

* ``"reference"``: the readable NumPy im2col above. Read this one.
* ``"im2col"``: the same algorithm in cache-sized chunks of images, channels
  last (:mod:`numpy_cnn.kernels.conv_gemm`): a numba unfold into contiguous
  runs, one BLAS GEMM per chunk, each thread its own share of the batch. For a
  1x1 kernel at stride 1 the columns are the image itself: one GEMM per image.
* ``"direct"``: numba direct convolution (:mod:`numpy_cnn.kernels.conv_direct`),
  which never builds the column matrix. It is 2-7x faster here: conv1's column
  matrix at batch 64 is 37 MB and falls out of cache.
* ``"winograd"``: Winograd F(2x2, 3x3) (:mod:`numpy_cnn.kernels.winograd`),
  3x3 kernels at stride 1 only: 16 multiplies per 2x2 outputs instead of 36,
  as 16 GEMMs over channels.

The default, ``method=None``, picks one by :func:`choose_method`, a rule learnt
from ``benchmarks/bench_conv.py --grid``; ``method=`` forces any of them.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn._fast import kernels
from numpy_cnn.errors import UserError
from numpy_cnn.nn.im2col import col2im_reference, im2col_reference
from numpy_cnn.nn.init import as_generator, default_uniform
from numpy_cnn.nn.module import Module, Parameter
from numpy_cnn.shapes import conv_output_size, pair, positive

METHODS = ("reference", "im2col", "direct", "winograd")


def choose_method(in_channels: int, kernel_size: tuple[int, int], stride: int) -> str:
    """The method ``Conv2d(method=None)`` runs: the rule learnt from the conv grid.

    Measured with ``benchmarks/bench_conv.py --grid --methods`` (float32,
    batch 4 and 64, 3 to 64 channels, 12x12 to 48x48 inputs; README, "Conv speed"):

    * stride > 1: ``im2col``. The direct kernels compute stride s as stride 1
      and keep every s-th output, s*s times the work.
    * 3x3 at stride 1 with at least 16 input channels: ``winograd``. It does
      0.44x the multiplies as GEMMs; its transforms cost O(C + F) per tile,
      so it loses to ``direct`` below 16 input channels (about 3x slower at 3;
      at 16 the two are within 5-10%, Winograd ahead at 12x12, batch 64).
      ``im2col`` was slower than both on every such layer of the grid.
    * 1x1: ``im2col``, which then needs no unfold: the layer is one GEMM per image.
    * everything else (the paper's 5x5 layers, 3-channel first layers): ``direct``.
    """
    if stride != 1:
        return "im2col"
    if kernel_size == (3, 3) and in_channels >= 16:
        return "winograd"
    if kernel_size == (1, 1):
        return "im2col"
    return "direct"


class Conv2d(Module):
    """x: (N, C_in, H, W) -> y: (N, C_out, H', W'), ``H' = (H + 2p - kH) // s + 1``.

    Parameters as PyTorch stores them: ``weight (C_out, C_in, kH, kW)``,
    ``bias (C_out,)``, initialised ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = C_in*kH*kW``.

    Set ``needs_input_grad=False`` on a first layer: its input is data, not a
    result, so backward skips ``dx`` (the costliest part) and returns ``None``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int = 0, *, rng: np.random.Generator | int | None = None,
                 dtype: type = np.float32, method: str | None = None,
                 needs_input_grad: bool = True) -> None:
        self.in_channels = positive(in_channels, "in_channels", "Conv2d")
        self.out_channels = positive(out_channels, "out_channels", "Conv2d")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = positive(stride, "stride", "Conv2d")
        if not isinstance(padding, int) or padding < 0:
            raise UserError(f"Conv2d: padding must be an int >= 0, got {padding!r}")
        self.padding = padding
        if method is None:
            method = choose_method(self.in_channels, self.kernel_size, self.stride)
        if method not in METHODS:
            raise UserError(f"Conv2d: method must be one of {METHODS} or None, got {method!r}")
        if method == "winograd" and (self.kernel_size != (3, 3) or self.stride != 1):
            raise UserError(f"Conv2d: method 'winograd' needs a 3x3 kernel and stride 1, got "
                            f"kernel_size={self.kernel_size}, stride={self.stride}; use method=None")
        self.method = method
        self.needs_input_grad = needs_input_grad
        kh, kw = self.kernel_size
        fan_in = in_channels * kh * kw
        rng = as_generator(rng)
        self.weight = Parameter(default_uniform(rng, (out_channels, in_channels, kh, kw), fan_in, dtype))
        self.bias = Parameter(default_uniform(rng, (out_channels,), fan_in, dtype))

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != 1:
            s += f", stride={self.stride}"
        if self.padding:
            s += f", padding={self.padding}"
        return s

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(N, C_in, H, W) -> (N, C_out, H', W'), or a one-line error if the input cannot fit."""
        n, c, h, w = input_shape
        if c != self.in_channels:
            raise UserError(f"{self.describe()}: expected input (N, {self.in_channels}, H, W), "
                            f"got {tuple(input_shape)}")
        kh, kw = self.kernel_size
        ho = conv_output_size(h, kh, self.stride, self.padding)
        wo = conv_output_size(w, kw, self.stride, self.padding)
        if ho < 1 or wo < 1:
            raise UserError(f"{self.describe()}: input {tuple(input_shape)} is smaller than the "
                            f"{kh}x{kw} kernel (padding {self.padding}); use larger images or a smaller kernel")
        return n, self.out_channels, ho, wo

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, 4, f"(N, {self.in_channels}, H, W)")
        n, f, ho, wo = self._y_shape = self.output_shape(x.shape)
        if self.method == "direct":
            self._x = x
            return kernels().conv2d_forward(x, self.weight.data, self.bias.data, self.stride, self.padding)
        if self.method == "winograd":
            self._x = x
            return kernels().winograd_forward(x, self.weight.data, self.bias.data, self.padding)
        if self.method == "im2col":
            self._x = x
            return kernels().gemm_conv_forward(x, self.weight.data, self.bias.data, self.stride, self.padding)
        self._x_shape = x.shape
        self._cols = im2col_reference(x, self.kernel_size, self.stride, self.padding)   # (N, K, P)
        y = self.weight.data.reshape(f, -1) @ self._cols                     # (N, F, P)
        y += self.bias.data[:, None]
        return y.reshape(n, f, ho, wo)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        self.check_grad(grad_out)
        if self.method != "reference":
            if self.method == "direct":
                dx, dw, db = kernels().conv2d_backward(
                    grad_out, self._x, self.weight.data, self.stride, self.padding, self.needs_input_grad)
            elif self.method == "im2col":
                dx, dw, db = kernels().gemm_conv_backward(
                    grad_out, self._x, self.weight.data, self.stride, self.padding, self.needs_input_grad)
            else:
                dx, dw, db = kernels().winograd_backward(
                    grad_out, self._x, self.weight.data, self.padding, self.needs_input_grad)
            # The kernels compute dW in the same pass as dx; a frozen parameter gets no gradient.
            self.weight.grad = dw if self.weight.requires_grad else None
            self.bias.grad = db if self.bias.requires_grad else None
            return dx
        n, f = grad_out.shape[:2]
        dy = grad_out.reshape(n, f, -1)                                       # (N, F, P)
        # A frozen parameter gets no gradient (and its GEMM is skipped).
        # dW = sum_n dy[n] @ cols[n]^T over the batch: one tensordot is one GEMM.
        self.weight.grad = (np.tensordot(dy, self._cols, axes=([0, 2], [0, 2])).reshape(self.weight.data.shape)
                            if self.weight.requires_grad else None)
        self.bias.grad = dy.sum(axis=(0, 2)) if self.bias.requires_grad else None
        if not self.needs_input_grad:
            return None
        dcols = self.weight.data.reshape(f, -1).T @ dy                       # (N, K, P)
        return col2im_reference(dcols, self._x_shape, self.kernel_size, self.stride, self.padding)
