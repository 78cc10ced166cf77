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

:func:`check_network` runs all of this on a whole network at once (the
``gradcheck`` command prints its :func:`format_report`): each layer on the
input it sees inside the network, then the loss with respect to every
parameter, on sampled entries so the paper's net checks in seconds.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import BatchNorm1d, BatchNorm2d, MaxPool2d, ReLU
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.module import Module, Sequential

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


def _rewinder(model: Module) -> Callable[[], None]:
    """A function that puts every Generator of ``model`` back in the state it is in now."""
    generators = list({id(g): g for g in _generators(model)}.values())
    states = [g.bit_generator.state for g in generators]

    def rewind() -> None:
        for g, state in zip(generators, states):
            g.bit_generator.state = state
    return rewind


def same_draws(model: Module) -> Callable[[np.ndarray], np.ndarray]:
    """``model.forward``, except that every call draws the same random numbers (Dropout's mask
    is held fixed): the Generators' states are taken now and restored before each call."""
    rewind = _rewinder(model)

    def forward(x: np.ndarray) -> np.ndarray:
        rewind()
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


# -- the whole network: every layer, then the loss -------------------------------

SAMPLES = 40          # entries compared per tensor: a wrong index shows in a few, and the paper's net takes seconds
BATCH = 4             # not 2: BatchNorm1d over 2 rows gives x_hat = +-1 whatever x, its dx pure rounding
MAX_TRIES = 4         # draw at most MAX_TRIES * samples entries looking for ones away from kinks
# A bias right before a training-mode BatchNorm is subtracted again with the batch mean: its
# true gradient is exactly 0, so both estimates are rounding noise (measured at most ~1e-16;
# a finite difference's noise is at most ~ulp(L) / eps ~ 1e-10) and their relative error means
# nothing. Such a row passes when both stay below this; the other gradients of such a net are
# ~1e-3 to 1e-1, so a backward that leaked into the bias would show.
ZERO_GRADIENT = 1e-8


@dataclass(frozen=True)
class GradRow:
    """One line of the report: one gradient of one layer, backprop against central differences.

    Attributes:
        layer: the layer's name in the network (``conv2``).
        what: ``"input"`` or a parameter (``"weight"``, ``"bias"``), checked on the layer
            alone with ``L = sum(layer(x) * G)``; or ``"weight (whole network)"``: the
            network's cross-entropy loss with respect to that parameter, through every
            layer above it.
        rel_error: :func:`rel_error` over the compared entries; NaN for a gradient that is
            0 by construction (see :data:`ZERO_GRADIENT` and ``note``).
        tolerance: the bound ``rel_error`` must not exceed (for a zero gradient, the bound
            on both gradients' largest entry, :data:`ZERO_GRADIENT`).
        passed: whether it did (or, for a zero gradient, whether both estimates are ~0).
        entries: how many entries were compared.
        seconds: the time the finite differences of this row took.
        note: entries skipped at a kink, or why a row is judged differently; else "".
    """

    layer: str
    what: str
    rel_error: float
    tolerance: float
    passed: bool
    entries: int
    seconds: float
    note: str = ""


def _leaves(model: Module, prefix: str = "") -> list[tuple[str, Module]]:
    """``(dotted name, layer)`` for every layer in forward order, inside nested Sequentials."""
    if not isinstance(model, Sequential):
        return [(prefix.rstrip(".") or model.name or type(model).__name__, model)]
    leaves = []
    for key, layer in model.named_children():
        leaves += _leaves(layer, prefix + key + ".") if isinstance(layer, Sequential) else [(prefix + key, layer)]
    return leaves


def _forward_with_kinks(layers: Sequence[Module], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run ``layers`` in order on ``x``; also return which linear piece each kink layer is on:
    the sign pattern of every ReLU's input and the argmax of every max-pool window (the tap
    the pool itself recorded for its backward, the first maximum on a tie)."""
    kinks = []
    for layer in layers:
        if isinstance(layer, ReLU):
            kinks.append(x > 0)
        x = layer.forward(x)
        if isinstance(layer, MaxPool2d):
            kinks.append(layer._argmax)
    return x, kinks


def _sampled_differences(f: Callable[[], tuple[float, list[np.ndarray]]], x: np.ndarray,
                         base: list[np.ndarray], rng: np.random.Generator, samples: int,
                         eps: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Central differences of ``f()[0]`` at up to ``samples`` entries of ``x`` drawn by ``rng``.

    ``f`` returns ``(loss, kinks)`` (see :func:`_forward_with_kinks`). Away from
    ReLU kinks and pool ties the network is smooth, so this is how the check keeps
    clear of them: an entry whose ``+-eps`` step changes any kink pattern from
    ``base`` (a ReLU input crossing 0, a pool window's maximum moving, as at a
    tie) is skipped and another drawn, since there the difference quotient
    mixes two slopes. With the same pattern at ``x - eps``, ``x`` and ``x + eps``
    every ReLU and pool is one linear map on the whole step, so the estimate
    is of the very function backprop differentiates. (Only a ReLU input that
    crossed 0 and came back within the 2e-6 step would go unseen: that needs a
    sharper turn than any layer here makes.)

    Returns (flat indices compared, their estimates, entries skipped).
    """
    flat = x.reshape(-1)                   # a view (x is contiguous): writing it writes x
    taken, values, skipped = [], [], 0
    for i in rng.permutation(x.size)[:MAX_TRIES * samples]:
        if len(taken) == samples:
            break
        old = flat[i]
        flat[i] = old + eps
        plus, kinks_plus = f()
        flat[i] = old - eps
        minus, kinks_minus = f()
        flat[i] = old
        if all(np.array_equal(a, b) and np.array_equal(c, b) for a, c, b in zip(kinks_plus, kinks_minus, base)):
            taken.append(i)
            values.append((plus - minus) / (2 * eps))
        else:
            skipped += 1
    return np.array(taken, dtype=np.intp), np.array(values, dtype=np.float64), skipped


def _row(layer: str, what: str, analytic: np.ndarray, x: np.ndarray, f: Callable[[], tuple[float, list]],
         base: list[np.ndarray], rng: np.random.Generator, samples: int, eps: float, tolerance: float,
         zero_gradient: bool = False, why_zero: str = "") -> GradRow:
    """Compare ``analytic`` (``x``-shaped) with central differences of ``f`` on sampled entries of ``x``."""
    start = time.perf_counter()
    idx, numeric, skipped = _sampled_differences(f, x, base, rng, samples, eps)
    seconds = time.perf_counter() - start
    picked = analytic.reshape(-1)[idx]
    note = f"{skipped} {'entry' if skipped == 1 else 'entries'} skipped at a kink or tie" if skipped else ""
    if len(idx) == 0:
        return GradRow(layer, what, float("nan"), tolerance, False, 0, seconds,
                       f"no entry away from a kink or tie in {skipped} tried; draw another batch")
    if zero_gradient:
        biggest = max(float(np.abs(picked).max()), float(np.abs(numeric).max()))
        note = (f"true gradient 0 ({why_zero}): both |grad| must be <= {ZERO_GRADIENT:.0e}, "
                f"max {biggest:.1e}" + (f"; {note}" if note else ""))
        return GradRow(layer, what, float("nan"), ZERO_GRADIENT, biggest <= ZERO_GRADIENT, len(idx), seconds, note)
    error = rel_error(picked, numeric)
    return GradRow(layer, what, error, tolerance, error <= tolerance, len(idx), seconds, note)


def _layer_rows(name: str, layer: Module, x: np.ndarray, rng: np.random.Generator, samples: int,
                eps: float, tolerance: float) -> list[GradRow]:
    """The layer alone on its input ``x``: ``L = sum(layer(x) * G)`` with a random upstream ``G``."""
    rewind = _rewinder(layer)

    def run() -> tuple[np.ndarray, list[np.ndarray]]:
        rewind()                            # Dropout: the same mask every call
        return _forward_with_kinks([layer], x)

    y, base = run()
    upstream = rng.standard_normal(y.shape)

    def loss() -> tuple[float, list[np.ndarray]]:
        out, kinks = run()
        return float(np.vdot(out, upstream)), kinks

    run()
    dx = layer.backward(upstream)
    checks = [] if dx is None else [("input", np.array(dx), x)]   # None: needs_input_grad=False
    checks += [(what, p.grad.copy(), p.data) for what, p in layer.named_parameters()]
    return [_row(name, what, analytic, data, loss, base, rng, samples, eps, tolerance)
            for what, analytic, data in checks]


def _walk(model: Module, leaves: list[tuple[str, Module]], x: np.ndarray
          ) -> tuple[np.ndarray, list[np.ndarray], list[Callable[[], None]]]:
    """One forward through the network: (logits, each layer's input, a rewind of the draws to
    where they stood when each layer began), so any layer can be rerun on exactly what it saw."""
    inputs, rewinds = [], []
    for _, layer in leaves:
        inputs.append(x.copy())
        rewinds.append(_rewinder(model))
        x = layer.forward(x)
    return x, inputs, rewinds


def _network_rows(leaves: list[tuple[str, Module]], inputs: list[np.ndarray], rewinds: list[Callable[[], None]],
                  target: np.ndarray, grads: dict[str, np.ndarray], rng: np.random.Generator, only: str | None,
                  samples: int, eps: float, tolerance: float) -> list[GradRow]:
    """The network's loss with respect to each parameter (of layer ``only``'s), from backprop's ``grads``.

    A parameter of layer k changes nothing below it, so each difference reruns
    layers k, k+1, ... from layer k's input as the network saw it (the same
    numbers a whole forward gives, without recomputing the layers below).
    """
    layers = [layer for _, layer in leaves]
    # A bias right before a training-mode BatchNorm: the batch mean takes it away again.
    zero = {f"{name}.bias": f"{after_name} subtracts it again"
            for (name, layer), (after_name, after) in zip(leaves, leaves[1:])
            if isinstance(after, (BatchNorm1d, BatchNorm2d)) and after.training}
    rows = []
    for k, (name, layer) in enumerate(leaves):
        if only not in (None, name):
            continue

        def loss(k: int = k) -> tuple[float, list[np.ndarray]]:
            rewinds[k]()
            logits, kinks = _forward_with_kinks(layers[k:], inputs[k])
            return cross_entropy(logits, target)[0], kinks

        _, base = loss()
        for what, p in layer.named_parameters():
            full = f"{name}.{what}"
            rows.append(_row(name, f"{what} (whole network)", grads[full], p.data, loss, base, rng, samples,
                             eps, tolerance, zero_gradient=full in zero, why_zero=zero.get(full, "")))
    return rows


def check_network(model: Module, image_shape: tuple[int, int, int], rng: np.random.Generator,
                  layer: str | None = None, *, batch: int = BATCH, samples: int = SAMPLES,
                  eps: float = EPS, tolerance: float = TOLERANCE) -> list[GradRow]:
    """Check every gradient of a network against central differences, in float64.

    Args:
        model: the network (a :class:`Sequential`, as :func:`numpy_cnn.nn.arch.build_model`
            makes). It is not changed: the check runs on a float64 deep copy in training
            mode (BatchNorm on batch statistics, Dropout's masks held fixed, see
            :func:`same_draws`), with every parameter trainable.
        image_shape: (C, H, W) of one input image.
        rng: draws the batch (``batch`` images of N(0, 1) values and their classes),
            the upstream gradients and the sampled entries.
        layer: check only this layer (its name, ``conv2``); an unknown name is a
            :class:`UserError` listing the names.
        batch: images in the batch.
        samples: entries compared per tensor, drawn at random (all if fewer).
        eps: the step of the central differences.
        tolerance: the largest :func:`rel_error` that passes.

    Returns:
        For each layer in forward order, one :class:`GradRow` per gradient it computes,
        each checked on the layer alone with the input it sees inside the network: its
        input gradient (unless the layer skips it, ``needs_input_grad=False`` on the first
        conv) and each parameter's; then one row per parameter for the whole network, the
        loss through every layer above it. Entries at a ReLU kink or a pool tie are skipped
        and others drawn (see :func:`_sampled_differences`).
    """
    if len(image_shape) != 3:
        raise UserError(f"gradcheck: image_shape must be (C, H, W), got {tuple(image_shape)}")
    net = copy.deepcopy(model).to(np.float64).train()
    for p in net.parameters():
        p.requires_grad = True                       # check frozen layers' backward too
        p.data = np.ascontiguousarray(p.data)        # perturbed in place through a flat view
    leaves = _leaves(net)
    names = [name for name, _ in leaves]
    if layer is not None and layer not in names:
        raise UserError(f"gradcheck: no layer {layer!r} in this network; its layers are {', '.join(names)}")
    x = rng.standard_normal((batch, *image_shape))
    logits, inputs, rewinds = _walk(net, leaves, x)
    if logits.ndim != 2:
        raise UserError(f"gradcheck: the network must end in logits (N, classes), it gives {logits.shape}")
    target = rng.integers(0, logits.shape[1], size=batch)
    net.backward(cross_entropy(logits, target)[1])   # backprop's answers, before any layer runs again
    grads = {name: p.grad.copy() for name, p in net.named_parameters()}
    rows = []
    for (name, leaf), seen in zip(leaves, inputs):
        if layer in (None, name):
            rows += _layer_rows(name, leaf, seen, rng, samples, eps, tolerance)
    return rows + _network_rows(leaves, inputs, rewinds, target, grads, rng, layer, samples, eps, tolerance)


def format_report(rows: Sequence[GradRow]) -> str:
    """The rows as a fixed-width table, then ``all N checks passed in X s`` or ``K of N FAILED``."""
    header = ("layer", "gradient", "entries", "rel. error", "tolerance", "result")
    table = [header] + [(r.layer, r.what, str(r.entries), "-" if np.isnan(r.rel_error) else f"{r.rel_error:.1e}",
                         f"{r.tolerance:.0e}", "PASS" if r.passed else "FAIL") for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = []
    for line, row in zip(table, [None, *rows]):
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))]
        note = f"  {row.note}" if row is not None and row.note else ""
        lines.append("  ".join(cells) + note)
    failed = sum(not r.passed for r in rows)
    seconds = sum(r.seconds for r in rows)
    lines.append(f"all {len(rows)} checks passed in {seconds:.1f} s" if not failed
                 else f"{failed} of {len(rows)} FAILED")
    return "\n".join(lines)
