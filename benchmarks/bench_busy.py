"""A busy machine: the default run's epochs beside CPU-bound busy loops, against PyTorch in the same conditions.

    /work/venv/bin/python benchmarks/bench_busy.py [--epochs 20] [--busy 0 1 2] [--rounds 1] [--batch 4]

For each number of busy processes (``python -c "while True: pass"``, started
before and killed after each measurement), both sides train on the same
generated images:

* **ours**: ``python train_numpy.py --epochs E`` in a subprocess, as a user runs
  it: the CPUs this process may use as threads, and the thread governor on
  (``numpy_cnn/train/governor.py``); the median of its per-epoch ``seconds``
  (metrics.json; the epoch's inputs, steps and test pass), the first epoch left out;
* **ours, fixed**: the same with ``--threads`` set to that count (no governor),
  to show what the governor buys;
* **PyTorch**: the reference trainer of ``bench_train.Torch`` (the same epoch:
  permutation, flip + rotation, mean, SGD with momentum, test pass), as many
  torch threads as we use, in this process.

A side's **slowdown** is its busy median over its quiet median. A **fair
share** would cost ``(threads + busy) / cores``: each runnable thread getting
an equal part of the cores. The goal (issue #20): ours at most 1.3x the fair
share and no worse than PyTorch's slowdown. Writes
``benchmarks/results/bench_busy.json``.
"""

import _common  # noqa: F401  (sets the thread settings before NumPy loads)

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from _common import ROOT, machine, set_threads, write_json
from bench_trainer import torch_epochs
from numpy_cnn.cpus import available_cpus
from numpy_cnn.data import load_dataset
from numpy_cnn.data.dataset import TEST_SPLIT_FILE


@contextmanager
def busy_loops(n):
    """``n`` CPU-bound processes for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5)   # let them reach the scheduler's steady state
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def ours(epochs, batch, out, extra=()):
    """Median seconds per epoch (first left out) of ``train_numpy.py``, and the governor's thread shares."""
    import json
    args = [sys.executable, str(ROOT / "train_numpy.py"), "--epochs", str(epochs), "--batch-size", str(batch),
            "--out", str(out), "--quiet", *extra]
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    history = json.loads((out / "metrics.json").read_text())
    results = json.loads((out / "results.json").read_text())
    return float(np.median([row["seconds"] for row in history[1:]])), results.get("threads_used")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20, help="epochs per measurement (default 20)")
    ap.add_argument("--busy", type=int, nargs="*", default=[0, 1, 2], help="busy processes (default 0 1 2)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole sequence (medians over rounds)")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    if 0 not in args.busy:
        sys.exit("bench_busy.py: --busy must include 0, the quiet baseline")
    threads = available_cpus()
    cores = os.cpu_count() or 1
    torch = set_threads(threads)
    if torch is None:
        sys.exit('bench_busy.py needs PyTorch: pip install torch==2.13.0')
    info = machine()
    print(f"{info['cpu']}, {cores} cores, {threads} threads per side; load average {info['load_average'][0]:.1f}; "
          f"median seconds per epoch over {args.epochs} epochs (first left out), batch {args.batch}")
    sides = ("ours", "ours, fixed", "PyTorch")
    seconds = {(side, b): [] for side in sides for b in args.busy}
    shares = {}
    with tempfile.TemporaryDirectory() as tmp:
        ds = None
        for r in range(args.rounds):
            for b in args.busy:
                with busy_loops(b):
                    out = Path(tmp) / f"r{r}b{b}"
                    s, shares[b] = ours(args.epochs, args.batch, out)
                    seconds["ours", b].append(s)
                    seconds["ours, fixed", b].append(
                        ours(args.epochs, args.batch, Path(tmp) / f"r{r}b{b}f", ["--threads", str(threads)])[0])
                    if ds is None:   # the run's own split: both sides train on the same images
                        ds = load_dataset(ROOT / "data" / "synthetic_sfew", split_dir=out, reuse_split=True) \
                            if (out / TEST_SPLIT_FILE).exists() else None
                    seconds["PyTorch", b].append(torch_epochs(torch, ds, args.epochs, args.batch))
                print(f"round {r + 1}, {b} busy: " + ", ".join(f"{side} {seconds[side, b][-1]:.3f}s"
                                                              for side in sides), flush=True)
    median = {key: float(np.median(v)) for key, v in seconds.items()}
    rows = []
    print(f"\n| busy processes | fair share | ours | ours / fair | ours, fixed {threads} threads | PyTorch "
          f"| governor's threads (share of steps) |\n|---:|---:|---:|---:|---:|---:|---|")
    for b in args.busy:
        fair = (threads + b) / cores
        slow = {side: median[side, b] / median[side, 0] for side in sides}
        rows.append({"busy": b, "fair_share": fair, "seconds": {s: median[s, b] for s in sides},
                     "slowdown": slow, "threads_used": shares.get(b)})
        used = ", ".join(f"{t}: {100 * p:.0f}%" for t, p in (shares.get(b) or {}).items())
        print(f"| {b} | {fair:.2f}x | {slow['ours']:.2f}x ({median['ours', b]:.3f}s) | {slow['ours'] / fair:.2f} "
              f"| {slow['ours, fixed']:.2f}x ({median['ours, fixed', b]:.3f}s) "
              f"| {slow['PyTorch']:.2f}x ({median['PyTorch', b]:.3f}s) | {used} |")
    payload = {"machine": info, "threads": threads, "epochs": args.epochs, "batch": args.batch,
               "rounds": args.rounds, "rows": rows}
    print(f"\nwrote {write_json('bench_busy', payload)}")


if __name__ == "__main__":
    main()
