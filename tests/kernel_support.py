"""Helpers for the kernel tests: a kernel compiled with other module globals than its own."""

import types

_COPIES = {}


def compiled_with(kernel, **changed):
    """A copy of the numba kernel ``kernel`` whose module globals ``changed`` say otherwise.

    The kernels fix some choices from the compile target (conv_direct.FOUR_BY_FIVE,
    conv_blocked.POSITIONS: 32 vector registers or not), so only one path runs on a
    given host. The copy runs the same code with the other choice (or with another
    kernel it calls), compiled as the kernels are but not cached: its cache entry
    would be the original's. Copies are kept, one per kernel and set of changes.
    """
    key = (kernel.py_func.__module__, kernel.py_func.__name__, *sorted(changed.items(), key=lambda item: item[0]))
    if key not in _COPIES:
        from numpy_cnn.kernels._cpu import KernelDispatcher
        fn = kernel.py_func
        copy = types.FunctionType(fn.__code__, dict(fn.__globals__, **changed), fn.__name__)
        _COPIES[key] = KernelDispatcher(py_func=copy, locals={}, targetoptions=dict(kernel.targetoptions))
    return _COPIES[key]
