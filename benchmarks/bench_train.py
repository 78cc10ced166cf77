"""Whole-training speed against PyTorch CPU, plus compile time, start-up time and peak memory.

    /work/venv/bin/python benchmarks/bench_train.py [--rounds 7] [--threads 2] [--batch 4 64]

Both sides train the paper's network (same weights at the start) on the same
pre-loaded arrays: 540 random 48x48 training images and 135 test images,
float32, numba and torch on the same number of threads, OpenBLAS on one.
Epochs of the two sides alternate; we report medians and the median of the
per-round ratios (ours / torch).

What each figure includes, on both sides:

* **model-only epoch**: the SGD steps over one already prepared
  (N, 3, 48, 48) epoch: forward, loss, a finiteness check of the loss,
  backward, SGD step (momentum 0.9), the training-accuracy argmax.
  Ours is ``train_epoch``; torch ``zero_grad / forward / cross_entropy /
  backward / step`` with ``loss.item()``.
* **full epoch**: what ``numpy_cnn/train/loop.py`` does for one epoch: a new
  permutation, random flip + rotation by up to 10 degrees of every image
  (bilinear, zero fill), minus the training mean, gray copied to 3 channels,
  then the model-only epoch. Torch gets the same NumPy random draws and does
  the same work with its own ops (``flip``, ``affine_grid`` + ``grid_sample``).
* **epoch + test**: the full epoch plus the forward pass over the 135 test
  images and their loss, as every epoch of ``python train_numpy.py`` does.
* **inference**: images per second of a forward pass over the 540 images in
  batches of 256.

It prints the vector width the kernels use (read from freshly compiled code,
see ``numpy_cnn/kernels/_cpu.py``) and where a batch-64 step's time goes:
each layer type's forward + backward (conv, pool, relu, FC), the loss, the
SGD step and the step's share of building the epoch's inputs (data).

Then the BatchNorm net (issue #11): the paper's net with ``BatchNorm2d``
after each conv, its full epoch against the same net without BatchNorm (goal:
at most 1.3x) and against PyTorch's same BN net (goal: at or below 1).

Then, in subprocesses: the first training step in a cold process (empty numba
cache: a fresh ``NUMBA_CACHE_DIR``) and a warm one (the cache it left), the
start-up of ``python train_numpy.py --help``, the time to the first epoch line
and the peak memory (``ru_maxrss``) of ``python train_numpy.py --epochs 3``.
Writes ``benchmarks/results/bench_train.json``.
"""

import _common  # noqa: F401  (sets the BLAS threads before NumPy loads)

import argparse
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

from _common import ROOT, fmt, interleaved, machine, set_threads, vector_line, write_json
from numpy_cnn.nn.arch import build_model
from numpy_cnn.data import MeanSubtraction, to_float
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.models import paper_net
from numpy_cnn.nn.optim import SGD
from numpy_cnn.train.loop import (AUGMENT_CHUNK, epoch_inputs, lazy_network_input, network_input,
                                  predict_logits, train_epoch)

N_TRAIN, N_TEST, SIDE, CLASSES = 540, 135, 48, 7


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((N_TRAIN, SIDE, SIDE), dtype=np.float32)
    xt = rng.random((N_TEST, SIDE, SIDE), dtype=np.float32)
    return x, rng.integers(0, CLASSES, N_TRAIN), xt, rng.integers(0, CLASSES, N_TEST)


class Ours:
    def __init__(self, x, y, xt, yt, batch):
        self.x, self.y, self.xt_images, self.yt, self.batch = x, y, xt, yt, batch
        self.model = paper_net(rng=np.random.default_rng(1))
        self.opt = SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.mean = MeanSubtraction.fit(x)
        self.rng = np.random.default_rng(2)
        self.xt = lazy_network_input(xt, self.mean)           # as train_numpy.py: built per block
        x_fixed, y_fixed = epoch_inputs(x, y, np.random.default_rng(3), self.mean)
        self.fixed = np.asarray(x_fixed), y_fixed             # the model-only epoch builds nothing

    def model_only(self):
        train_epoch(self.model, self.opt, *self.fixed, self.batch)

    def full(self):
        train_epoch(self.model, self.opt, *epoch_inputs(self.x, self.y, self.rng, self.mean), self.batch)

    def with_test(self):
        self.full()
        cross_entropy(predict_logits(self.model, self.xt), self.yt)

    def infer(self):
        predict_logits(self.model, self.fixed[0])


class Torch:
    """The same network and epoch in PyTorch, starting from ``ours``' weights."""

    def __init__(self, torch, ours):
        import torch.nn as nn
        import torch.nn.functional as tf
        self.torch, self.tf, self.ours = torch, tf, ours
        self.model = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1296, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 7))
        with torch.no_grad():
            for p, q in zip(self.model.parameters(), ours.model.parameters()):
                p.copy_(torch.from_numpy(q.data))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.x = torch.from_numpy(ours.x)
        if self.x.dtype == torch.uint8:                      # as ours: float in [0, 1] when used
            self.x = self.x.float() / 255
        self.y, self.yt = torch.from_numpy(ours.y), torch.from_numpy(ours.yt)
        self.fixed = tuple(torch.from_numpy(a) for a in ours.fixed)
        self.mean = float(ours.mean.mean)
        self.rng = np.random.default_rng(2)
        # Test inputs prepared once (minus the mean, 3 channels), as a torch script would keep them.
        self.xt = torch.from_numpy(network_input(_float(ours.xt_images), ours.mean))

    def steps(self, x, y):
        torch, tf, b = self.torch, self.tf, self.ours.batch
        predicted = torch.empty(len(y), dtype=torch.int64)
        for start in range(0, len(y), b):
            xb, yb = x[start:start + b], y[start:start + b]
            self.opt.zero_grad()
            logits = self.model(xb)
            loss = tf.cross_entropy(logits, yb)
            if not math.isfinite(loss.item()):
                raise ArithmeticError("loss is not finite")
            loss.backward()
            self.opt.step()
            predicted[start:start + len(yb)] = logits.detach().argmax(1)

    def epoch_inputs(self):
        """Permute, flip, rotate (same draws as ours), minus the mean, 3 channels."""
        torch, tf, rng = self.torch, self.tf, self.rng
        n_train = len(self.y)
        order = rng.permutation(n_train)
        out = torch.empty((n_train, 3) + tuple(self.x.shape[1:]))
        for start in range(0, n_train, AUGMENT_CHUNK):
            chunk = self.x[torch.from_numpy(order[start:start + AUGMENT_CHUNK])][:, None]   # (n, 1, H, W)
            n = len(chunk)
            flip = torch.from_numpy(rng.random(n) < 0.5)
            theta = torch.from_numpy(np.deg2rad(rng.uniform(-10, 10, n))).float()
            chunk = torch.where(flip[:, None, None, None], chunk.flip(-1), chunk)
            cos, sin = torch.cos(theta), torch.sin(theta)
            zero = torch.zeros_like(cos)
            affine = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
            grid = tf.affine_grid(affine, list(chunk.shape), align_corners=True)
            chunk = tf.grid_sample(chunk, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            out[start:start + n] = chunk - self.mean
        return out, self.y[torch.from_numpy(order)]

    def model_only(self):
        self.steps(*self.fixed)

    def full(self):
        self.steps(*self.epoch_inputs())

    def with_test(self):
        self.full()
        with self.torch.no_grad():
            logits = self.torch.cat([self.model(self.xt[i:i + 256]) for i in range(0, len(self.xt), 256)])
            self.tf.cross_entropy(logits, self.yt)

    def infer(self):
        with self.torch.no_grad():
            for i in range(0, len(self.fixed[0]), 256):
                self.model(self.fixed[0][i:i + 256])


def _float(x):
    """uint8 images -> float32 in [0, 1] (as the trainer converts them); float ones as they are."""
    return to_float(x) if x.dtype == np.uint8 else x


PARTS = {"Conv2d": "conv", "MaxPool2d": "pool", "Linear": "FC", "ReLU": "relu"}


def step_split(batch, rounds):
    """Milliseconds per training step of each part, at ``batch``: {part: median ms over ``rounds`` epochs}.

    Times every layer's forward and backward separately (``conv``, ``pool``,
    ``FC``, ``relu``, ``other`` for Flatten), the loss, the SGD step, and the
    step's share of building the epoch's inputs (``data``: permutation,
    flip + rotate, mean, 3 channels, timed over the epoch and divided by its
    steps). Each part's median over the epochs of the run; timing each call
    adds ~1 us per call.
    """
    import time
    x, y, _, _ = data()
    ours = Ours(x, y, x[:1], y[:1], batch)
    model, opt, mean, rng = ours.model, ours.opt, ours.mean, ours.rng
    layers = [(PARTS.get(type(m).__name__, "other"), m) for m in model.layers]
    per_round = []
    for _ in range(rounds + 1):                          # the first epoch is a warm-up
        parts = dict.fromkeys(["data", "conv", "pool", "relu", "FC", "other", "loss", "SGD"], 0.0)
        t = time.perf_counter()
        xe, ye = epoch_inputs(x, y, rng, mean)
        batches = [xe[s:s + batch] for s in range(0, len(ye), batch)]
        parts["data"] += time.perf_counter() - t
        for k, xb in enumerate(batches):
            yb = ye[k * batch:(k + 1) * batch]
            for part, m in layers:
                t = time.perf_counter()
                xb = m.forward(xb)
                parts[part] += time.perf_counter() - t
            t = time.perf_counter()
            _, g = cross_entropy(xb, yb)
            parts["loss"] += time.perf_counter() - t
            for part, m in reversed(layers):
                t = time.perf_counter()
                g = m.backward(g)
                parts[part] += time.perf_counter() - t
            t = time.perf_counter()
            opt.step()
            parts["SGD"] += time.perf_counter() - t
        per_round.append({k: 1e3 * v / len(batches) for k, v in parts.items()})
    return {k: float(np.median([r[k] for r in per_round[1:]])) for k in per_round[0]}


def epochs(batches, rounds, torch):
    rows = []
    x, y, xt, yt = data()
    for batch in batches:
        ours = Ours(x, y, xt, yt, batch)
        theirs = Torch(torch, ours) if torch is not None else None
        for what in ("model_only", "full", "with_test", "infer"):
            fns = {"ours": getattr(ours, what)}
            if theirs is not None:
                fns["torch"] = getattr(theirs, what)
            res = interleaved(fns, rounds if what != "infer" else 3 * rounds, block_seconds=0,
                              baseline="torch" if theirs else None)
            row = {"batch": batch, "what": what, **res}
            if what == "infer":
                for side in fns:
                    row[side]["images_per_s"] = N_TRAIN / (res[side]["ms"] / 1e3)
            rows.append(row)
            o, t = res["ours"], res.get("torch", {})
            extra = (f"  ({o['images_per_s']:.0f} vs {t.get('images_per_s', float('nan')):.0f} images/s)"
                     if what == "infer" else "")
            print(f"| {batch:>2} | {what:<10} | {o['ms']:8.1f} | {fmt(t.get('ms'), 1):>8} | "
                  f"{fmt(o.get('ratio'), 2)} |{extra}", flush=True)
    return rows


BN_ARCH = "c6k5-bn-relu-pool2-c16k5-bn-relu-pool2-fc120-relu-fc84-relu"


def batchnorm_epochs(batches, rounds, torch):
    """Full epochs of the BN net (ours, and torch from the same weights) and of the plain paper net,
    alternating; ratios are per round, to our BN net."""
    x, y, xt, yt = data()
    rows = []
    for batch in batches:
        plain, bn = Ours(x, y, xt, yt, batch), Ours(x, y, xt, yt, batch)
        bn.model = build_model(BN_ARCH, rng=np.random.default_rng(1))
        bn.opt = SGD(bn.model.parameters(), lr=1e-3, momentum=0.9)
        fns = {"bn": bn.full, "plain": plain.full}
        if torch is not None:
            from collections import OrderedDict
            nn = torch.nn
            kinds = {"Conv2d": lambda l: nn.Conv2d(l.in_channels, l.out_channels, l.kernel_size),
                     "BatchNorm2d": lambda l: nn.BatchNorm2d(l.num_features), "ReLU": lambda l: nn.ReLU(),
                     "MaxPool2d": lambda l: nn.MaxPool2d(l.kernel_size), "Flatten": lambda l: nn.Flatten(),
                     "Linear": lambda l: nn.Linear(l.in_features, l.out_features)}
            twin = nn.Sequential(OrderedDict((name, kinds[type(layer).__name__](layer))
                                             for name, layer in bn.model.named_children()))
            twin.load_state_dict({k: torch.from_numpy(v) for k, v in bn.model.state_dict().items()})
            theirs = Torch(torch, plain)   # the same data and augmentation; then its model swapped
            theirs.model, theirs.opt = twin, torch.optim.SGD(twin.parameters(), lr=1e-3, momentum=0.9)
            fns["torch_bn"] = theirs.full
        res = interleaved(fns, rounds, block_seconds=0, baseline="bn")
        rows.append({"batch": batch, **res})
        t = res.get("torch_bn", {})
        print(f"| {batch:>2} | {res['plain']['ms']:8.1f} | {res['bn']['ms']:8.1f} | {fmt(t.get('ms'), 1):>8} | "
              f"{1 / res['plain']['ratio']:.2f} | {fmt(1 / t['ratio'] if t else None, 2)} |", flush=True)
    return rows


_FIRST_STEP = """
import os, time
os.environ["OPENBLAS_NUM_THREADS"] = "1"
t0 = time.perf_counter()
import numpy as np
from numpy_cnn.data import augment
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.models import paper_net
from numpy_cnn.nn.optim import SGD
t1 = time.perf_counter()
rng = np.random.default_rng(0)
model = paper_net(rng=rng)
opt = SGD(model.parameters(), lr=1e-3, momentum=0.9)
x = augment(rng.random((4, 48, 48), dtype=np.float32), rng)
x = np.repeat(x[:, None], 3, axis=1)
loss, g = cross_entropy(model.forward(x), np.arange(4))
model.backward(g)
opt.step()
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def compile_times():
    """Seconds to import and to run the first training step, in a fresh process: cold and warm numba cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        for label in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", _FIRST_STEP], env=env, capture_output=True,
                                 text=True, check=True)
            imp, first = (float(v) for v in res.stdout.split())
            out[label] = {"import_s": imp, "first_step_s": first}
    return out


# A small launcher reports the peak memory: a child forked straight from this
# process (which has torch loaded) would count the parent's pages in its ru_maxrss.
_LAUNCH = """
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
first = -1.0
for line in proc.stdout:
    if first < 0 and line.startswith("epoch"):
        first = time.perf_counter() - t0
_, status, usage = os.wait4(proc.pid, 0)
print(first, time.perf_counter() - t0, usage.ru_maxrss / 1024, status)
"""


def run_measured(args, cwd):
    """Run a command; return (seconds to the first stdout line starting with 'epoch' or None,
    total seconds, peak RSS in MB)."""
    res = subprocess.run([sys.executable, "-c", _LAUNCH, *args], cwd=cwd, capture_output=True, text=True, check=True)
    first, total, rss, status = res.stdout.split()
    if int(status) != 0:
        raise RuntimeError(f"{args} failed with status {status}")
    return (float(first) if float(first) >= 0 else None), float(total), float(rss)


def startup_and_memory():
    script = [sys.executable, str(ROOT / "train_numpy.py")]
    helps = sorted(run_measured(script + ["--help"], ROOT)[1] for _ in range(3))
    with tempfile.TemporaryDirectory() as out:
        first, total, rss = run_measured(script + ["--epochs", "3", "--out", str(out) + "/run"], ROOT)
    return {"help_s": helps[1], "first_epoch_line_s": first, "three_epoch_run_s": total, "peak_rss_mb": rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="epochs per side and case (default 7)")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 64])
    ap.add_argument("--no-subprocess", action="store_true", help="skip compile, start-up and memory")
    ap.add_argument("--batchnorm-only", action="store_true", help="only the BatchNorm net's table")
    args = ap.parse_args()
    torch = set_threads(args.threads)
    payload = {"machine": machine(), "threads": args.threads, "rounds": args.rounds}
    print(vector_line(payload["machine"]))
    print(f"threads={args.threads} (numba, torch), OpenBLAS 1; {N_TRAIN} train / {N_TEST} test images; "
          f"median ms of {args.rounds} alternating epochs; ratio = median of per-round ours / torch\n")
    if not args.batchnorm_only:
        print("|  N | what       | ours ms  | torch ms | ratio |")
        print("|---:|------------|---------:|---------:|------:|")
        payload["epochs"] = epochs(args.batch, args.rounds, torch)
        payload["step_split_batch64"] = split = step_split(64, args.rounds)
        total = sum(split.values())
        print(f"\nwhere a batch-64 step's time goes (ms per step, {total:.2f} ms in all): "
              + ", ".join(f"{k} {v:.3f} ({100 * v / total:.0f}%)" for k, v in split.items()))
    print(f"\nBatchNorm after each conv ({BN_ARCH}), full epoch, median ms; ratios: median per round\n")
    print("|  N | plain ms | BN ms    | torch BN | BN / plain | BN / torch BN |")
    print("|---:|---------:|---------:|---------:|-----------:|--------------:|")
    payload["batchnorm"] = batchnorm_epochs(args.batch, args.rounds, torch)
    if not (args.no_subprocess or args.batchnorm_only):
        payload["compile"] = ct = compile_times()
        print(f"\nfirst training step (batch 4, with augmentation) in a fresh process: "
              f"cold numba cache {ct['cold']['first_step_s']:.2f} s, warm {ct['warm']['first_step_s']:.2f} s "
              f"(imports {ct['cold']['import_s']:.2f} / {ct['warm']['import_s']:.2f} s)")
        payload["script"] = s = startup_and_memory()
        print(f"python train_numpy.py --help: {s['help_s']:.2f} s; --epochs 3: first epoch line after "
              f"{s['first_epoch_line_s']:.2f} s, whole run {s['three_epoch_run_s']:.2f} s, "
              f"peak RSS {s['peak_rss_mb']:.0f} MB")
    print(f"\nwrote {write_json('bench_train', payload)}")
    return payload


if __name__ == "__main__":
    main()
