"""available_cpus: the affinity mask, capped by a cgroup CPU quota (v1 and v2), read from fake cgroup trees."""

import os

import pytest

from numpy_cnn import cpus
from numpy_cnn.cpus import available_cpus, cpu_quota


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_quota_of_the_process_own_cgroup(tmp_path):
    write(tmp_path / "proc", "0::/box/run\n")
    write(tmp_path / "cg/box/run/cpu.max", "150000 100000\n")
    write(tmp_path / "cg/cpu.max", "max 100000\n")
    assert cpu_quota(tmp_path / "cg", tmp_path / "proc") == 1.5


def test_v2_without_a_quota(tmp_path):
    write(tmp_path / "proc", "0::/\n")
    write(tmp_path / "cg/cpu.max", "max 100000\n")
    assert cpu_quota(tmp_path / "cg", tmp_path / "proc") is None


def test_v1_quota(tmp_path):
    write(tmp_path / "proc", "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n")
    write(tmp_path / "cg/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "200000\n")
    write(tmp_path / "cg/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    assert cpu_quota(tmp_path / "cg", tmp_path / "proc") == 2.0


def test_v1_minus_one_is_no_quota(tmp_path):
    write(tmp_path / "proc", "1:cpu:/\n")
    write(tmp_path / "cg/cpu/cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cg/cpu/cpu.cfs_period_us", "100000\n")
    assert cpu_quota(tmp_path / "cg", tmp_path / "proc") is None


def test_unreadable_files_mean_no_quota(tmp_path):
    write(tmp_path / "proc", "garbage")
    write(tmp_path / "cg/cpu.max", "not numbers\n")
    assert cpu_quota(tmp_path / "cg", tmp_path / "proc") is None
    assert cpu_quota(tmp_path / "nowhere", tmp_path / "nothing") is None


@pytest.mark.parametrize("quota, expected", [(None, 8), (1.5, 2), (0.2, 1), (16.0, 8)])
def test_quota_caps_the_affinity_rounded_up(monkeypatch, quota, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(cpus, "cpu_quota", lambda: quota)
    assert available_cpus() == expected


def test_this_process():
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
