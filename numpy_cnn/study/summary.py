"""A layer-by-layer table of a model: shapes, parameters, FLOPs and im2col sizes.

Everything is computed from the layers' hyper-parameters and the input shape,
by the formulas below, without running the network. That is the point: a
student can check each number by hand.

FLOP convention (used for every row, forward and backward):

* a multiply-add counts **2** FLOPs (a GEMM of ``(M, K) @ (K, P)`` is ``2*M*K*P``);
* every other arithmetic operation or comparison counts **1**: a bias add,
  a ReLU comparison (forward) or mask multiply (backward), each of the
  ``kH*kW - 1`` comparisons that find a pooling window's maximum, each add
  of a bias gradient sum, of col2im's overlap sum and of max-pool routing;
* moving data counts **0**: im2col copies, reshapes, flatten.

Forward, per image, with ``K = C_in*kH*kW`` and ``P = H'*W'``::

    Conv2d     2*F*K*P + F*P          (GEMM + bias)
    Linear     2*out*in + out         (GEMM + bias)
    ReLU       size                   (one comparison per element)
    MaxPool2d  (kH*kW - 1) * size'    (comparisons per output element)
    BatchNorm  7 * size               (training: add for the mean; centre; square and add for the
                                       variance; scale by 1/std; weight * x_hat + bias)
    Dropout    size                   (multiply by the scaled mask; drawing it is not counted)

Backward, per image::

    Conv2d     dW: 2*F*K*P, db: F*P,  dx (if needs_input_grad): 2*F*K*P + K*P (col2im adds)
    Linear     dW: 2*out*in, db: out, dx (if needs_input_grad): 2*out*in
    ReLU       size                   (mask multiply)
    MaxPool2d  size'                  (each output gradient added to its argmax)
    BatchNorm  8 * size               (dbias: add; dweight: multiply-add; dx: the closed form's
                                       m*dy - dbias - x_hat*dweight, times weight/(m*std))
    Dropout    size                   (multiply by the same mask)

BatchNorm's and Dropout's operations are elementwise, so they add no
multiply-adds to the MAC totals. Buffers (BatchNorm's running statistics
and batch counter) are counted apart from parameters: saved, never learnt.

Cross-check: the paper's network has 3.63 MMAC forward and 4.57 MMAC per image
for forward plus backward (conv1 skips ``dx``), so one epoch of 540 images is
``2 * 4.57e6 * 540 = 4.94`` GFLOP counting multiply-adds only (5.0 GFLOP with
the elementwise terms). ``tests/test_study_summary.py`` writes every count out.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable, Iterator

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.layers.batchnorm import _BatchNorm
from numpy_cnn.nn.module import Module, Sequential

FLOP_CONVENTION = ("FLOPs: multiply-add = 2; bias add, ReLU, pooling comparison, gradient-sum add = 1; "
                   "copies and reshapes (im2col, flatten) = 0")

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerRow:
    """One layer of the table. FLOPs and MACs are for the whole batch of ``input_shape``.

    ``cols_shape`` is the im2col matrix ``(N, K, P)`` a conv layer builds (and keeps
    for backward) with ``method="im2col"`` or ``"reference"``, ``cols_bytes`` its
    size in the model's dtype; both ``None`` for other layers. The default
    ``"direct"`` and ``"winograd"`` methods never build it: the column shows what
    they save. ``method`` is the conv method the layer runs (see
    :func:`numpy_cnn.kernels.choice.choose_method`; ``"forward/backward"`` where
    :func:`~numpy_cnn.kernels.choice.choose_forward` gives the forward another), ``None`` for other layers.
    """

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    flops: int
    macs: int
    backward_flops: int
    backward_macs: int
    cols_shape: Shape | None = None
    cols_bytes: int | None = None
    buffers: int = 0          # values in buffers (running statistics): saved, not learnt
    method: str | None = None


@dataclass(frozen=True)
class Summary:
    """The rows plus totals; ``str(summary)`` renders the table."""

    rows: list[LayerRow]
    input_shape: Shape
    itemsize: int

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def buffers(self) -> int:
        return sum(r.buffers for r in self.rows)

    @property
    def flops(self) -> int:
        """Forward FLOPs for the batch."""
        return sum(r.flops for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def backward_flops(self) -> int:
        return sum(r.backward_flops for r in self.rows)

    @property
    def backward_macs(self) -> int:
        return sum(r.backward_macs for r in self.rows)

    @property
    def cols_bytes(self) -> int:
        """All im2col matrices together: each conv keeps its own until backward."""
        return sum(r.cols_bytes or 0 for r in self.rows)

    def __str__(self) -> str:
        return format_summary(self)


def leaf_layers(model: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """``(dotted_name, layer)`` for every layer in forward order, looking inside nested Sequentials."""
    if not isinstance(model, Sequential):
        yield prefix.rstrip(".") or model.name or type(model).__name__, model
        return
    for key, layer in model.named_children():
        if isinstance(layer, Sequential):
            yield from leaf_layers(layer, prefix + key + ".")
        else:
            yield prefix + key, layer


# -- one rule per layer type: (layer, name, input shape, itemsize) -> row ---------

def _need_4d(layer: Module, shape: Shape) -> None:
    if len(shape) != 4:
        raise UserError(f"{layer.describe()}: expected input (N, C, H, W), got {shape}; "
                        "put convolutions and pools before the first fully connected layer")


def _conv_row(layer: Conv2d, name: str, shape: Shape, itemsize: int) -> LayerRow:
    _need_4d(layer, shape)
    out = layer.output_shape(shape)
    n, f, ho, wo = out
    kh, kw = layer.kernel_size
    k, p = layer.in_channels * kh * kw, ho * wo
    macs = n * f * k * p
    dx_macs = macs if layer.needs_input_grad else 0
    dx_adds = n * k * p if layer.needs_input_grad else 0     # col2im sums the columns back
    cols = (n, k, p)
    return LayerRow(name, "Conv2d", shape, out, _param_count(layer),
                    flops=2 * macs + n * f * p, macs=macs,
                    backward_flops=2 * (macs + dx_macs) + n * f * p + dx_adds,
                    backward_macs=macs + dx_macs,
                    cols_shape=cols, cols_bytes=prod(cols) * itemsize, method=layer.methods)


def _linear_row(layer: Linear, name: str, shape: Shape, itemsize: int) -> LayerRow:
    if len(shape) != 2 or shape[1] != layer.in_features:
        raise UserError(f"{layer.describe()}: expected input (N, {layer.in_features}), got {shape}; "
                        f"the layers before it produce {shape}")
    n = shape[0]
    macs = n * layer.in_features * layer.out_features
    dx_macs = macs if layer.needs_input_grad else 0
    return LayerRow(name, "Linear", shape, (n, layer.out_features), _param_count(layer),
                    flops=2 * macs + n * layer.out_features, macs=macs,
                    backward_flops=2 * (macs + dx_macs) + n * layer.out_features,
                    backward_macs=macs + dx_macs)


def _relu_row(layer: ReLU, name: str, shape: Shape, itemsize: int) -> LayerRow:
    return LayerRow(name, "ReLU", shape, shape, 0, flops=prod(shape), macs=0,
                    backward_flops=prod(shape), backward_macs=0)


def _pool_row(layer: MaxPool2d, name: str, shape: Shape, itemsize: int) -> LayerRow:
    _need_4d(layer, shape)
    out = layer.output_shape(shape)
    kh, kw = layer.kernel_size
    return LayerRow(name, "MaxPool2d", shape, out, 0, flops=(kh * kw - 1) * prod(out), macs=0,
                    backward_flops=prod(out), backward_macs=0)


def _flatten_row(layer: Flatten, name: str, shape: Shape, itemsize: int) -> LayerRow:
    return LayerRow(name, "Flatten", shape, (shape[0], prod(shape[1:])), 0, 0, 0, 0, 0)


def _batchnorm_row(layer: _BatchNorm, name: str, shape: Shape, itemsize: int) -> LayerRow:
    if len(shape) != layer.ndim or shape[1] != layer.num_features:
        raise UserError(f"{layer.describe()}: expected input {layer.contract} with C = {layer.num_features}, "
                        f"got {shape}")
    return LayerRow(name, type(layer).__name__, shape, shape, _param_count(layer),
                    flops=7 * prod(shape), macs=0, backward_flops=8 * prod(shape), backward_macs=0,
                    buffers=sum(b.data.size for _, b in layer.named_buffers()))


def _dropout_row(layer: Dropout, name: str, shape: Shape, itemsize: int) -> LayerRow:
    return LayerRow(name, "Dropout", shape, shape, 0, flops=prod(shape), macs=0,
                    backward_flops=prod(shape), backward_macs=0)


_RULES: dict[type, Callable[..., LayerRow]] = {
    Conv2d: _conv_row, Linear: _linear_row, ReLU: _relu_row, MaxPool2d: _pool_row, Flatten: _flatten_row,
    _BatchNorm: _batchnorm_row, Dropout: _dropout_row,
}


def _param_count(layer: Module) -> int:
    return sum(p.data.size for _, p in layer.named_parameters())


def _rule(layer: Module) -> Callable[..., LayerRow]:
    # Walk the class hierarchy so a subclass of Conv2d is counted as a Conv2d.
    for cls in type(layer).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    raise UserError(f"summary: no FLOP rule for layer {layer.describe()}; add one to _RULES in numpy_cnn/study/summary.py")


def summarize(model: Module, input_shape: Shape) -> Summary:
    """The table for ``model`` on an input of ``input_shape`` ``(N, C, H, W)``.

    Shapes are propagated layer by layer with each layer's own formula, so a
    shape that does not fit raises the layer's one-line :class:`UserError`.
    """
    input_shape = tuple(int(d) for d in input_shape)
    dtype = model.dtype if model.dtype is not None else np.dtype(np.float32)
    rows, shape = [], input_shape
    for name, layer in leaf_layers(model):
        row = _rule(layer)(layer, name, shape, dtype.itemsize)
        rows.append(row)
        shape = row.output_shape
    return Summary(rows, input_shape, dtype.itemsize)


def _si(value: float) -> str:
    """``4940000000 -> '4.94 G'``: three significant digits with an SI prefix."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def format_summary(summary: Summary) -> str:
    """The table as text: one line per layer, then totals and the FLOP convention."""
    header = ("layer", "type", "output shape", "params", "FLOPs", "im2col cols (N, K, P)", "cols bytes", "method")
    lines = [header]
    for r in summary.rows:
        lines.append((r.name, r.kind, str(r.output_shape), f"{r.params:,}", f"{r.flops:,}",
                      str(r.cols_shape) if r.cols_shape else "", f"{r.cols_bytes:,}" if r.cols_bytes else "",
                      r.method or ""))
    lines.append(("total", "", "", f"{summary.params:,}", f"{summary.flops:,}", "", f"{summary.cols_bytes:,}", ""))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    right = {3, 4, 6}   # numbers right-aligned

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "-" * len(fmt(header))
    body = [fmt(header), rule, *map(fmt, lines[1:-1]), rule, fmt(lines[-1])]
    n = summary.input_shape[0]
    train = summary.flops + summary.backward_flops
    body += [
        f"input {summary.input_shape}, {summary.itemsize * 8}-bit floats; FLOPs are for the whole batch of {n}",
        *([f"buffers (saved, not learnt, not in params): {summary.buffers:,} values of BatchNorm "
           "running statistics and batch counters"] if summary.buffers else []),
        f"forward {_si(summary.flops)}FLOP, backward {_si(summary.backward_flops)}FLOP, "
        f"training step {_si(train)}FLOP ({_si(2 * (summary.macs + summary.backward_macs))}FLOP from multiply-adds alone)",
        FLOP_CONVENTION,
        "im2col cols: the matrix Conv2d builds with method='im2col' or 'reference'; "
        "'direct' and 'winograd' never build it. method: the conv method each layer runs, "
        "forward/backward where they differ (numpy_cnn.kernels.choice)",
    ]
    return "\n".join(body)
