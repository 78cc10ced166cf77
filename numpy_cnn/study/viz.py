"""Pictures of a network: filters, feature maps, gradient flow and saliency, saved as PNGs.

The arrays are computed here with NumPy (:func:`feature_maps`, :func:`saliency`);
matplotlib is imported only inside the plotting functions, with the
non-interactive Agg backend, so importing this module is cheap and works
without a display.

Colour conventions: weights and feature maps use a diverging map centred
on 0 (red positive, blue negative) with one scale per figure, so filters in
one grid can be compared; saliency uses one sequential map from 0.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import Conv2d, MaxPool2d
from numpy_cnn.nn.module import Module
from numpy_cnn.study.plots import pyplot
from numpy_cnn.study.summary import leaf_layers

# -- arrays --------------------------------------------------------------------

def feature_maps(model: Module, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The output of every conv and pool layer for one image.

    x: (1, C, H, W) preprocessed input -> ``[(layer name, maps (C', H', W')), ...]``
    in forward order (the maps are copies, taken before any later layer runs).
    """
    maps = []
    for name, layer in leaf_layers(model):
        x = layer.forward(x)
        if isinstance(layer, (Conv2d, MaxPool2d)):
            maps.append((name, x[0].copy()))
    return maps


@contextmanager
def input_gradients_on(model: Module) -> Iterator[None]:
    """Temporarily make every layer compute its input gradient, then restore the flags.

    The first conv is built with ``needs_input_grad=False`` (its input is data,
    so training never needs ``dL/dx``); saliency needs exactly that gradient.
    """
    layers = [layer for _, layer in leaf_layers(model) if hasattr(layer, "needs_input_grad")]
    saved = [layer.needs_input_grad for layer in layers]
    try:
        for layer in layers:
            layer.needs_input_grad = True
        yield
    finally:
        for layer, flag in zip(layers, saved):
            layer.needs_input_grad = flag


def saliency(model: Module, x: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """Which pixels the class score is most sensitive to (Simonyan et al., 2014).

    x: (1, C, H, W) -> (map (H, W) = max over channels of |d score_c / dx|, c).

    ``score_c`` is the logit of class ``c`` (the predicted class by default),
    not its softmax probability, so other classes' scores do not enter. The
    backward pass starts from a one-hot gradient at that logit. Parameter
    gradients are overwritten as a side effect.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise UserError(f"saliency: expected one image as (1, C, H, W), got {x.shape}")
    with input_gradients_on(model):
        logits = model.forward(x)
        c = int(np.argmax(logits[0])) if class_index is None else int(class_index)
        if not 0 <= c < logits.shape[1]:
            raise UserError(f"saliency: class {c} is not in [0, {logits.shape[1]})")
        seed = np.zeros_like(logits)
        seed[0, c] = 1.0                     # d score_c / d logits
        dx = model.backward(seed)
    return np.abs(dx[0]).max(axis=0), c


GRAD_NORM_PREFIX = "grad_norm."


def gradient_norms_from_rows(rows: Sequence[Mapping[str, object]]) -> dict[str, list[float]]:
    """The trainer's per-epoch rows -> ``{"conv1.weight": [epoch 1, epoch 2, ...], ...}``.

    Each row (one epoch of ``metrics.json``, or of the checkpoint's history)
    holds ``"grad_norm.<parameter>": mean norm over the epoch's sampled steps``.
    """
    norms: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith(GRAD_NORM_PREFIX):
                norms.setdefault(key[len(GRAD_NORM_PREFIX):], []).append(float(value))
    return norms


def load_gradient_norms(run_dir: Path | str) -> dict[str, list[float]]:
    """Per-epoch mean gradient norms per parameter, from a run directory's ``metrics.json``."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: no metrics.json, so no recorded gradient norms; "
                        "give a run directory written by train_numpy.py")
    try:
        rows = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not valid JSON; the file is damaged") from None
    norms = gradient_norms_from_rows(rows if isinstance(rows, list) else [])
    if not norms:
        raise UserError(f"{path}: holds no per-epoch gradient norms ({GRAD_NORM_PREFIX}<parameter> columns)")
    return norms


# -- pictures ------------------------------------------------------------------

def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi)
    pyplot().close(fig)
    return path


def plot_filters(weight: np.ndarray, path: Path | str, title: str = "filters") -> Path:
    """A conv weight (F, C, kH, kW) as an F x C grid: row = output filter, column = input channel.

    One colour scale for the whole grid, symmetric about 0, so strengths compare.
    """
    if weight.ndim != 4:
        raise UserError(f"plot_filters: expected a conv weight (F, C, kH, kW), got {weight.shape}")
    plt = pyplot()
    f, c = weight.shape[:2]
    scale = float(np.abs(weight).max()) or 1.0
    cell = 0.45
    fig, axes = plt.subplots(f, c, figsize=(c * cell + 0.9, f * cell + 0.5), squeeze=False, dpi=80)
    for o in range(f):
        for i in range(c):
            ax = axes[o, i]
            ax.imshow(weight[o, i], cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(str(o), rotation=0, fontsize=6, labelpad=6, va="center")
            if o == 0:
                ax.set_title(str(i), fontsize=6)
    fig.suptitle(f"{title}: {f} out x {c} in, {weight.shape[2]}x{weight.shape[3]}", fontsize=8)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.02, top=1 - 0.45 / (f * cell + 0.5),
                        wspace=0.08, hspace=0.08)
    return _save(fig, path)


def plot_feature_maps(maps: np.ndarray, path: Path | str, title: str = "feature maps") -> Path:
    """Maps (C, H, W) as a grid of C images, 8 per row, one colour scale symmetric about 0."""
    if maps.ndim != 3:
        raise UserError(f"plot_feature_maps: expected maps (C, H, W), got {maps.shape}")
    plt = pyplot()
    c = maps.shape[0]
    cols = min(c, 8)
    rows = -(-c // cols)
    scale = float(np.abs(maps).max()) or 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.3), squeeze=False, dpi=80)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < c:
            ax.imshow(maps[k], cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
            ax.set_title(str(k), fontsize=6, pad=1)
    fig.suptitle(f"{title}: {c} x {maps.shape[1]} x {maps.shape[2]}", fontsize=8)
    fig.tight_layout(pad=0.2)
    return _save(fig, path)


def plot_gradient_flow(norms: Mapping[str, Sequence[float]], path: Path | str,
                       title: str = "gradient flow") -> Path:
    """Per-epoch mean gradient norm of each parameter, one curve each, log scale.

    ``norms``: ``{"conv1.weight": [epoch 1, epoch 2, ...], ...}``. Curves that
    sink by orders of magnitude towards the input layers show vanishing gradients.
    Every parameter gets a curve, BatchNorm's ``bn1.weight``/``bn1.bias`` too (buffers
    have no gradient); a conv bias right before a BatchNorm sits at float32 rounding
    noise, because the normalisation subtracts it again (see docs/backprop.md).
    """
    if not norms:
        raise UserError("plot_gradient_flow: no gradient norms to plot")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=80)
    # 20 distinct colours: with BatchNorm the paper's net has 14 parameters, past the default 10.
    colours = plt.get_cmap("tab20")
    for i, (name, values) in enumerate(norms.items()):
        epochs = np.arange(1, len(values) + 1)
        style = "-" if name.endswith("weight") else "--"
        ax.plot(epochs, values, style, marker="o", markersize=2, linewidth=1, label=name, color=colours(i % 20))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean ||dL/dparam||")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # outside: curves stay visible
    fig.tight_layout()
    return _save(fig, path)


def plot_saliency(image: np.ndarray, sal: np.ndarray, path: Path | str, title: str = "saliency") -> Path:
    """The image (H, W) beside its saliency map (H, W) and the map laid over the image."""
    if image.shape != sal.shape:
        raise UserError(f"plot_saliency: image {image.shape} and saliency {sal.shape} differ in shape")
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(6, 2.3), dpi=80)
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("input", fontsize=8)
    axes[1].imshow(sal, cmap="inferno", vmin=0)
    axes[1].set_title("|d score / d x|, max over channels", fontsize=7)
    axes[2].imshow(image, cmap="gray")
    axes[2].imshow(sal, cmap="inferno", alpha=0.6, vmin=0)
    axes[2].set_title("overlay", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
