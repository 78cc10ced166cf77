"""Dropout (inverted): in training, zero each value with probability p and scale the rest by 1/(1-p).

Srivastava et al. (2014). Scaling the survivors at training time ("inverted"
dropout) keeps every value's expectation unchanged, ``E[y] = x``, so eval
mode is simply the identity and the network needs no rescaling at test time.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.init import as_generator
from numpy_cnn.nn.module import Module


class Dropout(Module):
    """Any shape -> the same shape; ``y = x * mask / (1 - p)`` in training, ``y = x`` in eval.

    ``mask`` holds independent Bernoulli(1 - p) draws, one per value. Backward
    sends the gradient through the same mask and scale: ``dx = dy * mask / (1 - p)``
    (the forward is linear in ``x`` once the mask is drawn).

    **Where the randomness comes from.** The layer is given a
    ``numpy.random.Generator`` when it is built and draws every mask from it;
    there is no global random state. :func:`numpy_cnn.nn.arch.build_model`
    passes the Generator it was given, and the trainer gives it the run's one
    Generator, seeded with ``--seed`` (it initialises the weights, then draws
    each epoch's order, flips, angles and masks). The trainer saves that
    Generator's state in every checkpoint and restores it into the same object
    on ``--resume``, so the layer, holding a reference to it, continues the
    very same sequence: a seed reproduces a run, and a resumed run is
    bit-identical to an uninterrupted one. ``rng=None`` means seed 0.

    ``p = 0`` draws nothing (identity); ``p = 1`` zeroes everything, as in PyTorch.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | int | None = None) -> None:
        if not 0 <= p <= 1:
            raise UserError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x, None, "(any shape)")
        self._y_shape, self._train = x.shape, self.training
        if not self.training or self.p == 0:
            self._scale = None
            return x
        keep = 1.0 - self.p
        # mask / (1 - p) in one array: 0 where dropped, 1/(1-p) where kept (0 everywhere if p = 1).
        scale = 0.0 if keep == 0 else 1.0 / keep
        # float32 draws whatever the model's dtype: the same seed gives the same masks in float64.
        self._scale = (self.rng.random(x.shape, dtype=np.float32) < keep).astype(x.dtype) * x.dtype.type(scale)
        return x * self._scale

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.check_grad(grad_out)
        return grad_out if self._scale is None else grad_out * self._scale

    def trace_notes(self) -> list[str]:
        """The last mask's keep rate (see :mod:`numpy_cnn.study.trace`)."""
        if not hasattr(self, "_scale"):
            return []
        if self._scale is None:
            why = "p = 0" if self._train else "eval mode"
            return [f"{why}: identity, nothing dropped (keep rate 1.0)"]
        kept = float(np.count_nonzero(self._scale)) / self._scale.size
        return [f"train mode: mask kept {kept:.1%} of {self._scale.size} values "
                f"(expected {1 - self.p:.0%}), survivors scaled by 1/(1-p) = {1 / (1 - self.p):.4g}"
                if self.p < 1 else "train mode, p = 1: every value dropped"]
