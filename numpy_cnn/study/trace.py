"""One forward and one backward pass on one image, written out as a student would on paper.

For every layer, in forward order: input and output shape (and the im2col
matrix a conv builds); then, in backward order: the gradient arriving at the
layer's output, the gradient it passes to its input, and each parameter
gradient, each with its shape and L2 norm. Between the two: the loss and the
predicted probabilities.

The layers are driven one at a time (not through ``model.forward``) so every
intermediate array can be recorded; the arithmetic is exactly the model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import Conv2d
from numpy_cnn.nn.loss import cross_entropy, softmax
from numpy_cnn.nn.module import Module
from numpy_cnn.study.summary import leaf_layers

Shape = tuple[int, ...]


@dataclass
class LayerTrace:
    """What one layer saw. Norms are L2 norms of the whole array (Frobenius for matrices).

    ``grad_in_shape`` / ``grad_in_norm`` are ``None`` when the layer skips its
    input gradient (``needs_input_grad=False``); ``param_grads`` maps a
    parameter's dotted name to ``(shape, norm)``.
    """

    name: str
    layer: str
    input_shape: Shape
    output_shape: Shape
    cols_shape: Shape | None = None
    grad_out_shape: Shape | None = None
    grad_out_norm: float | None = None
    grad_in_shape: Shape | None = None
    grad_in_norm: float | None = None
    param_grads: dict[str, tuple[Shape, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # the layer's own report (layer.trace_notes())


@dataclass
class Trace:
    """The whole pass: per-layer records, the loss, the softmax probabilities and the target."""

    layers: list[LayerTrace]
    loss: float
    probs: np.ndarray          # (K,)
    target: int
    class_names: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return format_trace(self)


def _norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64, copy=False)))


def _cols_shape(layer: Conv2d, output_shape: Shape) -> Shape:
    """(N, K, P): one row per (input channel, kernel tap), one column per output position."""
    kh, kw = layer.kernel_size
    n, _, ho, wo = output_shape
    return n, layer.in_channels * kh * kw, ho * wo


def run_trace(model: Module, x: np.ndarray, target: int | None = None,
              class_names: tuple[str, ...] | None = None) -> Trace:
    """Forward and backward through ``model`` on one image, recording every layer.

    x: (1, C, H, W) in the model's dtype (already preprocessed). ``target`` is the
    class index the loss is taken against; ``None`` uses the predicted class
    (the loss of "being sure of one's own answer"). Parameter gradients are
    left in ``Parameter.grad`` as after an ordinary backward.

    The model runs in whatever mode it is in: ``trace`` on the command line puts
    it in eval mode (running statistics, no dropout) unless asked for ``--mode train``,
    where BatchNorm normalises with this image's statistics (and updates its running
    ones) and Dropout draws a mask; each layer's ``trace_notes()`` says which happened.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise UserError(f"trace: expected one image as (1, C, H, W), got {x.shape}")
    records, out = [], x
    layers = list(leaf_layers(model))
    for name, layer in layers:
        inp, out = out, layer.forward(out)
        rec = LayerTrace(name, repr(layer), inp.shape, out.shape, notes=layer.trace_notes())
        if isinstance(layer, Conv2d):
            rec.cols_shape = _cols_shape(layer, out.shape)
        records.append(rec)
    if out.ndim != 2:
        raise UserError(f"trace: the model must end in logits (1, classes), it gives {out.shape}; "
                        f"end the architecture with a fully connected layer")
    k = out.shape[1]
    predicted = int(np.argmax(out[0]))
    target = predicted if target is None else int(target)
    if not 0 <= target < k:
        raise UserError(f"trace: target class {target} is not in [0, {k})")
    loss, grad = cross_entropy(out, np.array([target]))
    probs = softmax(out)[0]

    for (name, layer), rec in zip(reversed(layers), reversed(records)):
        rec.grad_out_shape, rec.grad_out_norm = grad.shape, _norm(grad)
        grad = layer.backward(grad)
        for pname, p in layer.named_parameters(name + "."):
            rec.param_grads[pname] = (p.grad.shape, _norm(p.grad))
        if grad is None:
            break       # needs_input_grad=False: nothing flows further back (a first layer)
        rec.grad_in_shape, rec.grad_in_norm = grad.shape, _norm(grad)
    return Trace(records, loss, probs, target, class_names)


def _shape(s: Shape | None) -> str:
    return "x".join(map(str, s)) if s else "-"


def format_trace(trace: Trace) -> str:
    """Plain text: a forward block, the loss and probabilities, a backward block."""
    names = trace.class_names or tuple(str(i) for i in range(len(trace.probs)))
    lines = ["FORWARD (shapes are N x C x H x W, or N x features)"]
    for r in trace.layers:
        lines.append(f"  {r.name:<8} {r.layer}")
        lines.append(f"           in {_shape(r.input_shape):<12} -> out {_shape(r.output_shape)}")
        if r.cols_shape:
            n, k, p = r.cols_shape
            lines.append(f"           im2col cols {_shape(r.cols_shape)}  (N x K x P: K = C*kH*kW = {k}, "
                         f"P = H'*W' = {p})")
        lines.extend(f"           {note}" for note in r.notes)
    lines.append("")
    lines.append(f"LOSS  softmax cross-entropy against class {trace.target} ({names[trace.target]}): "
                 f"{trace.loss:.6f}")
    best = int(np.argmax(trace.probs))
    probs = "  ".join(f"{n}={p:.4f}" for n, p in zip(names, trace.probs))
    lines.append(f"PROBS {probs}")
    lines.append(f"      predicted class {best} ({names[best]})")
    lines.append("")
    lines.append("BACKWARD (norm = L2 norm of the whole array)")
    for r in reversed(trace.layers):
        lines.append(f"  {r.name}")
        if r.grad_out_shape is None:
            lines.append("           no gradient reached this layer (a later layer skips its input gradient)")
            continue
        lines.append(f"           dL/d(out)    {_shape(r.grad_out_shape):<12} norm {r.grad_out_norm:.6e}")
        for pname, (shape, norm) in r.param_grads.items():
            label = "dL/d" + pname.rsplit(".", 1)[-1]
            lines.append(f"           {label:<12} {_shape(shape):<12} norm {norm:.6e}")
        if r.grad_in_shape is None:
            lines.append("           dL/d(in)     not computed (needs_input_grad=False: the input is data)")
        else:
            lines.append(f"           dL/d(in)     {_shape(r.grad_in_shape):<12} norm {r.grad_in_norm:.6e}")
    return "\n".join(lines)
