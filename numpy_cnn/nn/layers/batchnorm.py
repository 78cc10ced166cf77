"""BatchNorm2d and BatchNorm1d: normalise each channel, then scale and shift it (Ioffe & Szegedy, 2015).

Both see their input as ``(N, C, M)``: BatchNorm2d's ``(N, C, H, W)`` has
``M = H*W`` positions per channel, BatchNorm1d's ``(N, C)`` has ``M = 1``. A
channel's statistics are taken over its ``m = N*M`` values::

    mu      = mean(x)                              over the m values of the channel
    var     = mean((x - mu)^2)                     biased: this one normalises
    x_hat   = (x - mu) / sqrt(var + eps)
    y       = weight * x_hat + bias
    running_mean = (1 - momentum) * running_mean + momentum * mu
    running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)

In eval mode ``mu`` and ``var`` are the running estimates instead, which
makes the layer a fixed per-channel affine map. These are PyTorch's
semantics, names and defaults (``eps=1e-5``, ``momentum=0.1``).

Backward in training mode has two forms, and the tests prove them equal:

* ``method="reference"`` walks the graph above one node at a time, backwards
  (:meth:`_BatchNorm._backward_graph`), as CS231n's first exercise does. Read this one first.
* ``method="compact"`` is the closed form those steps collapse to
  (derived in ``docs/backprop.md``), in NumPy::

      dbias   = sum(dy)
      dweight = sum(dy * x_hat)
      dx      = weight / (m * sqrt(var + eps)) * (m * dy - dbias - x_hat * dweight)

* ``method="numba"`` (the default) runs the same closed form, and the training
  forward, as numba loops (:mod:`numpy_cnn.kernels.batchnorm`): 3-5x faster than
  ``"compact"`` on the paper's conv outputs, which keeps a BatchNorm network's
  epoch close to the same network's without it (``docs/performance.md``, "BatchNorm").

Eval mode is the same few NumPy lines for every method.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn._fast import kernels
from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Buffer, Module, Parameter
from numpy_cnn.shapes import positive

METHODS = ("reference", "compact", "numba")


class _BatchNorm(Module):
    """The shared body of BatchNorm1d and BatchNorm2d; subclasses fix the input rank."""

    ndim = 0            # input rank the subclass accepts
    contract = ""       # its shape contract, for errors

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
                 dtype: type = np.float32, method: str = "numba") -> None:
        kind = type(self).__name__
        self.num_features = positive(num_features, "num_features", kind)
        if not eps > 0 or not 0 <= momentum <= 1:
            raise UserError(f"{kind}: need eps > 0 and 0 <= momentum <= 1, got eps={eps}, momentum={momentum}")
        if method not in METHODS:
            raise UserError(f"{kind}: method must be one of {METHODS}, got {method!r}")
        self.eps, self.momentum, self.method = eps, momentum, method
        # PyTorch's init: the identity map (weight 1, bias 0), running statistics of N(0, 1).
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.running_mean = Buffer(np.zeros(num_features, dtype))
        self.running_var = Buffer(np.ones(num_features, dtype))
        self.num_batches_tracked = Buffer(np.zeros((), np.int64))
        self.needs_input_grad = True

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    # -- forward ---------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: the subclass's shape contract -> y of the same shape and dtype."""
        self.check_input(x, self.ndim, self.contract)
        if x.shape[1] != self.num_features:
            raise UserError(f"{self.describe()}: expected input {self.contract} with "
                            f"C = {self.num_features}, got {x.shape}")
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)                 # (N, C, M): one view for both ranks
        m = n * x3.shape[2]
        self._y_shape, self._train = x.shape, self.training
        if self.training:
            if m < 2:   # PyTorch refuses too: the variance of one value is 0 and unbiasing divides by 0
                raise UserError(f"{self.describe()}: training needs more than one value per channel, got "
                                f"input {x.shape}; use a batch of 2 or more, or call model.eval() first")
            if self.method == "numba":
                y3, mean, var, self._x_hat = kernels().batchnorm_forward_train(
                    x3, self.weight.data, self.bias.data, self.eps)
                self._inv_std = 1 / np.sqrt(var + self.eps)
            else:
                mean, var, y3 = self._forward_graph(x3)
            self._update_running(mean, var, m)
        else:
            mean, var = self.running_mean.data, self.running_var.data
            self._inv_std = 1 / np.sqrt(var + self.eps)
            self._x_hat = (x3 - mean[:, None]) * self._inv_std[:, None]
            y3 = self.weight.data[:, None] * self._x_hat + self.bias.data[:, None]
        self._mu = mean   # the mean normalised with (trace reports it)
        return y3.reshape(x.shape)

    def _forward_graph(self, x3: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The forward graph node by node, keeping every node for :meth:`_backward_graph`."""
        mu = x3.mean(axis=(0, 2))
        xmu = x3 - mu[:, None]                    # centred
        var = (xmu * xmu).mean(axis=(0, 2))       # biased variance
        std = np.sqrt(var + self.eps)
        inv_std = 1 / std
        x_hat = xmu * inv_std[:, None]
        self._xmu, self._var, self._std, self._inv_std, self._x_hat = xmu, var, std, inv_std, x_hat
        return mu, var, self.weight.data[:, None] * x_hat + self.bias.data[:, None]

    def _update_running(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        """The exponential moving averages, with the unbiased variance ``var * m / (m - 1)``."""
        mom = self.momentum
        rm, rv = self.running_mean, self.running_var
        rm.data = ((1 - mom) * rm.data + mom * mean).astype(rm.data.dtype)
        rv.data = ((1 - mom) * rv.data + mom * var * (m / (m - 1))).astype(rv.data.dtype)
        self.num_batches_tracked.data = np.array(self.num_batches_tracked.data + 1)   # stays a 0-d array

    # -- backward --------------------------------------------------------------
    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """dL/dy (the input's shape) -> dL/dx; fills ``weight.grad`` and ``bias.grad``."""
        self.check_grad(grad_out)
        dy = grad_out.reshape(grad_out.shape[0], self.num_features, -1)
        gamma = self.weight.data
        if not self._train:
            # Eval mode: mu and var are constants, so y is affine in x.
            self.bias.grad = dy.sum(axis=(0, 2))
            self.weight.grad = (dy * self._x_hat).sum(axis=(0, 2))
            dx = dy * (gamma * self._inv_std)[:, None]
        elif self.method == "reference":
            dx = self._backward_graph(dy)
        elif self.method == "numba":
            dx, self.weight.grad, self.bias.grad = kernels().batchnorm_backward_train(
                dy, self._x_hat, gamma, self._inv_std.astype(gamma.dtype))
        else:
            m = dy.shape[0] * dy.shape[2]
            dbias = dy.sum(axis=(0, 2))
            dweight = (dy * self._x_hat).sum(axis=(0, 2))
            self.bias.grad, self.weight.grad = dbias, dweight
            dx = (gamma * self._inv_std / m)[:, None] * (m * dy - dbias[:, None] - self._x_hat * dweight[:, None])
        return dx.reshape(grad_out.shape) if self.needs_input_grad else None

    def _backward_graph(self, dy: np.ndarray) -> np.ndarray:
        """The chain rule through :meth:`_forward_graph`, one node at a time, last node first."""
        m = dy.shape[0] * dy.shape[2]
        self.bias.grad = dy.sum(axis=(0, 2))                             # y = weight * x_hat + bias
        self.weight.grad = (dy * self._x_hat).sum(axis=(0, 2))
        dx_hat = dy * self.weight.data[:, None]
        d_inv_std = (dx_hat * self._xmu).sum(axis=(0, 2))                 # x_hat = xmu * inv_std
        dxmu = dx_hat * self._inv_std[:, None]
        d_std = -d_inv_std / self._std ** 2                               # inv_std = 1 / std
        d_var = d_std * 0.5 / self._std                                   # std = sqrt(var + eps)
        dxmu = dxmu + 2 * self._xmu * (d_var / m)[:, None]                # var = mean(xmu^2)
        dmu = -dxmu.sum(axis=(0, 2))                                      # xmu = x - mu
        return dxmu + (dmu / m)[:, None]                                  # mu = mean(x)

    # -- for trace -------------------------------------------------------------
    def trace_notes(self) -> list[str]:
        """The last input's batch statistics, and what was used to normalise (see :mod:`numpy_cnn.study.trace`)."""
        if not hasattr(self, "_x_hat"):
            return []
        # x = mu_used + x_hat / inv_std, so the batch's own statistics follow from x_hat.
        std_used = 1 / self._inv_std
        x_hat = self._x_hat
        mean = x_hat.mean(axis=(0, 2)) * std_used + self._mu
        var = x_hat.var(axis=(0, 2)) * std_used ** 2
        lines = [f"batch statistics of its input: mean {_span(mean)}, var {_span(var)} "
                 f"({self.num_features} channels)"]
        if self._train:
            lines.append("train mode: normalised with these batch statistics; running statistics updated")
        else:
            lines.append(f"eval mode: normalised with running mean {_span(self.running_mean.data)}, "
                         f"running var {_span(self.running_var.data)} "
                         f"({int(self.num_batches_tracked.data)} batches tracked)")
        return lines


def _span(a: np.ndarray) -> str:
    return f"[{float(np.min(a)):.4g}, {float(np.max(a)):.4g}]"


class BatchNorm2d(_BatchNorm):
    """x: (N, C, H, W) -> y: (N, C, H, W); statistics per channel over N*H*W values.

    ``weight``, ``bias`` ``(C,)`` (learnt, start at 1 and 0); buffers
    ``running_mean``, ``running_var`` ``(C,)`` and ``num_batches_tracked`` ``()``
    int64, as PyTorch names them.
    """

    ndim = 4
    contract = "(N, C, H, W)"


class BatchNorm1d(_BatchNorm):
    """x: (N, F) -> y: (N, F); statistics per feature over the N rows of the batch.

    Same parameters and buffers as :class:`BatchNorm2d`, of shape ``(F,)``.
    (PyTorch's also takes ``(N, C, L)``; the networks here use it after ``Linear`` only.)
    """

    ndim = 2
    contract = "(N, F)"
