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

Kernels compile through :class:`numpy_cnn.kernels._cpu.KernelDispatcher`
rather than ``numba.njit``'s dispatcher: the same compiler, with a code
generator of their own that lets AVX-512 machines use 512-bit vectors (see
that module for why and how). Every kernel made with :func:`jit` gets it.
"""

from numpy_cnn.kernels._cpu import KernelDispatcher

CONTRACT = frozenset({"contract"})
REDUCE = frozenset({"contract", "reassoc"})

_OPTIONS = dict(nopython=True, error_model="numpy", boundscheck=False, nogil=True)


def jit(fastmath=CONTRACT, parallel=False):
    """``numba.njit`` with the shared options above, compiled by :class:`KernelDispatcher`."""
    def compile_lazily(fn):
        kernel = KernelDispatcher(py_func=fn, locals={},
                                  targetoptions=dict(fastmath=set(fastmath), parallel=parallel, **_OPTIONS))
        kernel.enable_caching()                      # cache=True
        return kernel
    return compile_lazily
