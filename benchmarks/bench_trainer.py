"""The real trainer against a PyTorch reference trainer: seconds per epoch, test pass included.

    /work/venv/bin/python benchmarks/bench_trainer.py [--data DIR] [--epochs 20] [--rounds 2] [--batch 4 64]

*Ours* is ``python train_numpy.py --data DIR --epochs E --batch-size B`` in a
subprocess: the whole program, as a user runs it; its per-epoch ``seconds``
(``metrics.json``: the epoch's inputs, its SGD steps and the test pass) give
the median. *PyTorch* is the reference trainer of ``bench_train.Torch`` on
the same images (the run's own train/test split, decoded by numpy_cnn): a new
permutation, flip + rotation (``affine_grid``/``grid_sample``), minus the mean,
3 channels, SGD with momentum, then the test set's forward pass and loss, in
this process. The two alternate for ``--rounds`` rounds of E epochs each; the
ratio is the median of the per-round ratios of the median epochs.

Without ``--data`` the generated synthetic set is used (540 training and 135
test images, as in the paper's split of 675 frames).
"""

import _common  # noqa: F401  (sets the BLAS threads before NumPy loads)

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, machine, set_threads, vector_line, write_json
from bench_train import Ours, Torch
from numpy_cnn.data import load_dataset
from numpy_cnn.data.dataset import TEST_SPLIT_FILE


def ours_epochs(data, epochs, batch, threads, out):
    """Median seconds per epoch of the real trainer (a subprocess), from its metrics.json."""
    args = [sys.executable, str(ROOT / "train_numpy.py"), "--epochs", str(epochs), "--batch-size", str(batch),
            "--out", str(out), "--quiet"] + (["--data", str(data)] if data else [])
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    history = json.loads((out / "metrics.json").read_text())
    return float(np.median([row["seconds"] for row in history]))


def torch_epochs(torch, ds, epochs, batch):
    """Median seconds per epoch (+ test pass) of the PyTorch reference trainer on the same images."""
    side = Torch(torch, Ours(ds.x_train, ds.y_train, ds.x_test, ds.y_test, batch))
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        side.with_test()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="dataset folder or FER2013 .csv (default: the generated synthetic set)")
    ap.add_argument("--epochs", type=int, default=20, help="epochs per side and round (default 20)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 64])
    args = ap.parse_args()
    torch = set_threads(args.threads)
    if torch is None:
        sys.exit("bench_trainer.py needs PyTorch: pip install torch")
    payload = {"machine": machine(), "threads": args.threads, "epochs": args.epochs, "rounds": args.rounds}
    print(vector_line(payload["machine"]))
    print(f"load average {payload['machine']['load_average'][0]:.1f}; median seconds per epoch "
          f"(test pass included) over {args.epochs} epochs, {args.rounds} alternating rounds")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batch:
            ratios, ours, theirs = [], [], []
            for r in range(args.rounds):
                out = Path(tmp) / f"b{batch}_r{r}"
                ours.append(ours_epochs(args.data, args.epochs, batch, args.threads, out))
                # the run's own split, so both sides see the same images
                if r == 0:
                    ds = load_dataset(Path(args.data) if args.data else ROOT / "data" / "synthetic_sfew",
                                      split_dir=out, reuse_split=True) if (out / TEST_SPLIT_FILE).exists() else None
                theirs.append(torch_epochs(torch, ds, args.epochs, batch))
                ratios.append(ours[-1] / theirs[-1])
            row = {"batch": batch, "ours_s": float(np.median(ours)), "torch_s": float(np.median(theirs)),
                   "ratio": float(np.median(ratios)), "n_train": len(ds.y_train), "n_test": len(ds.y_test)}
            rows.append(row)
            print(f"batch {batch:>2}: train_numpy.py {1e3 * row['ours_s']:.1f} ms/epoch, PyTorch reference "
                  f"{1e3 * row['torch_s']:.1f} ms/epoch, ratio {row['ratio']:.2f} "
                  f"({row['n_train']} train / {row['n_test']} test images)", flush=True)
    payload["rows"] = rows
    print(f"\nwrote {write_json('bench_trainer', payload)}")


if __name__ == "__main__":
    main()
