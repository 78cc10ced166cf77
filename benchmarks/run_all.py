"""Run every benchmark and print one Markdown report (the README's "Benchmarks" section).

    /work/venv/bin/python benchmarks/run_all.py [--quick]

Runs ``bench_conv.py`` (per layer) and ``bench_train.py`` (per epoch,
compile time, start-up, peak memory) in fresh processes, one after the
other, then prints the machine they ran on. Each writes its JSON to
``benchmarks/results/`` (git-ignored). ``--quick`` uses fewer rounds (a smoke
test; the numbers are noisier). Takes about a minute on 2 cores.
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
    args = ap.parse_args()
    conv = ["--reps", "10"] if args.quick else []
    train = ["--rounds", "3"] if args.quick else []
    for script, extra in (("bench_conv.py", conv), ("bench_train.py", train)):
        print(f"$ python benchmarks/{script} {' '.join(extra)}".rstrip(), flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True)
        print(flush=True)
    m = json.loads((HERE / "results" / "bench_train.json").read_text())["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy {m['numpy']}, "
          f"numba {m['numba']}, torch {m['torch']}; load average at start {m['load_average'][0]:.2f}")


if __name__ == "__main__":
    main()
