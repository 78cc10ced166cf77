"""SGD with momentum in numba: every parameter in one call, one pass over each.

The readable rule is :meth:`numpy_cnn.nn.optim.SGD.step` with
``method="reference"``. For one parameter of any shape (seen flat)::

    d   = g + weight_decay * p
    buf = d                           on the first step
    buf = momentum * buf + (1 - dampening) * d   afterwards
    d   = d + momentum * buf          if nesterov, else d = buf
    p   = p - lr * d

Written with NumPy that is up to five whole-array passes (and temporaries)
per parameter. Here every element is read once and written once, and all
parameters go to the kernel together as tuples of flat views, since every
kernel call pays for Python and numba dispatch (measurements:
``docs/performance.md``, "SGD and Adam").

Same numbers as the NumPy rule: the scalars are cast to the parameters'
dtype first (as NumPy does with a Python float), every product and sum is
rounded in that dtype in the same order, and ``fastmath`` is off, so no
``a * b + c`` is fused into an FMA. The tests check equality bit for bit.

numba compiles the kernel once per number of parameters (a tuple's length
is part of its type); the result is cached on disk like every other kernel.
"""

import numpy as np

from numpy_cnn.kernels._jit import jit

__all__ = ["sgd_step"]


@jit(fastmath=())
def _sgd_momentum(ps, gs, bufs, first, lr, momentum, dampening_c, weight_decay, nesterov):
    """ps, gs, bufs: tuples of 1-D arrays (parameter k has ps[k], gs[k], bufs[k]);
    first[k]: the buffer starts as d. ``dampening_c`` is ``1 - dampening``."""
    for k in range(len(ps)):
        p, g, buf, start = ps[k], gs[k], bufs[k], first[k]
        for i in range(p.shape[0]):
            d = g[i]
            if weight_decay != 0:
                d = d + weight_decay * p[i]
            b = d if start else momentum * buf[i] + dampening_c * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
            p[i] = p[i] - lr * d


@jit(fastmath=())
def _sgd_plain(ps, gs, lr, weight_decay):
    for k in range(len(ps)):
        p, g = ps[k], gs[k]
        for i in range(p.shape[0]):
            d = g[i]
            if weight_decay != 0:
                d = d + weight_decay * p[i]
            p[i] = p[i] - lr * d


def sgd_step(params, grads, buffers, first, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False):
    """Update every array of ``params`` (and ``buffers``) in place with one SGD step.

    Args:
        params: list of C-contiguous arrays of one dtype, float32 or float64.
        grads: their gradients, same shapes (cast to the params' dtype if needed).
        buffers: momentum buffers, same shapes and dtype; ignored when ``momentum == 0``.
        first: one bool per parameter: True on its first step with momentum
            (the buffer becomes ``d``; its old contents are never read).
    """
    if not params:
        return
    dtype = params[0].dtype
    t = dtype.type
    for p in params:
        if not p.flags.c_contiguous or p.dtype != dtype:
            raise ValueError("sgd_step: parameters must be C-contiguous and of one dtype (updated in place)")
    ps = tuple(p.reshape(-1) for p in params)
    gs = tuple(np.ascontiguousarray(g, dtype=dtype).reshape(-1) for g in grads)
    if momentum:
        _sgd_momentum(ps, gs, tuple(b.reshape(-1) for b in buffers), np.array(first, np.bool_), t(lr),
                      t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov))
    else:
        _sgd_plain(ps, gs, t(lr), t(weight_decay))
