"""The same numbers whatever the thread count (issue #20): every kernel, and whole trainings, bit for bit.

The convolution backward passes sum the weight gradient over chunks of the
batch in lanes whose order the batch alone fixes (``numpy_cnn.kernels.threads``);
the forward passes cut the batch so that no result, nor a GEMM's shape,
follows the threads. So 1, 2 or 3 threads must give identical arrays, not
merely close ones: every comparison here is ``np.array_equal``.

The machine may have 2 cores: the 3-thread runs happen in a child process
started with ``NUMBA_NUM_THREADS=3`` (numba sizes its pool once, when it loads).
Batch sizes 4, 7 and 64 on 71 images leave a short last batch and split
unevenly over 2 and 3 threads (and over the 8 lanes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from train_support import make_class_folders

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
CHILD_ENV = {**os.environ, "NUMBA_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
             "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])}

# One layer of each kind a Conv2d can run (kernels/choice.py): (C, F, side, kernel, stride, padding).
KERNEL_CASES = {
    "direct unpadded, side by side (paper conv2)": (6, 16, 22, 5, 1, 0),
    "direct padded, stacked": (3, 16, 12, 3, 1, 1),
    "winograd": (16, 32, 12, 3, 1, 1),
    "im2col stride 2": (16, 16, 12, 3, 2, 1),
    "im2col 1x1": (32, 16, 12, 1, 1, 0),
}
BATCHES = (4, 7, 64)

# Whole trainings: the paper's net (direct convolution), and a BatchNorm net whose convs run
# direct (3 input channels), Winograd (3x3, 16 in), im2col 1x1 and im2col stride 2.
NETS = {
    "paper": ("c6k5-relu-pool2-c16k5-relu-pool2-fc120-relu-fc84-relu", 48),
    "mixed": ("c16k3p1-bn-relu-c32k3p1-bn-relu-pool2-c32k1-bn-relu-c32k3s2p1-relu-fc32-relu", 24),
}
N_TRAIN, EPOCHS = 71, 2


def _layer_outputs(case: tuple[int, ...], batch: int) -> list[np.ndarray]:
    """y, dx, dw, db of one layer through its default method, from data fixed by the case and batch."""
    from numpy_cnn.nn.layers import Conv2d
    c, f, side, k, s, p = case
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, c, side, side)).astype(np.float32)
    layer = Conv2d(c, f, k, s, p, rng=0)
    y = layer.forward(x)
    dx = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
    return [y, dx, layer.weight.grad, layer.bias.grad]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", KERNEL_CASES)
def test_each_conv_method_gives_the_same_bits_on_one_and_two_threads(name, batch, numba_threads, monkeypatch):
    from numpy_cnn.kernels import threads as threads_module
    monkeypatch.setattr(threads_module, "WORK_PER_THREAD", 1)    # a thread even for the small calls
    numba_threads(1)
    want = _layer_outputs(KERNEL_CASES[name], batch)
    numba_threads(2)
    got = _layer_outputs(KERNEL_CASES[name], batch)
    for part, a, b in zip(("y", "dx", "dw", "db"), want, got):
        assert np.array_equal(a, b), f"{name}, batch {batch}: {part} differs"


def _train(spec: str, side: int, batch: int) -> dict[str, np.ndarray]:
    """EPOCHS epochs of SGD (momentum, the paper's augmentation) on fixed random images:
    every parameter, buffer and momentum buffer, the epochs' metrics and the test logits."""
    from numpy_cnn.data import MeanSubtraction
    from numpy_cnn.nn.arch import build_model
    from numpy_cnn.nn.optim import SGD
    from numpy_cnn.train.loop import epoch_inputs, network_input, predict_logits, train_epoch
    data = np.random.default_rng(0)
    x = data.random((N_TRAIN, side, side), dtype=np.float32)
    y = data.integers(0, 7, N_TRAIN)
    x_test = data.random((13, side, side), dtype=np.float32)
    model = build_model(spec, 3, side, 7, rng=1)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    mean = MeanSubtraction.fit(x)
    run = np.random.default_rng(2)
    out = {}
    for epoch in range(EPOCHS):
        stats = train_epoch(model, opt, *epoch_inputs(x, y, run, mean), batch)
        out[f"metrics/{epoch}"] = np.array([stats.loss, stats.accuracy, *stats.grad_norms.values()])
    out.update({f"state/{k}": v for k, v in model.state_dict().items()})
    out.update({f"optimizer/{k}": v for k, v in opt.state_dict().items()})
    out["test_logits"] = predict_logits(model, network_input(x_test, mean))
    return out


def _child(out_dir: str) -> None:
    """Run in a process whose numba pool has 3 threads: the kernels and the trainings on 1, 2 and 3."""
    from numpy_cnn.kernels import threads as threads_module
    from numpy_cnn.kernels.threads import use_threads
    for threads in (1, 2, 3):
        use_threads(threads)
        arrays = {}
        threads_module.WORK_PER_THREAD = 1
        for name, case in KERNEL_CASES.items():
            for batch in BATCHES:
                for part, a in zip(("y", "dx", "dw", "db"), _layer_outputs(case, batch)):
                    arrays[f"kernel/{name}/{batch}/{part}"] = a
        threads_module.WORK_PER_THREAD = 200_000                  # trainings: the rule as shipped
        for net, (spec, side) in NETS.items():
            for batch in BATCHES:
                arrays.update({f"train/{net}/{batch}/{k}": v for k, v in _train(spec, side, batch).items()})
        np.savez(Path(out_dir) / f"threads{threads}.npz", **arrays)


def _assert_same_arrays(want: dict, got: dict, label: str) -> None:
    assert want.keys() == got.keys()
    differ = [key for key in want if not np.array_equal(want[key], got[key])]
    assert not differ, f"{label}: {len(differ)} arrays differ from 1 thread's, e.g. {differ[:5]}"


def test_kernels_and_trainings_give_the_same_bits_on_1_2_and_3_threads(tmp_path):
    code = f"from test_thread_independence import _child; _child({str(tmp_path)!r})"
    done = subprocess.run([sys.executable, "-c", code], env=CHILD_ENV, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = {t: dict(np.load(tmp_path / f"threads{t}.npz")) for t in (1, 2, 3)}
    # the trainings really trained (the weights moved) and really differ by batch size
    paper = runs[1]
    assert not np.array_equal(paper["train/paper/4/state/conv1.weight"], paper["train/paper/64/state/conv1.weight"])
    for t in (2, 3):
        _assert_same_arrays(runs[1], runs[t], f"{t} threads")


def test_the_trainer_saves_the_same_checkpoint_and_metrics_with_threads_1_2_and_3(tmp_path):
    """``train_numpy.py --threads N`` end to end: the data, the epochs, the test pass, the files."""
    data = make_class_folders(tmp_path / "faces", per_class=4)
    runs = {}
    for threads in (1, 2, 3):
        out = tmp_path / f"run{threads}"
        done = subprocess.run(
            [sys.executable, ROOT / "train_numpy.py", "--data", data, "--arch", NETS["mixed"][0],
             "--epochs", "2", "--batch-size", "7", "--lr", "0.01", "--quiet", "--threads", str(threads),
             "--cache-dir", tmp_path / "cache", "--out", out],
            env=CHILD_ENV, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
        with np.load(out / "checkpoint.npz") as ckpt:
            arrays = dict(ckpt)
        meta = json.loads(str(arrays.pop("_meta")))
        results = json.loads((out / "results.json").read_text())
        runs[threads] = arrays, _metrics(meta["history"], results)
    for threads in (2, 3):
        _assert_same_arrays(runs[1][0], runs[threads][0], f"checkpoint, --threads {threads}")
        assert runs[1][1] == runs[threads][1]


def _metrics(history: list[dict], results: dict) -> dict:
    """What a run reports: every epoch's losses, accuracies and gradient norms, and the test results
    (not the seconds, nor the thread count)."""
    epochs = [{k: v for k, v in row.items() if "seconds" not in k} for row in history]
    keys = ("overall_test_accuracy", "table1", "final_train_accuracy", "final_train_loss", "final_test_loss",
            "confusion_matrix")
    return {"epochs": epochs, **{k: results[k] for k in keys}}
