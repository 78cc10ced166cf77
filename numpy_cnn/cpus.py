"""How many CPUs this process may use: ``available_cpus()``.

``os.cpu_count()`` is the machine's count, not ours. Two things cut it down:

* the CPU affinity mask (``taskset``, ``docker --cpuset-cpus``, a batch
  scheduler's allocation): :func:`os.sched_getaffinity`;
* a container's CPU quota (``docker --cpus 1.5``, Kubernetes limits): the
  cgroup's ``cpu.max`` (cgroup v2) or ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
  (v1). A quota of 1.5 CPUs over 8 visible cores still means 8 threads would
  each be stopped for most of every period: 2 threads, not 8, is the fit.

Standard library only: :mod:`numpy_cnn.cli.process_env` calls this before
NumPy and numba load, to size numba's thread pool.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cpu_quota"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus() -> int:
    """The CPUs this process may run on (affinity), capped by its cgroup CPU quota rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # macOS and Windows have no affinity call
        cpus = os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cpu_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The cgroup CPU quota in CPUs (``quota / period``), or None if there is none or it cannot be read.

    The process's own cgroup (from ``/proc/self/cgroup``) is read first, then
    the root one: a container usually sees its own cgroup mounted as the root.
    """
    v2, v1 = [], []
    try:
        for line in self_cgroup.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":                       # "0::/path": the unified (v2) hierarchy
                v2.append(root / path.lstrip("/"))
            elif "cpu" in controllers.split(","):       # "4:cpu,cpuacct:/path" (v1)
                for name in ("cpu", "cpu,cpuacct"):
                    v1.append(root / name / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    for folder in [*v2, root]:
        quota = _read_v2(folder / "cpu.max")
        if quota is not None:
            return quota
    for folder in [*v1, root / "cpu", root / "cpu,cpuacct"]:
        quota = _read_v1(folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us")
        if quota is not None:
            return quota
    return None


def _read_v2(path: Path) -> float | None:
    """``cpu.max`` holds ``"max 100000"`` (no quota) or ``"150000 100000"`` (1.5 CPUs)."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _read_v1(quota_path: Path, period_path: Path) -> float | None:
    """``cpu.cfs_quota_us`` is -1 when there is no quota."""
    try:
        quota, period = int(quota_path.read_text()), int(period_path.read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None
