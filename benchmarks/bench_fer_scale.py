"""Training at FER2013's scale: epoch time (test pass included) against PyTorch, and peak memory.

    /work/venv/bin/python benchmarks/bench_fer_scale.py [--rounds 3] [--threads 2] [--batch 64]

FER2013 (Kaggle) has 28,709 training and 7,178 test images of 48x48; the
real file is not in this repository, so this generates a set of that size
(random pixels and labels: the speed does not depend on what the faces show).

* **epoch + test**, in this process: one training epoch at ``--batch`` as
  ``train_numpy.py`` runs it (new order, flip + rotation, minus the mean, 3
  channels, SGD with momentum), then the loss over the 7,178 test images.
  Torch does the same work (``bench_train.Torch``), the epochs alternate,
  and the ratio is the median of the per-round ratios (ours / torch).
* **peak memory**, in subprocesses: the generated set is written as two
  FER2013-style CSVs (``emotion,pixels``) and ``python train_numpy.py --data
  train.csv --test-data test.csv --epochs 1`` runs twice; the first parses
  the CSVs (and caches the decoded images), the second reads that cache, so
  its peak resident memory (``ru_maxrss``) is the training's.

Writes ``benchmarks/results/bench_fer_scale.json``.
"""

import _common  # noqa: F401  (sets the BLAS threads before NumPy loads)

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, machine, set_threads, vector_line, write_json
from bench_train import Ours, Torch, run_measured

N_TRAIN, N_TEST, SIDE, CLASSES = 28_709, 7_178, 48, 7


def fer_sized(seed=0):
    """Random uint8 images and labels of FER2013's sizes: (x, y, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N_TRAIN, SIDE, SIDE), dtype=np.uint8)
    xt = rng.integers(0, 256, (N_TEST, SIDE, SIDE), dtype=np.uint8)
    return x, rng.integers(0, CLASSES, N_TRAIN), xt, rng.integers(0, CLASSES, N_TEST)


def write_csv(path, x, y):
    """A FER2013-style CSV (header ``emotion,pixels``): each pixel left-aligned in 4 columns,
    which the reader takes as one run of spaces between values."""
    digits = np.array([f"{v:<4}".encode() for v in range(256)], dtype="S4").view(np.uint8).reshape(256, 4)
    with open(path, "wb") as f:
        f.write(b"emotion,pixels\n")
        for start in range(0, len(y), 4096):
            rows = digits[x[start:start + 4096].reshape(-1, SIDE * SIDE)].reshape(-1, SIDE * SIDE * 4)
            f.write(b"".join(b"%d,%s\n" % (label, row.tobytes().rstrip())
                             for label, row in zip(y[start:start + 4096], rows)))


def epoch_ratio(batch, rounds, torch):
    """Median seconds of an epoch + test pass, ours and torch's, alternating; and the median per-round ratio."""
    x, y, xt, yt = fer_sized()
    ours = Ours(x, y, xt, yt, batch)
    theirs = Torch(torch, ours)
    small = Ours(x[:256], y[:256], xt[:64], yt[:64], batch)     # compiles (or loads) the kernels
    small.with_test()
    Torch(torch, small).with_test()
    times = {"ours": [], "torch": []}
    for r in range(rounds):
        for name, side in ((("ours", ours), ("torch", theirs)) if r % 2 == 0 else (("torch", theirs), ("ours", ours))):
            t = time.perf_counter()
            side.with_test()
            times[name].append(time.perf_counter() - t)
        print(f"  round {r + 1}: ours {times['ours'][-1]:.2f} s, torch {times['torch'][-1]:.2f} s", flush=True)
    ratio = float(np.median(np.array(times["ours"]) / np.array(times["torch"])))
    return {"ours_s": float(np.median(times["ours"])), "torch_s": float(np.median(times["torch"])), "ratio": ratio}


def peak_memory(batch):
    """Peak RSS (MB) of ``train_numpy.py`` for one epoch on the generated CSVs: parsing run, then cached run."""
    x, y, xt, yt = fer_sized()
    script = [sys.executable, str(ROOT / "train_numpy.py")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_csv(tmp / "train.csv", x, y)
        write_csv(tmp / "test.csv", xt, yt)
        out = {}
        for label in ("parse", "cached"):
            args = [*script, "--data", str(tmp / "train.csv"), "--test-data", str(tmp / "test.csv"),
                    "--epochs", "1", "--batch-size", str(batch), "--cache-dir", str(tmp / "cache"),
                    "--out", str(tmp / f"run_{label}")]
            first, total, rss = run_measured(args, ROOT)
            out[label] = {"first_epoch_line_s": first, "run_s": total, "peak_rss_mb": rss}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="epochs per side (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="numba and torch threads (default 2)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    args = ap.parse_args()
    torch = set_threads(args.threads)
    payload = {"machine": machine(), "threads": args.threads, "rounds": args.rounds, "batch": args.batch}
    print(vector_line(payload["machine"]))
    print(f"{N_TRAIN} train / {N_TEST} test images of {SIDE}x{SIDE}, batch {args.batch}, "
          f"threads={args.threads}; load average {payload['machine']['load_average'][0]:.1f}")
    if torch is not None:
        payload["epoch_with_test"] = e = epoch_ratio(args.batch, args.rounds, torch)
        print(f"epoch + test pass: ours {e['ours_s']:.2f} s, torch {e['torch_s']:.2f} s, "
              f"ratio {e['ratio']:.2f} (median of {args.rounds} alternating rounds)")
    if not args.no_memory:
        payload["memory"] = m = peak_memory(args.batch)
        print(f"python train_numpy.py --data train.csv --test-data test.csv --epochs 1: peak RSS "
              f"{m['parse']['peak_rss_mb']:.0f} MB parsing the CSVs, {m['cached']['peak_rss_mb']:.0f} MB "
              f"from the cache (training); epoch line after {m['cached']['first_epoch_line_s']:.1f} s")
    print(f"\nwrote {write_json('bench_fer_scale', payload)}")
    return payload


if __name__ == "__main__":
    main()
