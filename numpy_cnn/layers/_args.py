"""Argument checks shared by the layers' constructors."""

from __future__ import annotations

from ..errors import UserError


def pair(value: int | tuple[int, int], what: str, layer: str, minimum: int = 1) -> tuple[int, int]:
    """``5 -> (5, 5)``, ``(3, 5) -> (3, 5)``; anything else is a one-line error."""
    pair_ = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair_) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair_):
        raise UserError(f"{layer}: {what} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair_  # type: ignore[return-value]


def positive(value: int, what: str, layer: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise UserError(f"{layer}: {what} must be a positive int, got {value!r}")
    return value
