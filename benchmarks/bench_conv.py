"""Per-layer speed: conv1, conv2, pool1, pool2 of the paper's network, forward and forward+backward.

    /work/venv/bin/python benchmarks/bench_conv.py [--reps 60] [--threads 2] [--batch 4 64]

For each layer, pass and batch it times, in interleaved rounds (see
``_common.interleaved``):

* ``naive``: the plain loops of :mod:`numpy_cnn.naive` (forward only, batch 4 only: far too slow otherwise);
* ``reference``: the readable NumPy layer (``Conv2d(method="reference")``, im2col
  by indexing; ``MaxPool2d(method="reference")``);
* ``default``: the layer as the network runs it (numba ``direct`` conv, numba pool);
* ``torch``: PyTorch CPU, when installed; forward under ``no_grad``,
  forward+backward with autograd and ``.grad`` cleared first as ``zero_grad`` does.

Ours are timed through the layer objects, so their Python overhead (input checks,
wrappers) counts. conv1 skips its input gradient on both sides (its input is data).
Ratios are ``time / torch time`` (median of per-round ratios), with numba and torch
on the same number of threads and OpenBLAS on one. Prints a table and writes
``benchmarks/results/bench_conv.json``.
"""

import _common  # noqa: F401  (sets the BLAS threads before NumPy loads)

import argparse

import numpy as np

from _common import fmt, interleaved, machine, set_threads, write_json
from numpy_cnn.layers import Conv2d, MaxPool2d
from numpy_cnn.naive import conv2d_naive, maxpool2d_naive

LAYERS = {   # name: (kind, in channels, out channels, input side)
    "conv1": ("conv", 3, 6, 48),
    "pool1": ("pool", 6, 6, 44),
    "conv2": ("conv", 6, 16, 22),
    "pool2": ("pool", 16, 16, 18),
}


def cases(name, batch, torch, rng):
    """Yield (pass, {candidate: fn}) for one layer and batch."""
    kind, c, f, side = LAYERS[name]
    x = rng.standard_normal((batch, c, side, side)).astype(np.float32)
    need_dx = name != "conv1"
    if kind == "conv":
        layers = {m: Conv2d(c, f, 5, rng=0, method=m, needs_input_grad=need_dx) for m in ("reference", None)}
        w, b = layers[None].weight.data, layers[None].bias.data
        naive = lambda: conv2d_naive(x, w, b)   # noqa: E731
    else:
        layers = {m: MaxPool2d(2, method=m) for m in ("reference", "numba")}
        naive = lambda: maxpool2d_naive(x, (2, 2), (2, 2))   # noqa: E731
    reference, default = layers.values()
    g = rng.standard_normal(default.forward(x).shape).astype(np.float32)

    def fb(layer):
        def run():
            layer.forward(x)
            layer.backward(g)
        return run

    fwd = {"reference": lambda: reference.forward(x), "default": lambda: default.forward(x)}
    both = {"reference": fb(reference), "default": fb(default)}
    if batch <= 4:
        fwd = {"naive": naive, **fwd}
    if torch is not None:
        import torch.nn.functional as tf
        tx = torch.from_numpy(x).requires_grad_(need_dx)
        tg = torch.from_numpy(g)
        if kind == "conv":
            tw = torch.from_numpy(w.copy()).requires_grad_(True)
            tb = torch.from_numpy(b.copy()).requires_grad_(True)
            op, params = (lambda: tf.conv2d(tx, tw, tb)), (tw, tb)
        else:
            op, params = (lambda: tf.max_pool2d(tx, 2, 2)), ()

        def torch_fwd():
            with torch.no_grad():
                op()

        def torch_fb():
            for p in (tx, *params):
                p.grad = None
            op().backward(tg)

        fwd["torch"], both["torch"] = torch_fwd, torch_fb
    yield "fwd", fwd
    yield "fwd+bwd", both


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=60, help="timed rounds per case (default 60)")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 64])
    args = ap.parse_args()
    torch = set_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    print(f"threads={args.threads} (numba, torch), OpenBLAS 1, float32; median ms of {args.reps} "
          f"interleaved rounds; ratio = ours / torch (median of per-round ratios)\n")
    print("|  N | layer | pass    | naive ms | reference ms | default ms | torch ms | reference/torch | default/torch |")
    print("|---:|-------|---------|---------:|-------------:|-----------:|---------:|------:|------:|")
    for batch in args.batch:
        for name in LAYERS:
            for pass_, fns in cases(name, batch, torch, rng):
                res = interleaved(fns, args.reps, baseline="torch" if torch else None)
                get = lambda k, f="ms": res.get(k, {}).get(f)   # noqa: E731
                row = {"batch": batch, "layer": name, "pass": pass_, **{k: v for k, v in res.items()}}
                rows.append(row)
                print(f"| {batch:>2} | {name} | {pass_:<7} | {fmt(get('naive'))} | {fmt(get('reference'))} | "
                      f"{fmt(get('default'))} | {fmt(get('torch'))} | {fmt(get('reference', 'ratio'), 2)} | "
                      f"{fmt(get('default', 'ratio'), 2)} |", flush=True)
    path = write_json("bench_conv", {"machine": machine(), "threads": args.threads, "reps": args.reps, "rows": rows})
    print(f"\nwrote {path}")
    return rows


if __name__ == "__main__":
    main()
