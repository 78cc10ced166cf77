"""Shared by the benchmarks: thread settings, interleaved timing, machine facts, JSON output.

Import this module *before* NumPy: it sets the thread settings the trainer
runs with (:mod:`numpy_cnn.cli.process_env`: OpenBLAS at one thread, numba's
idle OpenMP workers spinning briefly).

The machine is shared and noisy, so candidates are timed in alternating
blocks of calls and compared through the median of per-block ratios: a burst
of load from another process slows every candidate of that round alike and
cancels out in the ratio.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from numpy_cnn.cli.process_env import DEFAULTS, set_thread_defaults  # noqa: E402

set_thread_defaults()

import json          # noqa: E402
import platform      # noqa: E402
import subprocess    # noqa: E402
import time          # noqa: E402

import numpy as np   # noqa: E402


def set_threads(threads):
    """numba and (if installed) torch both get ``threads``; returns the torch module or None."""
    import numba
    numba.set_num_threads(threads)
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def interleaved(fns, reps, block_seconds=0.5e-3, baseline=None, clock=time.perf_counter, settle_seconds=0.0):
    """Time each callable of ``fns`` (name -> fn) in rounds, alternating their order.

    ``clock`` is wall time by default; ``time.thread_time`` counts only the CPU
    time of the calling thread (meaningful with one thread on each side: it
    does not grow while other processes hold the core).

    Each round calls every function ``block`` times (so a round of a fast
    function lasts about ``block_seconds``) and records seconds per call.

    ``settle_seconds``: before its timed block, each function runs untimed
    for that long (at least once). Both PyTorch and numba run their threads
    on OpenMP (libgomp), whose idle workers spin for milliseconds after a
    parallel region before they sleep: timed right after the other library,
    a function shares its cores with those spinning threads and runs up to
    2x slower. Settling times each library as it runs on its own, as in
    training, and is fair to both sides.

    Returns ``{name: {"ms": median, "p10_ms": 10th percentile, "ratio": median of
    per-round ratios to ``baseline``}}`` (ratio only when a baseline is given).
    """
    blocks = {}
    for name, fn in fns.items():
        for _ in range(2):
            fn()
        t = clock()
        fn()
        blocks[name] = max(1, int(block_seconds / max(clock() - t, 1e-7)))
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(reps):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, block = fns[name], blocks[name]
            settled = time.perf_counter() + settle_seconds
            fn()
            while time.perf_counter() < settled:
                fn()
            t = clock()
            for _ in range(block):
                fn()
            times[name].append((clock() - t) / block)
    out = {}
    for name, ts in times.items():
        ts = np.array(ts)
        out[name] = {"ms": 1e3 * float(np.median(ts)), "p10_ms": 1e3 * float(np.percentile(ts, 10))}
        if baseline in times:
            out[name]["ratio"] = float(np.median(ts / np.array(times[baseline])))
    return out


def machine():
    """The facts a reader needs to compare numbers: CPU, cores, versions."""
    info = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                           if line.startswith("Model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    import numba
    info["numpy"], info["numba"] = np.__version__, numba.__version__
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    info["load_average"] = os.getloadavg()
    info["env"] = {name: os.environ.get(name) for name in DEFAULTS}
    info.update(vector_width())
    return info


def vector_width():
    """The SIMD width the kernels use here, read from freshly compiled code (see numpy_cnn/kernels/_cpu.py).

    ``numba_default_bits`` is what plain ``numba.njit`` code gets on this CPU:
    256 on Intel's AVX-512 server cores, whose LLVM tuning prefers 256 bits.
    """
    import llvmlite.binding as ll
    from numba.core import config
    from numba.core.registry import CPUDispatcher
    from numpy_cnn.kernels._cpu import probe_vector_bits
    return {"llvm_cpu": config.CPU_NAME or ll.get_host_cpu_name(),
            "kernel_vector_bits": probe_vector_bits(), "numba_default_bits": probe_vector_bits(CPUDispatcher)}


def vector_line(info):
    """One line naming the vector width in use, from :func:`machine`'s facts."""
    return (f"vector width in use: {info['kernel_vector_bits']}-bit FMAs in the kernels "
            f"(LLVM CPU {info['llvm_cpu']}; plain numba.njit code here: {info['numba_default_bits']}-bit)")


def write_json(name, payload):
    """Write ``benchmarks/results/<name>.json`` (git-ignored) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1))
    return path


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"
