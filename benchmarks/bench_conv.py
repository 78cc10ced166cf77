"""Per-layer speed: conv1, conv2, pool1, pool2 of the paper's network, forward and forward+backward.

    /work/venv/bin/python benchmarks/bench_conv.py [--reps 60] [--threads 2] [--batch 4 64]
    /work/venv/bin/python benchmarks/bench_conv.py --grid [--methods] [--reps 30]

``--grid`` times the conv grid of issue 13 instead (see :data:`GRID`): the
paper's two layers, 3x3 padding-1 layers at four channel pairs on three input
sizes, one 3x3 stride-2 layer and one 1x1 layer, each forward and
forward+backward, ours (``method=None``, the shape's dispatched method) against
torch, and prints the geometric mean of the ratios and the worst cell.
``--methods`` adds every forced method of ``Conv2d.METHODS`` as a column (what
the dispatch rule in :mod:`numpy_cnn.kernels.choice` was learnt from). Writes
``benchmarks/results/bench_conv_grid.json``.

For each layer, pass and batch it times, in interleaved rounds (see
``_common.interleaved``):

* ``naive``: the plain loops of :mod:`numpy_cnn.nn.naive` (forward only, batch 4 only: far too slow otherwise);
* ``reference``: the readable NumPy layer (``Conv2d(method="reference")``, im2col
  by indexing; ``MaxPool2d(method="reference")``);
* ``default``: the layer as the network runs it (numba ``direct`` conv, numba pool);
* ``torch``: PyTorch CPU, when installed; forward under ``no_grad``,
  forward+backward with autograd and ``.grad`` cleared first as ``zero_grad`` does.

Ours are timed through the layer objects, so their Python overhead (input checks,
wrappers) counts. conv1 skips its input gradient on both sides (its input is data).
Ratios are ``time / torch time`` (median of per-round ratios), with numba and torch
on the same number of threads and OpenBLAS on one. In each round a candidate first
runs untimed for ``--settle`` seconds, then is timed for ``--block`` seconds: after a
call, both libraries' idle OpenMP workers spin for milliseconds, and a function timed
right after the other library's shared its cores with them (up to 2x slower).
Prints a table and writes ``benchmarks/results/bench_conv.json``.

``--threads 1 --cpu-time`` times by the CPU time of the one thread both sides
run on (``time.thread_time``) instead of the wall clock: on a machine whose
other processes keep its cores busy, that ratio stays steady while wall-clock
ratios wander (cache and memory sharing still count).
"""

import _common  # noqa: F401  (sets the BLAS threads before NumPy loads)

import argparse
import time

import numpy as np

from _common import fmt, interleaved, machine, set_threads, write_json
from numpy_cnn.nn.layers import Conv2d, MaxPool2d
from numpy_cnn.nn.layers.conv import METHODS
from numpy_cnn.nn.naive import conv2d_naive, maxpool2d_naive

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


# The grid: name: (C_in, C_out, input side, kernel, stride, padding). A layer
# with C_in = 3 is a first layer (its input is data), so no input gradient.
GRID = {
    "paper conv1 5x5": (3, 6, 48, 5, 1, 0),
    "paper conv2 5x5": (6, 16, 22, 5, 1, 0),
    **{f"3x3p1 {c}->{f} {side}^2": (c, f, side, 3, 1, 1)
       for side in (48, 24, 12) for c, f in ((3, 16), (16, 32), (32, 64), (64, 64))},
    "3x3s2p1 32->64 24^2": (32, 64, 24, 3, 2, 1),
    "1x1 64->128 12^2": (64, 128, 12, 1, 1, 0),
}


def grid_cases(spec, batch, torch, methods, rng):
    """Yield (pass, {candidate: fn}) for one grid layer: ours by dispatch, forced methods, torch."""
    c, f, side, k, s, p = spec
    need_dx = c != 3
    x = rng.standard_normal((batch, c, side, side)).astype(np.float32)
    layers = {"ours": Conv2d(c, f, k, s, p, rng=0, needs_input_grad=need_dx)}
    for m in methods:
        if m != "winograd" or (k, s) == (3, 1):
            layers[m] = Conv2d(c, f, k, s, p, rng=0, method=m, needs_input_grad=need_dx)
    g = rng.standard_normal(layers["ours"].forward(x).shape).astype(np.float32)

    def fb(layer):
        def run():
            layer.forward(x)
            layer.backward(g)
        return run

    fwd = {name: (lambda layer=layer: layer.forward(x)) for name, layer in layers.items()}
    both = {name: fb(layer) for name, layer in layers.items()}
    if torch is not None:
        import torch.nn.functional as tf
        tx = torch.from_numpy(x).requires_grad_(need_dx)
        tg = torch.from_numpy(g)
        tw = torch.from_numpy(layers["ours"].weight.data.copy()).requires_grad_(True)
        tb = torch.from_numpy(layers["ours"].bias.data.copy()).requires_grad_(True)

        def torch_fwd():
            with torch.no_grad():
                tf.conv2d(tx, tw, tb, s, p)

        def torch_fb():
            for t in (tx, tw, tb):
                t.grad = None
            tf.conv2d(tx, tw, tb, s, p).backward(tg)

        fwd["torch"], both["torch"] = torch_fwd, torch_fb
    yield "fwd", fwd, layers["ours"].forward_method       # may differ from the backward's (choose_forward)
    yield "fwd+bwd", both, layers["ours"].methods


def print_compact(rows, batches):
    """One line per layer: its method and ours/torch for each batch and pass (the README's table)."""
    cells = {(r["layer"], r["batch"], r["pass"]): r for r in rows}
    heads = [f"N{b} {p}" for b in batches for p in ("fwd", "fwd+bwd")]
    print("\n| layer | method | " + " | ".join(heads) + " |")
    print("|---|---|" + "---:|" * len(heads))
    for name in dict.fromkeys(r["layer"] for r in rows):
        ratios = [cells.get((name, b, p), {}).get("ours", {}).get("ratio") for b in batches for p in ("fwd", "fwd+bwd")]
        method = next(r["method"] for r in rows if r["layer"] == name and r["pass"] == "fwd+bwd")
        print(f"| {name} | {method} | " + " | ".join(fmt(v, 2) for v in ratios) + " |")


def run_grid(args, torch):
    methods = [m for m in METHODS if m != "reference"] if args.methods else []
    rng = np.random.default_rng(0)
    rows, ratios = [], []
    print(f"threads={args.threads} (numba, torch), OpenBLAS 1, float32; median ms "
          f"({'CPU time of this thread' if args.cpu_time else 'wall'}) of {args.reps} "
          f"interleaved rounds, each a {1e3 * args.settle:g} ms untimed settle and a {1e3 * args.block:g} ms "
          f"timed block; ratio = ours / torch (median of per-round ratios)\n")
    extra = "".join(f" {m} ms |" for m in methods)
    print(f"|  N | layer | pass | method | ours ms | torch ms | ratio |{extra}")
    print("|---:|-------|------|--------|--------:|---------:|------:|" + "---:|" * len(methods))
    for batch in args.batch:
        for name, spec in GRID.items():
            if args.only and not any(part in name for part in args.only):
                continue
            for pass_, fns, method in grid_cases(spec, batch, torch, methods, rng):
                res = interleaved(fns, args.reps, block_seconds=args.block, baseline="torch" if torch else None,
                                  clock=args.clock, settle_seconds=args.settle)
                ratio = res["ours"].get("ratio")
                if ratio is not None:
                    ratios.append(ratio)
                rows.append({"batch": batch, "layer": name, "shape": spec, "pass": pass_,
                             "method": method, **res})
                extra = "".join(f" {fmt(res.get(m, {}).get('ms'))} |" for m in methods)
                print(f"| {batch:>2} | {name} | {pass_} | {method} | {res['ours']['ms']:.3f} | "
                      f"{fmt(res.get('torch', {}).get('ms'))} | {fmt(ratio, 2)} |{extra}", flush=True)
    print_compact(rows, args.batch)
    summary = {}
    if ratios:
        summary = {"geomean_ratio": float(np.exp(np.mean(np.log(ratios)))), "max_ratio": float(max(ratios)),
                   "cells": len(ratios)}
        print(f"\n{len(ratios)} cells: geometric mean ours/torch {summary['geomean_ratio']:.2f}, "
              f"worst {summary['max_ratio']:.2f}")
    path = write_json("bench_conv_grid", {"machine": machine(), "threads": args.threads, "reps": args.reps,
                                          "settle_s": args.settle, "block_s": args.block,
                                          "cpu_time": args.cpu_time, "summary": summary, "rows": rows})
    print(f"wrote {path}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=60, help="timed rounds per case (default 60)")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 64])
    ap.add_argument("--grid", action="store_true", help="time the conv grid (see GRID) instead")
    ap.add_argument("--methods", action="store_true", help="with --grid: also time every forced method")
    ap.add_argument("--only", nargs="*", default=[], help="with --grid: only layers whose name contains one of these")
    ap.add_argument("--settle", type=float, default=0.02,
                    help="seconds each candidate runs untimed before its timed block "
                         "(lets the other library's OpenMP threads stop spinning; default 0.02)")
    ap.add_argument("--block", type=float, default=0.02,
                    help="seconds of calls per timed block (default 0.02)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the CPU time of this thread (needs --threads 1): steady on a loaded machine")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time needs --threads 1 (other threads' CPU time would not be counted)")
    args.clock = time.thread_time if args.cpu_time else time.perf_counter
    torch = set_threads(args.threads)
    if args.grid:
        return run_grid(args, torch)
    rng = np.random.default_rng(0)
    rows = []
    print(f"threads={args.threads} (numba, torch), OpenBLAS 1, float32; median ms "
          f"({'CPU time of this thread' if args.cpu_time else 'wall'}) of {args.reps} "
          f"interleaved rounds, each a {1e3 * args.settle:g} ms untimed settle and a {1e3 * args.block:g} ms "
          f"timed block; ratio = ours / torch (median of per-round ratios)\n")
    print("|  N | layer | pass    | naive ms | reference ms | default ms | torch ms | reference/torch | default/torch |")
    print("|---:|-------|---------|---------:|-------------:|-----------:|---------:|------:|------:|")
    for batch in args.batch:
        for name in LAYERS:
            for pass_, fns in cases(name, batch, torch, rng):
                res = interleaved(fns, args.reps, block_seconds=args.block, baseline="torch" if torch else None,
                                  clock=args.clock, settle_seconds=args.settle)
                get = lambda k, f="ms": res.get(k, {}).get(f)   # noqa: E731
                row = {"batch": batch, "layer": name, "pass": pass_, **{k: v for k, v in res.items()}}
                rows.append(row)
                print(f"| {batch:>2} | {name} | {pass_:<7} | {fmt(get('naive'))} | {fmt(get('reference'))} | "
                      f"{fmt(get('default'))} | {fmt(get('torch'))} | {fmt(get('reference', 'ratio'), 2)} | "
                      f"{fmt(get('default', 'ratio'), 2)} |", flush=True)
    path = write_json("bench_conv", {"machine": machine(), "threads": args.threads, "reps": args.reps,
                                     "settle_s": args.settle, "block_s": args.block,
                                     "cpu_time": args.cpu_time, "rows": rows})
    print(f"\nwrote {path}")
    return rows


if __name__ == "__main__":
    main()
