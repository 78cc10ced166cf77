"""The numba settings shared by every kernel in this package, in one place.

Every kernel is compiled with

* ``cache=True``: the machine code is kept on disk beside the source (in
  ``__pycache__``), so only the first run after a change pays the compile time.
* ``error_model="numpy"``: ``x / 0`` gives inf as in NumPy instead of raising,
  which lets numba drop a branch from the hot loops.
* ``boundscheck=False``: indices are not checked. Each kernel is only called
  from a Python wrapper that has checked the shapes first.

Floating-point flags (``fastmath``) are a set chosen per kernel:

* ``CONTRACT = {"contract"}`` lets LLVM fuse ``a * b + c`` into one FMA
  instruction (one rounding instead of two: no less accurate).
* ``REDUCE = {"contract", "reassoc"}`` also lets LLVM reorder a sum, which it
  needs to vectorise a dot product (eight or sixteen partial sums, added at the
  end). The result differs from a left-to-right sum only by rounding.

Neither set includes ``nnan``/``ninf``: NaN and inf still propagate as in NumPy.
"""

import numba

CONTRACT = frozenset({"contract"})
REDUCE = frozenset({"contract", "reassoc"})

_OPTIONS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)


def jit(fastmath=CONTRACT, parallel=False):
    """``numba.njit`` with the shared options above."""
    return numba.njit(fastmath=set(fastmath), parallel=parallel, **_OPTIONS)
