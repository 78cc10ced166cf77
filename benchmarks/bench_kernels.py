"""Benchmark the numba kernels against PyTorch CPU on the paper network's layer shapes.

    /work/venv/bin/python benchmarks/bench_kernels.py [--reps 200] [--no-compile]

Both sides run with the same number of threads (2 by default) and OpenBLAS
at 1 thread. The machine is shared and noisy, so the two are timed in
alternating blocks of calls and we report the median time of each and the
median of the per-block ratios (ours / torch): a burst of load from another
process slows both sides of one block and cancels out in the ratio. The
10th-percentile ratio (p10 of ours / p10 of torch) shows what each reaches
when the machine leaves it alone.

Torch "fwd" runs under ``torch.no_grad()`` (its fastest forward); "fwd+bwd"
runs with autograd, calls ``backward`` with a fixed upstream gradient and
clears ``.grad`` first, as an optimizer's ``zero_grad`` would.

It also measures compile time: the first call in a fresh process with an
empty numba cache (cold), and in a fresh process that finds the on-disk
cache (warm). Those use a temporary NUMBA_CACHE_DIR so the project's own
cache is left alone.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before NumPy is imported

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def interleaved(ours, theirs, reps):
    """Time alternating blocks of calls (each block ~0.5 ms, at least one call).

    Returns (median ms ours, median ms torch, median of per-block ratios,
    10th-percentile ratio). The last is what the kernels reach when the
    shared machine leaves them alone; the median is the headline number.
    """
    for _ in range(3):
        ours()
        theirs()
    t = time.perf_counter()
    theirs()
    block = max(1, int(0.5e-3 / max(time.perf_counter() - t, 1e-6)))
    a, b = [], []
    for r in range(reps):
        times = {}
        for name, fn in ((("o", ours), ("t", theirs)) if r % 2 == 0 else (("t", theirs), ("o", ours))):
            t = time.perf_counter()
            for _ in range(block):
                fn()
            times[name] = (time.perf_counter() - t) / block
        a.append(times["o"])
        b.append(times["t"])
    a, b = np.array(a), np.array(b)
    return (1e3 * np.median(a), 1e3 * np.median(b), float(np.median(a / b)),
            float(np.percentile(a, 10) / np.percentile(b, 10)))


def run_layers(reps, threads, only=None, batches=(4, 64)):
    import numba
    import torch
    import torch.nn.functional as tf

    from numpy_cnn.kernels import conv2d_backward, conv2d_forward, maxpool2d_backward, maxpool2d_forward

    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []

    def conv_cases(name, C, F, H, N):
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        w = (0.1 * rng.standard_normal((F, C, 5, 5))).astype(np.float32)
        b = rng.standard_normal(F).astype(np.float32)
        g = rng.standard_normal((N, F, H - 4, H - 4)).astype(np.float32)
        tx, tw, tb, tg = (torch.from_numpy(a) for a in (x, w, b, g))
        txg = tx.clone().requires_grad_(True)
        tw.requires_grad_(True)
        tb.requires_grad_(True)

        def torch_fwd():
            with torch.no_grad():
                tf.conv2d(tx, tw, tb)

        def torch_fb(inp):
            tw.grad = tb.grad = inp.grad = None
            tf.conv2d(inp, tw, tb).backward(tg)

        def ours_fb(need_dx):
            conv2d_forward(x, w, b)
            conv2d_backward(g, x, w, need_input_grad=need_dx)

        yield f"{name} fwd", lambda: conv2d_forward(x, w, b), torch_fwd
        yield f"{name} fwd+bwd (no dx)", lambda: ours_fb(False), lambda: torch_fb(tx)
        yield f"{name} fwd+bwd (with dx)", lambda: ours_fb(True), lambda: torch_fb(txg)

    def pool_cases(name, C, H, N):
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        g = rng.standard_normal((N, C, H // 2, H // 2)).astype(np.float32)
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        txg = tx.clone().requires_grad_(True)

        def torch_fwd():
            with torch.no_grad():
                tf.max_pool2d(tx, 2, 2)

        def torch_fb():
            txg.grad = None
            tf.max_pool2d(txg, 2, 2).backward(tg)

        def ours_fb():
            y, arg = maxpool2d_forward(x, 2, 2)
            maxpool2d_backward(g, arg, x.shape, 2, 2)

        def torch_relu_fb():
            txg.grad = None
            tf.max_pool2d(tf.relu(txg), 2, 2).backward(tg)

        def ours_relu_fb():
            y, arg = maxpool2d_forward(x, 2, 2, relu=True)
            maxpool2d_backward(g, arg, x.shape, 2, 2)

        yield f"{name} fwd", lambda: maxpool2d_forward(x, 2, 2), torch_fwd
        yield f"{name} fwd+bwd", ours_fb, torch_fb
        yield f"{name} relu+pool f+b (fused)", ours_relu_fb, torch_relu_fb

    for N in batches:
        cases = [
            *conv_cases("conv1 3->6 48x48", 3, 6, 48, N),
            *pool_cases("pool1 6x44x44", 6, 44, N),
            *conv_cases("conv2 6->16 22x22", 6, 16, 22, N),
            *pool_cases("pool2 16x18x18", 16, 18, N),
        ]
        for label, ours, theirs in cases:
            if only and not any(o in label for o in only):
                continue
            o, t, r, r10 = interleaved(ours, theirs, reps)
            rows.append((N, label, o, t, r, r10))
            print(f"| {N:>2} | {label:<34} | {o:8.3f} | {t:8.3f} | {r:5.2f} | {r10:5.2f} |", flush=True)
    return rows


_FIRST_CALL = """
import os, time
os.environ["OPENBLAS_NUM_THREADS"] = "1"
t0 = time.perf_counter()
import numpy as np
from numpy_cnn.kernels import conv2d_forward, conv2d_backward, maxpool2d_forward, maxpool2d_backward
t1 = time.perf_counter()
x = np.ones((4, 3, 48, 48), np.float32); w = np.ones((6, 3, 5, 5), np.float32); b = np.ones(6, np.float32)
y = conv2d_forward(x, w, b)
conv2d_backward(y, x, w)
p, a = maxpool2d_forward(y, 2, 2)
maxpool2d_backward(p, a, y.shape, 2, 2)
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t1:.2f}")
"""


def compile_times():
    """(import s, first-call s) in a fresh process: cold cache, then warm cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        for label in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True, check=True)
            out[label] = tuple(float(v) for v in res.stdout.split())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200, help="timed blocks per case (default 200)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="run only cases whose label contains one of these strings")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 64])
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    args = ap.parse_args()

    if not args.no_compile:
        ct = compile_times()
        for label, (imp, first) in ct.items():
            print(f"{label} numba cache: import {imp:.2f} s, first calls (conv f+b, pool f+b, float32) {first:.2f} s")
    print(f"\nthreads={args.threads}, float32, medians of {args.reps} interleaved blocks\n")
    print("|  N | layer / pass                       | ours ms  | torch ms | ratio | p10 ratio |")
    print("|---:|------------------------------------|---------:|---------:|------:|------:|")
    run_layers(args.reps, args.threads, args.only, args.batch)


if __name__ == "__main__":
    main()
