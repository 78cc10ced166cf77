"""The real entry point in a child process: no traceback for a mistake, and a real SIGINT (Ctrl-C)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from train_support import TINY_ARCH, make_class_folders

from numpy_cnn.train.checkpoint import load_checkpoint
from numpy_cnn.cli.main import main

SCRIPT = Path(__file__).resolve().parent.parent / "train_numpy.py"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_a_mistake_prints_one_line_and_exits_2(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "--data", tmp_path / "missing", "--out", tmp_path / "r"],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing: not found" in done.stderr
    assert not (tmp_path / "r").exists()


def test_sigint_saves_a_checkpoint_that_resumes_to_the_uninterrupted_weights(tmp_path):
    data = make_class_folders(tmp_path / "faces")
    common = ["--data", data, "--arch", TINY_ARCH, "--lr", "0.01", "--cache-dir", tmp_path / "cache"]
    # A child of a background job inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt; restore the default so the signal means Ctrl-C as in a terminal.
    child = subprocess.Popen([sys.executable, SCRIPT, *common, "--epochs", "300", "--out", tmp_path / "cut"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in child.stdout:   # wait until training is under way
            if line.split()[:2] == ["epoch", "3/300"]:
                break
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()   # never leave a runaway trainer behind if the test fails
    assert child.returncode == 2 and err.count("\n") == 1, err
    assert "interrupted;" in err and f"--resume {tmp_path / 'cut'}" in err
    epoch = load_checkpoint(tmp_path / "cut").meta["epoch"]
    assert epoch >= 3 and f"holds epoch {epoch}" in err

    args = [str(a) for a in common] + ["--quiet", "--epochs", str(epoch + 1)]
    assert main(["--resume", str(tmp_path / "cut"), *args[len(common):]], home=tmp_path) == 0
    assert main([*args, "--out", str(tmp_path / "whole")], home=tmp_path) == 0
    a, b = load_checkpoint(tmp_path / "cut"), load_checkpoint(tmp_path / "whole")
    for key in a.model:
        assert a.model[key].tobytes() == b.model[key].tobytes(), key
    assert np.array_equal(a.mean, b.mean)


def test_output_into_a_closed_pipe_stops_quietly(tmp_path):
    # `train_numpy.py summary | head -3`: head exits early and the next print hits a closed pipe.
    read_end, write_end = os.pipe()
    os.close(read_end)   # before the child writes anything: every write fails
    try:
        done = subprocess.run([sys.executable, SCRIPT, "summary"], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=ENV, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 1 and done.stderr == "", done.stderr
