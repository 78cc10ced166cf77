"""Conv2d: a 2-D convolution (really a cross-correlation, as in every framework).

For x: (N, C, H, W), weight w: (F, C, kH, kW), bias b: (F,), stride s and
zero padding p (``xpad`` is x with p zeros around each image)::

    y[n, f, oy, ox] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, c, oy*s + i, ox*s + j]
    H' = (H + 2p - kH) // s + 1          W' = (W + 2p - kW) // s + 1

Backward is the chain rule through that one sum: each term sends
``dy * w`` to its input pixel and ``dy * x`` to its weight::

    db[f]          = sum_{n,oy,ox} dy[n, f, oy, ox]
    dw[f, c, i, j] = sum_{n,oy,ox} dy[n, f, oy, ox] * xpad[n, c, oy*s + i, ox*s + j]
    dxpad[n, c, oy*s + i, ox*s + j] += sum_f dy[n, f, oy, ox] * w[f, c, i, j]   (dx = dxpad without its border)

The reference writes these as matrix multiplies over the im2col matrix
``cols[n]: (K, P)``, one column per output position (its layout is drawn in
:mod:`numpy_cnn.nn.im2col`)::

    y[n]  = W @ cols[n] + b                  W = weight.reshape(F, K), K = C*kH*kW, P = H'*W'
    dW    = sum_n dy[n] @ cols[n]^T          (F, K)
    db    = sum_n sum_q dy[n, :, q]          (F,)
    dcols = W^T @ dy[n]                      (K, P), then col2im sums overlaps -> dx

``method`` picks an implementation from :data:`IMPLEMENTATIONS`; all give the
same numbers (the tests prove it):

* ``"reference"``: the readable NumPy im2col above
  (:func:`numpy_cnn.nn.im2col.conv2d_forward`, ``conv2d_backward``). Read this one.
* ``"im2col"``: the same algorithm in cache-sized chunks of images, channels
  last (:mod:`numpy_cnn.kernels.conv_gemm`): a numba unfold into contiguous
  runs, one BLAS GEMM per chunk, each thread its own share of the batch. For a
  1x1 kernel at stride 1 the columns are the image itself: one GEMM per image.
* ``"direct"``: numba direct convolution (:mod:`numpy_cnn.kernels.conv_direct`),
  the sum above as loops. It never builds the column matrix, which for large
  inputs falls out of cache. At stride > 1 it runs its stride-1 loops over
  the input split into phases (:mod:`numpy_cnn.kernels.conv_phases`). Its
  forward, in float32 with output channels a multiple of 16, runs
  register-blocked loops instead (:mod:`numpy_cnn.kernels.conv_blocked`: 16
  channels x a block of positions summed in registers), any stride.
* ``"winograd"``: Winograd F(2x2, 3x3) (:mod:`numpy_cnn.kernels.winograd`),
  3x3 kernels at stride 1 only: 16 multiplies per 2x2 outputs instead of 36,
  as 16 GEMMs over channels. Its readable NumPy twin, :mod:`numpy_cnn.nn.winograd`,
  is tested equal to it and to the reference (a student reads it; no layer runs it).

The default, ``method=None``, runs :func:`numpy_cnn.kernels.choice.choose_method`'s
pick for the layer's shape, a rule measured for speed, except that the forward
pass may run ``"direct"``'s register-blocked loops where they are faster
(:func:`numpy_cnn.kernels.choice.choose_forward`; ``forward_method`` says which).
``method=`` forces one method for both passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.kernels.choice import choose_forward, choose_method
from numpy_cnn.nn import im2col
from numpy_cnn.nn._fast import kernels
from numpy_cnn.nn.init import as_generator, default_uniform
from numpy_cnn.nn.module import Module, Parameter
from numpy_cnn.shapes import conv_output_size, pair, positive


class Implementation(NamedTuple):
    """One way to run the layer: a forward and its backward, as a pair of functions (CS231n's form).

    Every method has the same two signatures::

        forward(x, weight, bias, stride, padding) -> (y, cache)
        backward(grad_out, cache, weight, stride, padding, needs_input_grad) -> (dx or None, dweight, dbias)

    ``cache`` is what forward keeps for backward: the im2col matrix and x's
    shape for the reference, x itself for the numba kernels (which recompute
    what they need rather than hold a large array between the passes).
    """

    forward: Callable[[np.ndarray, np.ndarray, np.ndarray, int, int], tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any, np.ndarray, int, int, bool],
                       tuple[np.ndarray | None, np.ndarray, np.ndarray]]


# The fast entries fetch their numba kernel from kernels() on each call (a
# cached function, not an import), so building a layer never imports numba.
IMPLEMENTATIONS: dict[str, Implementation] = {
    "reference": Implementation(im2col.conv2d_forward, im2col.conv2d_backward),
    "im2col": Implementation(
        lambda x, w, b, s, p: (kernels().gemm_conv_forward(x, w, b, s, p), x),
        lambda dy, x, w, s, p, need_dx: kernels().gemm_conv_backward(dy, x, w, s, p, need_dx)),
    "direct": Implementation(
        lambda x, w, b, s, p: (kernels().conv2d_forward(x, w, b, s, p), x),
        lambda dy, x, w, s, p, need_dx: kernels().conv2d_backward(dy, x, w, s, p, need_dx)),
    "winograd": Implementation(                               # stride 1 only (checked in Conv2d)
        lambda x, w, b, s, p: (kernels().winograd_forward(x, w, b, p), x),
        lambda dy, x, w, s, p, need_dx: kernels().winograd_backward(dy, x, w, p, need_dx)),
}
METHODS = tuple(IMPLEMENTATIONS)


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
        self._chosen = method is None            # by the rule, so choose_forward may pick the forward
        if method is None:
            method = choose_method(self.in_channels, self.kernel_size, self.stride)
        if method not in IMPLEMENTATIONS:
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

    @property
    def forward_method(self) -> str:
        """The method whose forward runs: ``method``, unless the rule chose it and
        :func:`numpy_cnn.kernels.choice.choose_forward` picks a faster forward for it."""
        if not self._chosen:
            return self.method
        return choose_forward(self.method, self.in_channels, self.out_channels, self.kernel_size,
                              self.weight.data.dtype)

    @property
    def methods(self) -> str:
        """``method``, or ``"forward/backward"`` where the forward runs another method's (as tables show it)."""
        forward = self.forward_method
        return self.method if forward == self.method else f"{forward}/{self.method}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, 4, f"(N, {self.in_channels}, H, W)")
        self._y_shape = self.output_shape(x.shape)
        y, self._cache = IMPLEMENTATIONS[self.forward_method].forward(x, self.weight.data, self.bias.data,
                                                              self.stride, self.padding)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        self.check_grad(grad_out)
        dx, dw, db = IMPLEMENTATIONS[self.method].backward(grad_out, self._cache, self.weight.data,
                                                           self.stride, self.padding, self.needs_input_grad)
        # Every method returns dW and db (the kernels compute them in the pass that computes dx);
        # a frozen parameter gets no gradient.
        self.weight.grad = dw if self.weight.requires_grad else None
        self.bias.grad = db if self.bias.requires_grad else None
        return dx
