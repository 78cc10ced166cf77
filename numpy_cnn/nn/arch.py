"""Build a network from a one-line spec such as the paper's ``c6k5-relu-pool2-c16k5-relu-pool2-fc120-relu-fc84-relu``.

Tokens, separated by ``-``:

==============  ===========================================================
``c<F>k<K>``    ``Conv2d(C_in, F, K)``; append ``s<S>`` for stride, ``p<P>`` for
                padding, in that order: ``c32k3s1p1``
``relu``        ``ReLU()``
``pool<K>``     ``MaxPool2d(K)``; ``pool3s2`` sets the stride
``fc<N>``       ``Linear(in, N)``; a ``Flatten`` goes before the first one
``bn``          BatchNorm of the kind its position needs: ``BatchNorm2d(C)``
                before the first fc, ``BatchNorm1d(N)`` after one; it must
                come right after a conv or an fc (it normalises what that
                layer computed): ``c6k5-bn-relu``, not ``c6k5-relu-bn`` or ``bn-bn``
``drop<P>``     ``Dropout(P)``, ``0 <= P < 1``: ``drop0.5``; it must come after a
                layer, and not right after another drop; its masks come from
                the Generator the model is built with (the run's)
==============  ===========================================================

So the paper's net with BatchNorm after each conv and Dropout before the
last hidden fc is ``c6k5-bn-relu-pool2-c16k5-bn-relu-pool2-fc120-relu-drop0.5-fc84-relu``.

The classifier ``Linear(..., num_classes)`` is appended, so the spec describes
only the hidden layers. Layers are named by kind and count, ``conv1``,
``relu1``, ``pool1``, ``bn1``, ``drop1``, ..., ``flatten``, ``fc1``, ..., so the default spec gives
the network of :func:`numpy_cnn.nn.models.paper_net` (built from it) and the same
``state_dict`` keys as the PyTorch tutorial net. Parameters are drawn in
layer order from one Generator, so a seed fixes every weight (BatchNorm's
start at 1 and 0 and Dropout draws nothing when built, so neither changes the
weights of the layers around it).

Shapes are tracked while parsing, so an impossible spec (a window larger than
its input, say) fails before any weight is allocated, naming the token.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.shapes import conv_output_size
from numpy_cnn.nn.init import as_generator
from numpy_cnn.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.module import Module, Sequential

# The paper's network, the PyTorch CIFAR-10 tutorial net: what training runs by default and
# what numpy_cnn.nn.models.paper_net builds (its docstring draws the shapes).
DEFAULT_ARCH = "c6k5-relu-pool2-c16k5-relu-pool2-fc120-relu-fc84-relu"

_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?")
_POOL = re.compile(r"pool(\d+)(?:s(\d+))?")
_FC = re.compile(r"fc(\d+)")
_DROP = re.compile(r"drop(\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class _Layer:
    """One parsed token: its kind (``conv``, ``relu``, ``pool``, ``fc``, ``bn``, ``drop``) and arguments."""

    kind: str
    args: tuple[float, ...] = ()
    token: str = ""


def parse_arch(spec: str) -> list[_Layer]:
    """Split a spec into layers; an empty spec or an unknown token is a one-line error."""
    tokens = [t.strip() for t in spec.strip().lower().split("-")] if spec.strip() else []
    if not tokens:
        raise UserError(f"empty architecture spec; use e.g. --arch {DEFAULT_ARCH}")
    layers = []
    for token in tokens:
        if token in ("relu", "bn"):
            layers.append(_Layer(token, (), token))
        elif m := _DROP.fullmatch(token):
            p = float(m.group(1))
            if not p < 1:
                raise UserError(f"architecture spec {spec!r}: token {token!r}: the dropout probability "
                                "must be below 1 (1 would drop everything); use e.g. drop0.5")
            layers.append(_Layer("drop", (p,), token))
            continue
        elif m := _CONV.fullmatch(token):
            f, k, s, p = m.groups()
            layers.append(_Layer("conv", (int(f), int(k), int(s or 1), int(p or 0)), token))
        elif m := _POOL.fullmatch(token):
            k, s = m.groups()
            layers.append(_Layer("pool", (int(k), int(s or k)), token))
        elif m := _FC.fullmatch(token):
            layers.append(_Layer("fc", (int(m.group(1)),), token))
        else:
            raise UserError(f"architecture spec {spec!r}: unknown token {token!r}; "
                            "use c<F>k<K>[s<S>][p<P>], relu, pool<K>[s<S>], fc<N>, bn or drop<P>")
        if any(a < 1 for a in layers[-1].args[:3]):
            raise UserError(f"architecture spec {spec!r}: token {token!r} needs sizes >= 1")
    return layers


# A float32 weight takes 4 bytes, and training holds three copies (weight, gradient,
# momentum): past this many parameters a spec is a typo (fc1000000), not an experiment.
MAX_PARAMETERS = 2 ** 28


@dataclass(frozen=True)
class _Planned:
    """One layer of a checked spec: its name, kind and constructor arguments (sizes resolved)."""

    name: str
    kind: str
    args: tuple[float, ...] = ()


def _plan(spec: str, in_channels: int, image_size: int, num_classes: int) -> list[_Planned]:
    """Resolve every layer's sizes by following the shapes through ``spec``; no weights are made.

    Raises :class:`UserError` naming the token whose input would be smaller than its kernel or
    window, a conv after an fc, a ``bn`` with no conv or fc before it, or a spec with more than
    :data:`MAX_PARAMETERS` parameters.
    """
    counts: dict[str, int] = {}
    plan: list[_Planned] = []
    channels, side, features = in_channels, image_size, None   # features: set once flattened
    parameters = 0

    def add(kind: str, *args: float, prefix: str | None = None) -> None:
        prefix = prefix or kind      # bn2d and bn1d are both counted as bn1, bn2, ...
        counts[prefix] = counts.get(prefix, 0) + 1
        plan.append(_Planned(f"{prefix}{counts[prefix]}", kind, args))

    def flatten() -> int:
        plan.append(_Planned("flatten", "flatten"))
        return channels * side * side

    for position, layer in enumerate(parse_arch(spec), start=1):
        where = f"architecture spec {spec!r}: token {position} {layer.token!r}"
        if layer.kind in ("conv", "pool") and features is not None:
            raise UserError(f"{where} comes after an fc layer; put convolutions and pools first")
        if layer.kind == "conv":
            f, k, s, p = layer.args
            out = conv_output_size(side, k, s, p)
            if out < 1:
                raise UserError(f"{where}: its {side}x{side} input is smaller than the {k}x{k} kernel; "
                                "use a smaller kernel, padding, or fewer pools")
            add("conv", channels, f, k, s, p)
            parameters += f * channels * k * k + f
            channels, side = f, out
        elif layer.kind == "pool":
            k, s = layer.args
            if side < k:
                raise UserError(f"{where}: its {side}x{side} input is smaller than the {k}x{k} window; "
                                "use fewer pools or larger images")
            add("pool", k, s)
            side = (side - k) // s + 1
        elif layer.kind == "relu":
            add("relu")
        elif layer.kind == "drop":
            if not plan or plan[-1].kind == "drop":
                what = "starts the spec" if not plan else "follows another drop"
                raise UserError(f"{where} {what}; dropout zeroes a layer's outputs, so put it after a layer "
                                "(one drop at a time), e.g. fc120-relu-drop0.5")
            add("drop", *layer.args)
        elif layer.kind == "bn":
            if not any(p.kind in ("conv", "fc") for p in plan):
                raise UserError(f"{where} has no conv or fc before it; bn normalises a layer's output, "
                                "so put it after one, e.g. c6k5-bn-relu")
            if plan[-1].kind not in ("conv", "fc"):
                raise UserError(f"{where} follows {plan[-1].name}; bn normalises what a conv or fc computed, "
                                "so put it right after one, e.g. c6k5-bn-relu")
            width = channels if features is None else features
            add("bn2d" if features is None else "bn1d", width, prefix="bn")
            parameters += 2 * width
        else:
            if features is None:
                features = flatten()
            add("fc", features, layer.args[0])
            parameters += (features + 1) * layer.args[0]
            features = layer.args[0]
    if features is None:
        features = flatten()
    add("fc", features, num_classes)
    parameters += (features + 1) * num_classes
    if parameters > MAX_PARAMETERS:
        raise UserError(f"architecture spec {spec!r} has {parameters:,} parameters "
                        f"({4 * parameters / 2 ** 30:.1f} GiB of float32 weights); the limit is "
                        f"{MAX_PARAMETERS:,}: use fewer filters or smaller fc layers")
    return plan


def check_arch(spec: str, in_channels: int = 3, image_size: int = 48, num_classes: int = 7) -> None:
    """Raise the :class:`UserError` :func:`build_model` would raise for ``spec``, without making weights.

    The trainer calls it before loading any data, so a bad ``--arch`` writes nothing.
    """
    _plan(spec, in_channels, image_size, num_classes)


# The planned kinds that hold parameters: weights and biases, or BatchNorm's scale and shift.
_WITH_PARAMETERS = ("conv", "fc", "bn2d", "bn1d")


def trainable_layer_names(spec: str, in_channels: int = 3, image_size: int = 48, num_classes: int = 7) -> list[str]:
    """The names of the layers of ``spec`` that have parameters (``conv1``, ``bn1``, ``fc1``, ...), in order.

    What ``--freeze`` may name, read from the plan without making weights: the
    same names as ``[n for n, layer in build_model(spec).named_children() if layer.parameters()]``.
    Raises the :class:`UserError` :func:`check_arch` raises for a bad spec.
    """
    return [layer.name for layer in _plan(spec, in_channels, image_size, num_classes)
            if layer.kind in _WITH_PARAMETERS]


def build_model(spec: str = DEFAULT_ARCH, in_channels: int = 3, image_size: int = 48,
                num_classes: int = 7, *, rng: np.random.Generator | int | None = None,
                dtype: type = np.float32, conv_method: str | None = None,
                pool_method: str = "numba") -> Sequential:
    """The network a spec describes, for (N, in_channels, image_size, image_size) input.

    Returns a :class:`Sequential` ending in ``Linear(..., num_classes)``;
    logits are (N, num_classes). ``conv_method`` and ``pool_method`` force the
    implementation of every conv and pool (see :class:`Conv2d` and
    :class:`MaxPool2d`); the defaults are the fast ones. Raises :class:`UserError` naming the token
    whose input would be smaller than its kernel or window, or a conv after an
    fc, or for a spec over :data:`MAX_PARAMETERS` parameters (see :func:`_plan`).
    """
    plan = _plan(spec, in_channels, image_size, num_classes)   # before any weight is drawn
    rng = as_generator(rng)
    named: list[tuple[str, Module]] = []
    first_conv = True
    for layer in plan:
        if layer.kind == "conv":
            c, f, k, s, p = layer.args
            # The first conv's input is data, not a result: skip its input gradient.
            named.append((layer.name, Conv2d(c, f, k, s, p, rng=rng, dtype=dtype, method=conv_method,
                                             needs_input_grad=not first_conv)))
            first_conv = False
        elif layer.kind == "pool":
            named.append((layer.name, MaxPool2d(*layer.args, method=pool_method)))
        elif layer.kind == "relu":
            named.append((layer.name, ReLU()))
        elif layer.kind == "bn2d":
            named.append((layer.name, BatchNorm2d(*layer.args, dtype=dtype)))
        elif layer.kind == "bn1d":
            named.append((layer.name, BatchNorm1d(*layer.args, dtype=dtype)))
        elif layer.kind == "drop":
            named.append((layer.name, Dropout(*layer.args, rng=rng)))   # the masks come from rng
        elif layer.kind == "flatten":
            named.append((layer.name, Flatten()))
        else:
            named.append((layer.name, Linear(*layer.args, rng=rng, dtype=dtype)))
    return Sequential(OrderedDict(named))
