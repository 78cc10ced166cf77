"""Gradient checking: backprop's answers against central finite differences.

For a layer ``y = f(x)`` we check the scalar ``L = sum(f(x) * G)`` with a
random upstream gradient ``G`` (so every output element matters, weighted
differently, and a transposed or misrouted gradient cannot hide). Backprop
gives ``dL/dx = layer.backward(G)``; the numerical estimate of each entry is
the central difference

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)       eps = 1e-6

whose truncation error is O(eps^2 f''') ~ 1e-12 and whose rounding error in
float64 is about 1e-16 * |L| / eps ~ 1e-10 * |L|. Float32 would drown a wrong
gradient below ~1e-3, so checks always run in float64.

The two are compared with the norm-wise relative error

    rel_error(a, n) = ||a - n||_2 / max(||a||_2 + ||n||_2, 1e-30)

which is scale-free and not fooled by tiny entries. A correct float64
gradient scores 1e-11 to 1e-8 here (the whole network, whose loss is a
small mean, is at the top of that range); a wrong one scores ~1e-3 or more. The tests require
``rel_error <= 1e-6`` (TOLERANCE).

Finite differences are only valid where the function is smooth within
``eps``: keep inputs away from ReLU kinks (|x| not near 0) and max-pool ties
(window values not within ``eps`` of each other), or the estimate is of a
different function than the one backprop differentiates.

A layer that draws random numbers (Dropout's mask) would be a different
function at every call. So every forward here replays the same draws: the
state of each Generator a layer holds (its ``rng``) is taken once and
restored before each call (:func:`same_draws`). With the mask held fixed,
dropout is the linear map backprop differentiates. BatchNorm runs in training
mode, as it is trained: its output depends on the batch statistics, and the
check covers that dependence (its running statistics change with every call,
but the output does not read them in training mode).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.module import Module

TOLERANCE = 1e-6
EPS = 1e-6


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / max(||a|| + ||n||, 1e-30)``; 0.0 when both are exactly zero."""
    diff = np.linalg.norm(np.ravel(analytic) - np.ravel(numeric))
    scale = np.linalg.norm(np.ravel(analytic)) + np.linalg.norm(np.ravel(numeric))
    return float(diff / max(scale, 1e-30))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS,
                       indices: np.ndarray | None = None) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x``, perturbed in place.

    ``f`` must read ``x`` each call. ``indices`` (flat) limits the work to a
    sample; the returned array is ``x``-shaped with the other entries 0.
    Every entry is restored exactly after its perturbation.
    """
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)   # views: writing them writes x and grad
    for i in (range(x.size) if indices is None else indices):
        old = flat_x[i]
        flat_x[i] = old + eps
        plus = f()
        flat_x[i] = old - eps
        minus = f()
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2 * eps)
    return grad


def _generators(model: Module) -> Iterator[np.random.Generator]:
    """Every Generator held as ``rng`` by ``model`` or a layer inside it."""
    if isinstance(getattr(model, "rng", None), np.random.Generator):
        yield model.rng
    for _, child in model.named_children():
        yield from _generators(child)


def same_draws(model: Module) -> Callable[[np.ndarray], np.ndarray]:
    """``model.forward``, except that every call draws the same random numbers (Dropout's mask
    is held fixed): the Generators' states are taken now and restored before each call."""
    generators = list({id(g): g for g in _generators(model)}.values())
    states = [g.bit_generator.state for g in generators]

    def forward(x: np.ndarray) -> np.ndarray:
        for g, state in zip(generators, states):
            g.bit_generator.state = state
        return model.forward(x)
    return forward


def check_layer(layer: Module, x: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Relative errors of ``layer``'s input gradient and each parameter gradient.

    ``layer`` and ``x`` must be float64. Returns ``{"input": e, "weight": e, ...}``;
    the input entry is absent when the layer does not compute ``dx``.
    """
    forward = same_draws(layer)
    upstream = rng.standard_normal(forward(x).shape)

    def loss() -> float:
        return float(np.sum(forward(x) * upstream))

    forward(x)
    dx = layer.backward(upstream)
    errors = {}
    if dx is not None:
        errors["input"] = rel_error(dx, numerical_gradient(loss, x))
    for name, p in layer.named_parameters():
        analytic = p.grad.copy()
        errors[name] = rel_error(analytic, numerical_gradient(loss, p.data))
    return errors


def check_model(model: Module, x: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                samples: int = 20) -> dict[str, float]:
    """End to end: model, then softmax cross-entropy; errors of ``samples`` entries per parameter.

    Returns ``{"conv1.weight": e, ..., "fc3.bias": e}`` comparing backprop
    with central differences on a random sample of each parameter's entries.
    """
    forward = same_draws(model)

    def loss() -> float:
        return cross_entropy(forward(x), target)[0]

    _, dlogits = cross_entropy(forward(x), target)
    model.backward(dlogits)
    errors = {}
    for name, p in model.named_parameters():
        idx = rng.choice(p.data.size, size=min(samples, p.data.size), replace=False)
        numeric = numerical_gradient(loss, p.data, indices=idx)
        errors[name] = rel_error(p.grad.reshape(-1)[idx], numeric.reshape(-1)[idx])
    return errors
