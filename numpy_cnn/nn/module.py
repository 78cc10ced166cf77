"""Parameters, buffers, the Module base class and Sequential: the parameter protocol.

Every layer stores its learnable arrays as :class:`Parameter` objects (a value
``data`` and its gradient ``grad``). The optimizer, checkpoints, gradient
checks and study tools all reach them the same way, through
``named_parameters()``, exactly as in ``torch.nn.Module``.

State that is saved but not learnt (BatchNorm's running statistics) is a
:class:`Buffer`: reached through ``named_buffers()``, in ``state_dict`` under
the same key PyTorch uses, but not in ``parameters()``, so no optimizer
touches it. ``state_dict`` lists each module's parameters, then its buffers,
then its children's, which is PyTorch's order.

``train()`` and ``eval()`` set ``training`` on a module and all its children,
as in PyTorch: BatchNorm normalises with the batch's statistics in training
and with its running ones in eval; Dropout drops only in training.

Gradients are *overwritten* by each ``backward`` call, not accumulated as in
PyTorch, so there is no need to call ``zero_grad`` between steps. (It exists
for PyTorch users and sets every ``grad`` to ``None``.)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, Mapping

import numpy as np

from numpy_cnn.errors import UserError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Parameter:
    """A learnable array and its gradient (same shape and dtype, or ``None`` before backward).

    ``requires_grad=False`` freezes it (PyTorch's flag): no optimizer steps it, ``Linear`` and
    ``Conv2d`` leave its ``grad`` at ``None``, and ``Sequential.backward`` stops below the
    lowest layer that still has a trainable parameter.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        self.data = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


class Buffer:
    """A saved, non-learnt array (``running_mean``, ``num_batches_tracked``): no gradient.

    Its dtype is its own: ``Module.to`` casts floating buffers with the
    parameters but leaves integer counters alone, as PyTorch's ``.double()`` does.
    """

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Buffer(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: ``forward(x)`` returns the output, ``backward(grad_out)`` the input gradient.

    ``forward`` keeps what ``backward`` needs (the chain rule needs the forward
    values), so call them in pairs. Subclasses register parameters by
    assigning :class:`Parameter` attributes, buffers by assigning
    :class:`Buffer` attributes and children by assigning :class:`Module`
    attributes, as in PyTorch.
    """

    # Set by the parent container, so errors can say "conv1 = Conv2d(...)".
    name: str = ""
    # Training mode (the default, as in PyTorch); ``eval()`` clears it, ``train()`` sets it.
    training: bool = True

    def __setattr__(self, key: str, value: object) -> None:
        if isinstance(value, (Parameter, Buffer, Module)):
            self.__dict__.setdefault("_registry", OrderedDict())[key] = value
            if isinstance(value, Module) and not value.name:
                value.name = key
        object.__setattr__(self, key, value)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- the parameter protocol ------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for key, value in self.__dict__.get("_registry", {}).items():
            if isinstance(value, Module):
                yield key, value

    def _named(self, kinds: tuple[type, ...], prefix: str = "") -> Iterator[tuple[str, Parameter | Buffer]]:
        """This module's own entries of each kind in turn, then each child's: PyTorch's order
        (``state_dict`` asks for ``(Parameter, Buffer)``: own parameters, own buffers, children)."""
        registry = self.__dict__.get("_registry", {})
        for kind in kinds:
            for key, value in registry.items():
                if isinstance(value, kind):
                    yield prefix + key, value
        for key, value in registry.items():
            if isinstance(value, Module):
                yield from value._named(kinds, prefix + key + ".")

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, Parameter)`` pairs, children first-to-last, as in PyTorch."""
        yield from self._named((Parameter,), prefix)   # type: ignore[misc]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Buffer]]:
        """Yield ``(dotted_name, Buffer)`` pairs (``bn1.running_mean``, ...), as in PyTorch."""
        yield from self._named((Buffer,), prefix)   # type: ignore[misc]

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def buffers(self) -> list[Buffer]:
        return [b for _, b in self.named_buffers()]

    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and every child; returns ``self`` (as PyTorch)."""
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: BatchNorm uses its running statistics, Dropout passes its input through."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, keyed and ordered like the same PyTorch model's."""
        return OrderedDict((name, p.data.copy()) for name, p in self._named((Parameter, Buffer)))

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy arrays into the parameters and buffers; keys, shapes must match exactly
        (PyTorch's ``strict=True``). Each array keeps the dtype it had in the model.

        Nothing is changed unless every key and shape matches.
        """
        params = OrderedDict(self._named((Parameter, Buffer)))
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise UserError(f"state_dict does not fit this model: missing keys {missing}, "
                            f"unexpected keys {unexpected}; was it saved from another architecture?")
        for key, p in params.items():
            if tuple(np.shape(state[key])) != p.shape:
                raise UserError(f"state_dict key {key!r} has shape {tuple(np.shape(state[key]))}, "
                                f"the model expects {p.shape}; was it saved from another architecture?")
        for key, p in params.items():
            p.data = np.array(state[key], dtype=p.data.dtype, copy=True)
            if isinstance(p, Parameter):
                p.grad = None

    def to(self, dtype: np.dtype | type) -> "Module":
        """Cast every parameter and floating buffer to ``dtype`` (float32 to train, float64 for
        gradient checks); integer buffers (``num_batches_tracked``) stay integers."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise UserError(f"{self.describe()}: dtype must be float32 or float64, got {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for b in self.buffers():
            if b.data.dtype in FLOAT_DTYPES:
                b.data = b.data.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype | None:
        """The parameters' dtype, or ``None`` for a layer without parameters."""
        params = self.parameters()
        return params[0].data.dtype if params else None

    def trace_notes(self) -> list[str]:
        """Lines ``trace`` prints about the last forward beyond shapes (BatchNorm's statistics,
        Dropout's keep rate); most layers have none."""
        return []

    # -- errors a user can read ----------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def describe(self) -> str:
        """The layer as errors name it: ``conv1 = Conv2d(3, 6, kernel_size=(5, 5))``."""
        return f"{self.name} = {self!r}" if self.name else repr(self)

    def check_input(self, x: np.ndarray, ndim: int | None, expected: str) -> None:
        """Reject a wrong rank or dtype with a one-line error instead of broadcasting silently.

        ``ndim=None`` accepts any rank. ``expected`` is the shape contract as
        text, e.g. ``"(N, 3, H, W)"``.
        """
        if not isinstance(x, np.ndarray):
            raise UserError(f"{self.describe()}: expected a numpy array {expected}, got {type(x).__name__}")
        want = self.dtype
        dtype_ok = x.dtype == want if want is not None else x.dtype in FLOAT_DTYPES
        if (ndim is not None and x.ndim != ndim) or not dtype_ok:
            dt = want if want is not None else "float32 or float64"
            raise UserError(f"{self.describe()}: expected input {expected} {dt}, "
                            f"got {x.shape} {x.dtype}")


    def check_grad(self, grad_out: np.ndarray) -> None:
        """Backward takes dL/dy of exactly the shape forward returned: never broadcast.

        Layers record that shape as ``_y_shape`` in ``forward``.
        """
        shape = self.__dict__.get("_y_shape")
        if shape is None:
            raise UserError(f"{self.describe()}: backward called before forward; run forward on the batch first")
        if not isinstance(grad_out, np.ndarray) or grad_out.shape != shape:
            got = grad_out.shape if isinstance(grad_out, np.ndarray) else type(grad_out).__name__
            raise UserError(f"{self.describe()}: backward expected grad_out {shape} "
                            f"(the shape forward returned), got {got}")


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse.

    ``Sequential(OrderedDict(conv1=Conv2d(...), relu1=ReLU(), ...))`` names the
    layers, so parameters are called ``conv1.weight`` as in a PyTorch model
    built the same way. ``Sequential(a, b, c)`` names them ``0``, ``1``, ``2``.
    """

    def __init__(self, *layers: Module | Mapping[str, Module]) -> None:
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            named = list(layers[0].items())
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        for key, layer in named:
            layer.name = key
            setattr(self, key, layer)
        self.layers: list[Module] = [layer for _, layer in named]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Backward through the layers in reverse; returns dL/dx, or ``None`` where it is not needed.

        When frozen layers lie below every trainable one, nothing below the
        lowest trainable layer learns, so no gradient is needed there (autograd
        stops the same way): those layers are not called and the result is
        ``None``. With nothing frozen every layer runs.
        """
        floor = self.backward_floor()
        for layer in reversed(self.layers[floor:]):
            grad_out = layer.backward(grad_out)
        return grad_out if floor == 0 else None

    def backward_floor(self) -> int:
        """The index of the lowest layer :meth:`backward` calls.

        0 unless a frozen layer comes before the first trainable one; then
        that trainable layer's index (``len(self)`` if every parameter is frozen).
        """
        frozen_below = False
        for i, layer in enumerate(self.layers):
            flags = [p.requires_grad for _, p in layer.named_parameters()]
            if any(flags):
                return i if frozen_below else 0
            frozen_below = frozen_below or bool(flags)
        return len(self.layers) if frozen_below else 0

    def __getitem__(self, key: int | str) -> Module:
        return self.layers[key] if isinstance(key, int) else getattr(self, key)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = [f"  ({key}): {layer!r}" for key, layer in self.named_children()]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
