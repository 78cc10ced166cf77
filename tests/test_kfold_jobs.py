"""--jobs N: folds in worker processes, with the same cv_results.json as one after another; the thread
budget; Ctrl-C to the whole process group, then --resume; jobs that cannot see the data."""

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from train_support import TINY_ARCH, cli, make_clips

from numpy_cnn.errors import UserError
from numpy_cnn.train import parallel
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.kfold import FoldJob, run_fold
from numpy_cnn.train.parallel import Context, Workers, thread_budget

ROOT = Path(__file__).resolve().parents[1]

# --threads in this process must not leak; no pooled plot (matplotlib costs ~1 s)
pytestmark = pytest.mark.usefixtures("keep_threads", "no_pooled_plot")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return {"home": home, "clips": make_clips(home / "clips"), "cache": home / "cache"}


def _args(world, out, *extra, epochs=3):
    return ["--data", world["clips"], "--out", out, "--cache-dir", world["cache"], "--arch", TINY_ARCH,
            "--epochs", epochs, "--lr", 0.01, "--folds", 3, "--group-by", "clip", *extra]


def test_two_jobs_write_the_serial_cv_results_byte_for_byte(world, tmp_path):
    code, _, err = cli(*_args(world, tmp_path / "serial", "--threads", 1), home=world["home"])
    assert code == 0, err
    code, out, err = cli(*_args(world, tmp_path / "jobs", "--jobs", 2, "--threads", 1), home=world["home"])
    assert code == 0, err
    # Folds ran at once, yet every progress line is whole and says its fold.
    epoch_lines = [line for line in out.splitlines() if " epoch " in line]
    assert len(epoch_lines) == 9 and all(re.match(r"^fold [123]/3  epoch [123]/3  loss ", line) for line in epoch_lines)
    serial, jobs = ((tmp_path / d / "cv_results.json").read_bytes() for d in ("serial", "jobs"))
    assert jobs == serial
    threads = {json.loads((tmp_path / "jobs" / f"fold{k}" / "results.json").read_text())["threads"] for k in (1, 2, 3)}
    assert threads == {1}   # a fold's results.json records its threads; cv_results.json does not
    cv = json.loads((tmp_path / "jobs" / "cv.json").read_text())["config"]
    assert "jobs" not in cv and "threads" not in cv


def test_the_thread_budget_shares_the_cpus_and_refuses_what_does_not_fit(monkeypatch):
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert thread_budget(2, cpus=8) == 4 and thread_budget(3, cpus=8) == 2 and thread_budget(8, cpus=8) == 1
    assert thread_budget(2, threads=3, cpus=8) == 3
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")   # numba's pool is the most a worker can use
    assert thread_budget(2, cpus=8) == 1
    with pytest.raises(UserError, match=r"^--jobs 3 with 1 thread each needs 3 CPUs, but this process may use 2; "
                                        r"lower --jobs$"):
        thread_budget(3, cpus=2)
    with pytest.raises(UserError, match=r"--jobs 2 with --threads 2 each needs 4 CPUs.*lower --jobs or --threads"):
        thread_budget(2, threads=2, cpus=2)
    monkeypatch.setattr(parallel, "available_cpus", lambda: 2)
    with pytest.raises(UserError, match="needs 3 CPUs"):
        Workers(jobs=3)
    assert Workers(jobs=1).in_process and not Workers(jobs=2).in_process


@pytest.mark.parametrize("extra, needle", [
    (["--jobs", "0"], "--jobs must be >= 1"),
    (["--jobs", "64"], "needs 64 CPUs"),
])
def test_a_budget_that_does_not_fit_is_one_line_before_anything_is_written(world, tmp_path, extra, needle):
    code, _, err = cli(*_args(world, tmp_path / "cv", *extra), home=world["home"])
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "cv").exists()


def test_jobs_without_folds_is_one_line(world, tmp_path):
    code, _, err = cli("--data", world["clips"], "--out", tmp_path / "run", "--jobs", 2, home=world["home"])
    assert code == 2 and "--jobs runs the folds of a K-fold run at once; add --folds K" in err, err
    assert not (tmp_path / "run").exists()


def test_a_job_that_cannot_see_the_data_names_the_path_and_the_worker(world, tmp_path):
    config = TrainConfig(data=str(tmp_path / "elsewhere"), arch=TINY_ARCH, epochs=1, folds=2)
    job = FoldJob(config, 1, str(world["home"]), str(world["home"]))
    where = "Dask worker tcp://10.0.0.7:39113 on host node7"
    with pytest.raises(UserError, match=rf"^{where} cannot see .*fold1/test.txt; every worker must see the data "
                                        "and the run directory at the same path"):
        run_fold(job, Context(1, where, None, lambda: False))


def _train_numpy(*args, **kw):
    return subprocess.Popen([sys.executable, str(ROOT / "train_numpy.py"), *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")
def test_ctrl_c_stops_every_worker_then_resume_gives_the_uninterrupted_results(world, tmp_path):
    # Long enough (30 epochs of a few tens of ms) that Ctrl-C lands while the folds train.
    args = lambda out, *extra: _args(world, out, "--threads", 1, *extra, epochs=30)   # noqa: E731
    code, _, err = cli(*args(tmp_path / "whole"), home=world["home"])
    assert code == 0, err

    cut = tmp_path / "cut"
    run = _train_numpy(*args(cut, "--jobs", 2), start_new_session=True)   # its own process group, as a terminal's
    training = set()
    for line in run.stdout:   # both workers in their epochs (not still loading numba's kernels)
        if " epoch " in line:
            training.add(line.split()[1])
            if len(training) == 2:
                break
    os.killpg(run.pid, signal.SIGINT)   # what Ctrl-C does: every process of the foreground group gets it
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(rf"interrupted in folds? .* of 3 \(.*holds epoch \d+.*\); continue with: "
                     rf"python train_numpy.py --resume {re.escape(str(cut))}$", err.strip()), err
    assert not (cut / "cv_results.json").exists()
    started = [k for k in (1, 2, 3) if (cut / f"fold{k}" / "checkpoint.npz").exists()]
    assert started, "nothing was saved to resume from"

    code, out, err = cli("--resume", cut, "--jobs", 2, "--threads", 1, "--cache-dir", world["cache"],
                         home=world["home"])
    assert code == 0, err
    assert not any(re.match(rf"^fold {k}/3  epoch 1/", line) for k in started for line in out.splitlines())
    assert (cut / "cv_results.json").read_bytes() == (tmp_path / "whole" / "cv_results.json").read_bytes()


class _CtrlC(Exception):
    pass


def test_ctrl_c_while_the_parent_reads_lines_never_leaves_the_queue_out_of_step():
    # CI once failed so: Ctrl-C landed after a message's length was read and before its bytes,
    # and the parent's next read took bytes for a length ("EOFError: Ran out of input").
    lines, written, done = multiprocessing.get_context("spawn").SimpleQueue(), [], threading.Event()
    armed = [False]   # Ctrl-C raises only inside the try below; it disarms itself as it raises

    def on_ctrl_c(*_):
        if armed[0]:
            armed[0] = False
            raise _CtrlC

    def write():   # threads write and signal; Python runs the handler in the main thread, the reader
        while not done.is_set():
            lines.put(f"line {len(written)}")
            written.append(1)

    def ctrl_c():
        while not done.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.0005)

    got, interrupts, end = [], 0, time.monotonic() + 1.0
    threads = [threading.Thread(target=f, daemon=True) for f in (write, ctrl_c)]
    before = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        for thread in threads:
            thread.start()
        while time.monotonic() < end or threads[0].is_alive() or not lines.empty():
            if time.monotonic() >= end:
                done.set()
            try:
                armed[0] = True
                got.extend(parallel._drain(lines))
                armed[0] = False
            except _CtrlC:
                interrupts += 1
    finally:
        done.set()
        for thread in threads:
            thread.join()
        signal.signal(signal.SIGINT, before)
    numbers = [int(line.removeprefix("line ")) for line in got]
    assert numbers == sorted(set(numbers)) and all(line == f"line {i}" for line, i in zip(got, numbers))
    assert interrupts > 50 and len(written) - len(got) <= interrupts   # the line read as Ctrl-C came may be lost
