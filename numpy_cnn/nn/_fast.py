"""The numba kernels, fetched on first use and then kept.

Importing numba takes about half a second, so nothing imports
:mod:`numpy_cnn.kernels` at import time. An ``import`` statement inside a hot
``forward`` would cost ~1.4 us per call, so every fast path reaches the
kernels through this one cached function instead.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType


@cache
def kernels() -> ModuleType:
    """:mod:`numpy_cnn.kernels`, imported on the first call."""
    import numpy_cnn.kernels

    return numpy_cnn.kernels
