"""PyTorch's default initialisation for Conv2d and Linear, from an explicit Generator.

PyTorch calls ``kaiming_uniform_(w, a=sqrt(5))``: the bound is
``gain * sqrt(3 / fan_in)`` with ``gain = sqrt(2 / (1 + a^2)) = sqrt(1/3)``,
which simplifies to ``1 / sqrt(fan_in)``. Biases use the same bound. So both
are ``U(-1/sqrt(fan_in), +1/sqrt(fan_in))``, where ``fan_in`` is
``in_features`` for Linear and ``C_in * kH * kW`` for Conv2d.
"""

from __future__ import annotations

import numpy as np


def default_uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int,
                    dtype: np.dtype | type = np.float32) -> np.ndarray:
    """An array of ``shape`` drawn from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator or a seed; ``None`` means seed 0, never global state."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
