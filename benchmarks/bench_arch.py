"""One training epoch of an ``--arch`` network against the same network in PyTorch.

    /work/venv/bin/python benchmarks/bench_arch.py [--arch SPEC] [--rounds 5] [--threads 2] [--batch 4 64]
    /work/venv/bin/python benchmarks/bench_arch.py --recipe recipes/fer.toml [--images 1024]

Both sides build the network of ``--arch`` (default: three 3x3 padded conv
layers, issue 13's network) with the same starting weights and train one
model-only epoch over the same random 48x48 float32 images (540, or
``--images``): forward, softmax cross-entropy, a finiteness check of the
loss, backward, optimizer step (SGD, lr 1e-3, momentum 0.9). Ours is
``train_epoch``; torch ``zero_grad / forward / cross_entropy / backward /
step`` with ``loss.item()``. ``--recipe FILE`` takes the network, input
channels, optimizer (SGD, Adam or AdamW, with its lr and weight decay),
label smoothing and batch size from a recipe (BatchNorm and Dropout layers
included; no schedule or augmentation: the epoch is the model's work only).
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
from numpy_cnn.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.optim import build_optimizer
from numpy_cnn.train.loop import train_epoch
from numpy_cnn.train.recipe import read_recipe

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
        elif isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            t = (nn.BatchNorm2d if isinstance(layer, BatchNorm2d) else nn.BatchNorm1d)(
                layer.num_features, layer.eps, layer.momentum)
        elif isinstance(layer, Dropout):
            t = nn.Dropout(layer.p)
        else:
            t = nn.Flatten()
        layers.append((name, t))
    net = nn.Sequential(OrderedDict(layers))
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return net


# The settings of an epoch when no --recipe gives them: the paper's optimizer.
PAPER = {"channels": 3, "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0,
         "label_smoothing": 0.0}
TORCH_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def torch_optimizer(torch, params, s):
    """The optimizer of settings ``s`` in torch, with the same hyperparameters as ours."""
    extra = {"momentum": s["momentum"]} if s["optimizer"] == "sgd" else {}
    return getattr(torch.optim, TORCH_OPTIMIZERS[s["optimizer"]])(
        params, lr=s["lr"], weight_decay=s["weight_decay"], **extra)


def epochs(arch, batch, rounds, torch, clock=time.perf_counter, settings=PAPER, images=N_TRAIN):
    s = settings
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, s["channels"], SIDE, SIDE)).astype(np.float32)
    y = rng.integers(0, CLASSES, images)
    model = build_model(arch, s["channels"], rng=1)
    opt = build_optimizer(s["optimizer"], model.parameters(), s["lr"], s["weight_decay"], s["momentum"])
    fns = {"ours": lambda: train_epoch(model, opt, x, y, batch, label_smoothing=s["label_smoothing"])}
    if torch is not None:
        import torch.nn.functional as tf
        net = torch_twin(torch, model)
        topt = torch_optimizer(torch, net.parameters(), s)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_epoch():
            net.train()
            for start in range(0, images, batch):
                topt.zero_grad()
                logits = net(tx[start:start + batch])
                loss = tf.cross_entropy(logits, ty[start:start + batch], label_smoothing=s["label_smoothing"])
                if not math.isfinite(loss.item()):
                    raise ArithmeticError("loss is not finite")
                loss.backward()
                topt.step()
                logits.detach().argmax(1)

        fns["torch"] = torch_epoch
    methods = {name: layer.methods for name, layer in model.named_children() if isinstance(layer, Conv2d)}
    return methods, interleaved(fns, rounds, block_seconds=0, baseline="torch" if torch else None, clock=clock)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default=ARCH, help=f"network spec (default {ARCH})")
    ap.add_argument("--rounds", type=int, default=5, help="timed epochs per side (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, nargs="*", default=None,
                    help="batch sizes (default 4 and 64, or the recipe's)")
    ap.add_argument("--recipe", help="take the network, channels, optimizer, label smoothing and batch "
                                     "size from this recipe .toml (e.g. recipes/fer.toml)")
    ap.add_argument("--images", type=int, default=N_TRAIN, help=f"images in the epoch (default {N_TRAIN})")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the CPU time of this thread (needs --threads 1): steady on a loaded machine")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time needs --threads 1 (other threads' CPU time would not be counted)")
    clock = time.thread_time if args.cpu_time else time.perf_counter
    settings, arch, batches = dict(PAPER), args.arch, args.batch or [4, 64]
    if args.recipe:
        recipe = read_recipe(args.recipe)
        settings.update({k: recipe[k] for k in settings if k in recipe})
        if recipe.get("optimizer", "sgd") != "sgd":
            settings["momentum"] = 0.0
        arch = recipe.get("arch", arch) if args.arch == ARCH else args.arch
        batches = args.batch or [recipe.get("batch_size", 4)]
    torch = set_threads(args.threads)
    print(f"--arch {arch}: {settings}; one epoch of {args.images} images, threads={args.threads}, float32; "
          f"median {'CPU time of this thread' if args.cpu_time else 'wall time'} of {args.rounds} alternating epochs\n")
    print("|  N | conv methods | ours s | torch s | ours/torch |")
    print("|---:|---|---:|---:|---:|")
    rows = []
    for batch in batches:
        methods, res = epochs(arch, batch, args.rounds, torch, clock, settings, args.images)
        rows.append({"batch": batch, "methods": methods, **res})
        o, t = res["ours"], res.get("torch", {})
        print(f"| {batch:>2} | {' '.join(methods.values())} | {o['ms'] / 1e3:.2f} | "
              f"{fmt(t.get('ms', float('nan')) / 1e3, 2)} | {fmt(o.get('ratio'), 2)} |", flush=True)
    path = write_json("bench_arch", {"machine": machine(), "arch": arch, "settings": settings,
                                     "recipe": args.recipe, "images": args.images, "threads": args.threads,
                                     "rounds": args.rounds, "cpu_time": args.cpu_time, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
