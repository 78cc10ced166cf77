"""Shape arithmetic and the argument checks that the network core and the kernels share.

Both floors import it and it imports only :mod:`numpy_cnn.errors`, so the
core stays free of numba and the kernels need nothing from the core.
"""

from __future__ import annotations

import operator

from numpy_cnn.errors import UserError


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one axis: ``(size + 2*padding - kernel) // stride + 1``.

    The division floors, as in PyTorch: input rows that no window reaches are
    simply not used. Returns a value < 1 when the kernel does not fit.
    """
    return (size + 2 * padding - kernel) // stride + 1


def pair(value: int | tuple[int, int], what: str, where: str, minimum: int = 1) -> tuple[int, int]:
    """``5 -> (5, 5)``, ``(3, 5) -> (3, 5)``; anything else is a one-line error naming ``where``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    try:
        checked = tuple(operator.index(v) for v in values)   # ints, NumPy's included; not 2.5
    except TypeError:
        checked = ()
    if len(checked) != 2 or min(checked) < minimum:
        raise UserError(f"{where}: {what} must be an int >= {minimum} or a pair of them, got {value!r}")
    return checked  # type: ignore[return-value]


def positive(value: int, what: str, where: str) -> int:
    """``value`` if it is an int >= 1, else a one-line error naming ``where``."""
    if not isinstance(value, int) or value < 1:
        raise UserError(f"{where}: {what} must be a positive int, got {value!r}")
    return value
