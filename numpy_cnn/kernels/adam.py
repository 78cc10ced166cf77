"""Adam and AdamW in numba: every parameter in one call, one pass over each.

The readable rule is :meth:`numpy_cnn.nn.optim.Adam.step` with
``method="reference"``. For one parameter (seen flat), at its step ``t``::

    p = p * (1 - lr * weight_decay)       AdamW (decoupled); Adam instead: g = g + weight_decay * p
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g
    p = p - step_size * (m / (sqrt(v) / bc2_sqrt + eps))
        step_size = lr / (1 - beta1^t),  bc2_sqrt = sqrt(1 - beta2^t)

In NumPy that is about ten whole-array passes and temporaries per
parameter. Here each element is read and written once (measurements:
``docs/performance.md``, "SGD and Adam").

Same numbers as the NumPy rule, bit for bit (the tests check): every scalar
is computed in float64 as Python computes it, then cast to the parameters'
dtype (as NumPy casts a Python float), and the operations run in the same
order with ``fastmath`` off, so nothing is fused or reordered. ``t`` differs
per parameter (one without a gradient skips a step), so ``step_size`` and
``bc2_sqrt`` come as one value per parameter.
"""

import numpy as np

from numpy_cnn.kernels._jit import jit

__all__ = ["adam_step"]


@jit(fastmath=())
def _adam(ps, gs, ms, vs, step_size, bc2_sqrt, beta1_c, beta2, beta2_c, eps, weight_decay, decay_factor,
          decoupled):
    """ps, gs, ms, vs: tuples of 1-D arrays; ``beta1_c = 1 - beta1``, ``beta2_c = 1 - beta2``,
    ``decay_factor = 1 - lr * weight_decay`` (AdamW)."""
    for k in range(len(ps)):
        p, g, m, v = ps[k], gs[k], ms[k], vs[k]
        a, b = step_size[k], bc2_sqrt[k]
        for i in range(p.shape[0]):
            gi = g[i]
            pi = p[i]
            if weight_decay != 0:
                if decoupled:
                    pi = pi * decay_factor
                else:
                    gi = gi + weight_decay * pi
            mi = m[i] + beta1_c * (gi - m[i])
            vi = beta2 * v[i] + beta2_c * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] = pi - a * (mi / (np.sqrt(vi) / b + eps))


def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Update ``params``, ``exp_avgs`` and ``exp_avg_sqs`` (C-contiguous, one dtype) in place.

    ``steps``: each parameter's step number ``t`` after this step (1 on its first).
    """
    if not params:
        return
    dtype = params[0].dtype
    t = dtype.type
    for a in (*params, *exp_avgs, *exp_avg_sqs):
        if not a.flags.c_contiguous or a.dtype != dtype:
            raise ValueError("adam_step: parameters and state must be C-contiguous and of one dtype")
    flat = lambda arrays: tuple(a.reshape(-1) for a in arrays)   # noqa: E731
    gs = tuple(np.ascontiguousarray(g, dtype=dtype).reshape(-1) for g in grads)
    step_size = np.array([lr / (1 - beta1 ** s) for s in steps]).astype(dtype)
    bc2_sqrt = np.array([np.sqrt(1 - beta2 ** s) for s in steps]).astype(dtype)
    _adam(flat(params), gs, flat(exp_avgs), flat(exp_avg_sqs), step_size, bc2_sqrt, t(1 - beta1), t(beta2),
          t(1 - beta2), t(eps), t(weight_decay), t(1 - lr * weight_decay), bool(decoupled))
