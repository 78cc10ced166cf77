"""One training epoch of an ``--arch`` network against the same network in PyTorch.

    /work/venv/bin/python benchmarks/bench_arch.py [--arch SPEC] [--rounds 5] [--threads 2] [--batch 4 64]

Both sides build the network of ``--arch`` (default: three 3x3 padded conv
layers, issue 13's network) with the same starting weights and train one
model-only epoch over the same 540 random 48x48 3-channel float32 images:
forward, softmax cross-entropy, a finiteness check of the loss, backward,
SGD step (lr 1e-3, momentum 0.9). Ours is ``train_epoch``; torch
``zero_grad / forward / cross_entropy / backward / step`` with ``loss.item()``.
Epochs alternate between the sides; the ratio is the median of per-round
ratios (ours / torch), numba and torch on the same number of threads,
OpenBLAS on one. Prints which method each conv layer runs and writes
``benchmarks/results/bench_arch.json``.
"""

import _common  # noqa: F401  (sets the BLAS threads before NumPy loads)

import argparse
import time
import math
from collections import OrderedDict

import numpy as np

from _common import fmt, interleaved, machine, set_threads, write_json
from numpy_cnn.nn.arch import build_model
from numpy_cnn.nn.layers import Conv2d, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.optim import SGD
from numpy_cnn.train.loop import train_epoch

ARCH = "c16k3p1-relu-pool2-c32k3p1-relu-pool2-c64k3p1-relu-pool2-fc128-relu"
N_TRAIN, SIDE, CLASSES = 540, 48, 7


def torch_twin(torch, model):
    """The same layers and weights as a torch ``nn.Sequential``."""
    nn = torch.nn
    layers = []
    for name, layer in model.named_children():
        if isinstance(layer, Conv2d):
            t = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, Linear):
            t = nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, MaxPool2d):
            t = nn.MaxPool2d(layer.kernel_size, layer.stride)
        elif isinstance(layer, ReLU):
            t = nn.ReLU()
        else:
            t = nn.Flatten()
        layers.append((name, t))
    net = nn.Sequential(OrderedDict(layers))
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return net


def epochs(arch, batch, rounds, torch, clock=time.perf_counter):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_TRAIN, 3, SIDE, SIDE)).astype(np.float32)
    y = rng.integers(0, CLASSES, N_TRAIN)
    model = build_model(arch, rng=1)
    opt = SGD(model.parameters(), lr=1e-3, momentum=0.9)
    fns = {"ours": lambda: train_epoch(model, opt, x, y, batch)}
    if torch is not None:
        import torch.nn.functional as tf
        net = torch_twin(torch, model)
        topt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_epoch():
            for start in range(0, N_TRAIN, batch):
                topt.zero_grad()
                logits = net(tx[start:start + batch])
                loss = tf.cross_entropy(logits, ty[start:start + batch])
                if not math.isfinite(loss.item()):
                    raise ArithmeticError("loss is not finite")
                loss.backward()
                topt.step()
                logits.detach().argmax(1)

        fns["torch"] = torch_epoch
    methods = {name: layer.method for name, layer in model.named_children() if isinstance(layer, Conv2d)}
    return methods, interleaved(fns, rounds, block_seconds=0, baseline="torch" if torch else None, clock=clock)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default=ARCH, help=f"network spec (default {ARCH})")
    ap.add_argument("--rounds", type=int, default=5, help="timed epochs per side (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 64])
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the CPU time of this thread (needs --threads 1): steady on a loaded machine")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time needs --threads 1 (other threads' CPU time would not be counted)")
    clock = time.thread_time if args.cpu_time else time.perf_counter
    torch = set_threads(args.threads)
    print(f"--arch {args.arch}: one epoch of {N_TRAIN} images, threads={args.threads}, float32; "
          f"median {'CPU time of this thread' if args.cpu_time else 'wall time'} of {args.rounds} alternating epochs\n")
    print("|  N | conv methods | ours s | torch s | ours/torch |")
    print("|---:|---|---:|---:|---:|")
    rows = []
    for batch in args.batch:
        methods, res = epochs(args.arch, batch, args.rounds, torch, clock)
        rows.append({"batch": batch, "methods": methods, **res})
        o, t = res["ours"], res.get("torch", {})
        print(f"| {batch:>2} | {' '.join(methods.values())} | {o['ms'] / 1e3:.2f} | "
              f"{fmt(t.get('ms', float('nan')) / 1e3, 2)} | {fmt(o.get('ratio'), 2)} |", flush=True)
    path = write_json("bench_arch", {"machine": machine(), "arch": args.arch, "threads": args.threads,
                                     "rounds": args.rounds, "cpu_time": args.cpu_time, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
