"""Run every benchmark and print one Markdown report (the README's "Benchmarks" section).

    /work/venv/bin/python benchmarks/run_all.py [--quick]

Runs ``bench_conv.py`` (per layer), ``bench_train.py`` (per epoch, the
batch-64 step split, compile time, start-up, peak memory) and, with
``--fer``, ``bench_fer_scale.py`` (an epoch at FER2013's size and its peak
memory) in fresh processes, one after the other, then prints the machine
they ran on and the vector width the kernels use. Each writes its JSON to
``benchmarks/results/`` (git-ignored). ``--quick`` uses fewer rounds (a smoke
test; the numbers are noisier). Takes about a minute on 2 cores, a few more
with ``--fer``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds: a smoke test")
    ap.add_argument("--fer", action="store_true", help="also bench_fer_scale.py (FER2013's size, minutes)")
    args = ap.parse_args()
    conv = ["--reps", "10"] if args.quick else []
    train = ["--rounds", "3"] if args.quick else []
    scripts = [("bench_conv.py", conv), ("bench_train.py", train)]
    if args.fer:
        scripts.append(("bench_fer_scale.py", ["--rounds", "1"] if args.quick else []))
    for script, extra in scripts:
        print(f"$ python benchmarks/{script} {' '.join(extra)}".rstrip(), flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True)
        print(flush=True)
    m = json.loads((HERE / "results" / "bench_train.json").read_text())["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, "
          f"numba {m['numba']}, torch {m['torch']}; load average at start {m['load_average'][0]:.2f}; "
          f"{m['kernel_vector_bits']}-bit vectors in the kernels (LLVM CPU {m['llvm_cpu']})")


if __name__ == "__main__":
    main()
