"""Softmax cross-entropy, the loss of the classifier."""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn._fast import kernels
from numpy_cnn.errors import UserError

METHODS = ("reference", "numba")


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits -> (N, K) probabilities (the row maximum is subtracted so exp cannot overflow)."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, target: np.ndarray, method: str = "numba", *,
                  weight: np.ndarray | None = None, label_smoothing: float = 0.0) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch, and its gradient.

    logits: (N, K) float, target: (N,) int in [0, K) -> (loss, dlogits (N, K)).

    With ``p = softmax(z)``, ``L = -(1/N) sum_n log p[n, t_n]``. Computed as
    ``log p = z - logsumexp(z)`` with the row maximum subtracted first, so
    ``exp`` never overflows (log-sum-exp trick). The gradient is the classic
    ``dL/dz = (p - onehot(t)) / N``.

    ``weight`` (K,) and ``label_smoothing`` are PyTorch's
    (``F.cross_entropy(z, t, weight=w, label_smoothing=eps)``): the target of
    row n becomes the distribution ``q[n] = (1 - eps) onehot(t_n) + eps / K``,
    each class's term is weighted by ``w_k``, and the sum is divided by the
    targets' total weight (a weighted mean, as PyTorch normalises)::

        L = sum_n sum_k w_k q[n, k] (-log p[n, k]) / sum_n w[t_n]
        dL/dz[n, i] = (p[n, i] sum_k w_k q[n, k] - w_i q[n, i]) / sum_n w[t_n]

    With ``w = 1`` and ``eps = 0`` both are the plain formulas above; those
    defaults run the plain code, so their numbers are exactly today's.

    ``method="reference"`` runs the NumPy lines below; ``"numba"`` (the
    default) the same formulas in one pass (:mod:`numpy_cnn.kernels.loss`),
    equal to rounding and ~10x faster on a batch of 4.
    """
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise UserError(f"cross_entropy: expected logits (N, K) and target (N,), "
                        f"got {logits.shape} and {target.shape}")
    n, k = logits.shape
    if target.dtype.kind not in "iu":
        raise _bad_target(target, k)
    if method not in METHODS:
        raise UserError(f"cross_entropy: method must be one of {METHODS}, got {method!r}")
    if label_smoothing != 0.0 or weight is not None:
        return _soft_cross_entropy(logits, target, _class_weight(weight, k), _smoothing(label_smoothing), method)
    if method == "numba":
        return _kernel_result(kernels().cross_entropy(logits, target), target, k)
    _check_range(target, k)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_p[rows, target].mean()
    grad = np.exp(log_p)
    grad[rows, target] -= 1
    grad /= n
    return float(loss), grad


def _soft_cross_entropy(logits: np.ndarray, target: np.ndarray, weight: np.ndarray, eps: float,
                        method: str) -> tuple[float, np.ndarray]:
    """:func:`cross_entropy` with class weights (K,) float64 and label smoothing ``eps``."""
    n, k = logits.shape
    if method == "numba":
        return _kernel_result(kernels().soft_cross_entropy(logits, target, weight, eps), target, k)
    _check_range(target, k)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    q = np.full((n, k), eps / k)                      # the smoothed target distribution
    q[rows, target] += 1 - eps
    wq = q * weight                                    # each class's share, weighted
    total = weight[target].sum()                       # PyTorch's normaliser: the targets' weights
    loss = -(wq * log_p).sum() / total
    grad = (np.exp(log_p) * wq.sum(axis=1, keepdims=True) - wq) / total
    return float(loss), grad.astype(logits.dtype)


def _class_weight(weight: np.ndarray | None, k: int) -> np.ndarray:
    """``weight`` checked as K finite non-negative numbers, float64 (ones when None)."""
    if weight is None:
        return np.ones(k)
    w = np.asarray(weight, np.float64)
    if w.shape != (k,) or not np.isfinite(w).all() or (w < 0).any():
        raise UserError(f"cross_entropy: weight must hold {k} finite class weights >= 0 (one per class), "
                        f"got {np.asarray(weight)!r}")
    return w


def _smoothing(eps: float) -> float:
    if not 0.0 <= eps <= 1.0:
        raise UserError(f"cross_entropy: label_smoothing must be in [0, 1], got {eps}")
    return float(eps)


def _kernel_result(result: tuple[float, np.ndarray, int], target: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """A numba loss kernel's ``(loss, grad, first_bad)`` as ``(loss, grad)``; a label out of range is an error.

    The kernel checks the labels in the same pass (``first_bad``: the first bad row, or -1).
    """
    loss, grad, first_bad = result
    if first_bad >= 0:
        raise _bad_target(target, k)
    return float(loss), grad


def _check_range(target: np.ndarray, k: int) -> None:
    """The reference paths' label check: every label in ``0..k-1``."""
    if target.min(initial=0) < 0 or target.max(initial=0) >= k:
        raise _bad_target(target, k)


def _bad_target(target: np.ndarray, k: int) -> UserError:
    return UserError(f"cross_entropy: target must hold class indices in [0, {k}), got {target!r}")


class CrossEntropyLoss:
    """``nn.CrossEntropyLoss(weight=None, label_smoothing=0.0)`` with mean reduction:
    ``loss = criterion(logits, target)``, then ``criterion.backward()`` gives dL/dlogits (N, K)."""

    def __init__(self, weight: np.ndarray | None = None, label_smoothing: float = 0.0) -> None:
        self.weight, self.label_smoothing = weight, label_smoothing

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:
        loss, self._grad = cross_entropy(logits, target, weight=self.weight, label_smoothing=self.label_smoothing)
        return loss

    def backward(self) -> np.ndarray:
        return self._grad
