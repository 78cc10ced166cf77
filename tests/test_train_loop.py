"""The training run as a library call: determinism, resume, Ctrl-C, NaN, mean subtraction, outputs."""

import json

import numpy as np
import pytest
from train_support import TINY_ARCH, make_class_folders, no_plots, train_quietly as _run  # noqa: F401 (a fixture)

from numpy_cnn.nn.arch import build_model
from numpy_cnn.train.checkpoint import load_checkpoint, load_model
from numpy_cnn.data import MeanSubtraction, decode_image, to_float, to_network_input
from numpy_cnn.errors import UserError
from numpy_cnn.nn.optim import SGD
from numpy_cnn.train import loop, trainer as run
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.inference import evaluate_checkpoint, predict_images
from numpy_cnn.train.trainer import Interrupted

TIMING = ("seconds", "data_seconds")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_class_folders(tmp_path_factory.mktemp("faces"))


def _config(data, **kw):
    return TrainConfig(**{"data": str(data), "arch": TINY_ARCH, "epochs": 4, "lr": 0.01, **kw})


def _untimed(history):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def _weights(out):
    ckpt = load_checkpoint(out)
    return {**ckpt.model, **{f"optim.{k}": v for k, v in ckpt.optim.items()}}


def _assert_same_run(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:   # bit-identical, not merely close
        assert wa[key].dtype == np.float32 and wa[key].tobytes() == wb[key].tobytes(), key
    ma, mb = load_checkpoint(a).meta, load_checkpoint(b).meta
    assert _untimed(ma["history"]) == _untimed(mb["history"])
    assert ma["rng_state"] == mb["rng_state"]


def test_same_seed_same_metrics_and_weights_other_seed_differs(data, tmp_path):
    _run(_config(data, epochs=2), tmp_path / "a")
    _run(_config(data, epochs=2), tmp_path / "b")
    _assert_same_run(tmp_path / "a", tmp_path / "b")
    _run(_config(data, epochs=2, seed=1), tmp_path / "c")
    assert not np.array_equal(_weights(tmp_path / "a")["fc2.weight"], _weights(tmp_path / "c")["fc2.weight"])


def test_resume_after_fewer_epochs_ends_with_bit_identical_weights(data, tmp_path):
    _run(_config(data), tmp_path / "full")
    _run(_config(data, epochs=2), tmp_path / "part")
    results = _run(_config(data), tmp_path / "part", resume=True)
    assert results["epochs"] == 4
    _assert_same_run(tmp_path / "full", tmp_path / "part")


def test_ctrl_c_saves_the_last_completed_epoch_and_resume_matches(data, tmp_path):
    _run(_config(data), tmp_path / "full")

    def ctrl_c_after_epoch_2(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="holds epoch 2.*--resume"):
        _run(_config(data), tmp_path / "cut", on_epoch_end=ctrl_c_after_epoch_2)
    assert load_checkpoint(tmp_path / "cut").meta["epoch"] == 2
    _run(_config(data), tmp_path / "cut", resume=True)
    _assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    real, calls = loop.cross_entropy, []

    def nan_in_epoch_3(logits, target):   # 7 steps per epoch (28 images, batch 4)
        calls.append(1)
        loss, grad = real(logits, target)
        return (float("nan") if len(calls) > 2 * (7 + 1) + 3 else loss), grad   # +1: evaluation

    monkeypatch.setattr(loop, "cross_entropy", nan_in_epoch_3)
    with pytest.raises(UserError, match="epoch 3: loss became nan at step 4.*holds epoch 2.*lower --lr"):
        _run(_config(data), tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta["epoch"] == 2 and all(np.isfinite(v).all() for v in ckpt.model.values())


def test_metrics_hold_losses_accuracies_and_gradient_norms_per_parameter(data, tmp_path):
    results = _run(_config(data, epochs=2), tmp_path / "run")
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    names = [n for n in history[0] if n.startswith("grad_norm.")]
    assert names == [f"grad_norm.{p}" for p in ("conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias",
                                                  "fc2.weight", "fc2.bias")]
    assert all(r[n] > 0 for r in history for n in names)
    assert results["final_train_accuracy"] == history[-1]["train_acc"]
    assert results["overall_test_accuracy"] == history[-1]["test_acc"]
    csv_lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("epoch,train_loss,train_acc,test_loss,test_acc")


def test_the_training_mean_is_stored_and_subtracted_at_evaluation_and_prediction(data, tmp_path):
    results = _run(_config(data, epochs=2, mean="pixel"), tmp_path / "run")
    model, ckpt = load_model(tmp_path / "run")
    assert ckpt.mean.shape == (48, 48) and 0.1 < ckpt.mean.mean() < 0.9

    rows, _, _ = evaluate_checkpoint(tmp_path / "run", data=None, home=tmp_path, cache_dir=None)
    assert rows[-1]["accuracy"] == results["overall_test_accuracy"]   # same preprocessing as training

    image = data / "Happy" / "img_0.png"
    probabilities, classes, _ = predict_images(tmp_path / "run", [image])
    gray = to_float(decode_image(image, 48)[None])
    logits = model.forward(to_network_input(MeanSubtraction(ckpt.mean)(gray)))
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    without_mean = model.forward(to_network_input(gray))
    assert not np.allclose(logits, without_mean)
    assert classes[3] == "Happy" and probabilities.shape == (1, 7)


def test_epoch_inputs_are_shuffled_augmented_and_mean_subtracted(data):
    rng = np.random.default_rng(0)
    x = rng.random((10, 8, 8), dtype=np.float32)
    y = np.arange(10)
    mean = MeanSubtraction(np.float32(0.5))
    plain, order = loop.epoch_inputs(x, y, np.random.default_rng(1), mean, augment=False)
    assert plain.shape == (10, 3, 8, 8) and plain.dtype == np.float32
    np.testing.assert_array_equal(plain[:, 1], x[order] - np.float32(0.5))   # order is the label here
    assert not np.array_equal(order, y)
    augmented, order2 = loop.epoch_inputs(x, y, np.random.default_rng(1), mean, rotation=10)
    np.testing.assert_array_equal(order, order2)   # the order is drawn first, from the same stream
    assert not np.allclose(augmented, plain)


def test_ctrl_c_before_the_first_epoch_ends_takes_back_the_split_so_the_command_can_be_rerun(
        data, tmp_path, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    real = run.train_epoch
    monkeypatch.setattr(run, "train_epoch", ctrl_c)
    with pytest.raises(Interrupted, match="nothing was saved; run the same command again"):
        _run(_config(data), tmp_path / "run")
    assert not (tmp_path / "run").exists()   # no split files left to refuse the rerun for
    monkeypatch.setattr(run, "train_epoch", real)
    assert _run(_config(data, epochs=1), tmp_path / "run")["epochs"] == 1


def test_a_test_loss_that_overflows_after_an_epoch_is_not_saved_as_a_good_epoch(data, tmp_path, monkeypatch):
    # With one step per epoch the next epoch's first loss comes too late: the epoch is checked itself.
    real, epochs = run.evaluate, []

    def nan_after_epoch_3(model, x, y):
        loss, acc, predicted = real(model, x, y)
        epochs.append(1)
        return (float("inf") if len(epochs) == 3 else loss), acc, predicted

    monkeypatch.setattr(run, "evaluate", nan_after_epoch_3)
    with pytest.raises(UserError, match="epoch 3: the test loss became inf.*holds epoch 2.*another --out"):
        _run(_config(data, batch_size=64), tmp_path / "run")
    assert load_checkpoint(tmp_path / "run").meta["epoch"] == 2


def test_an_epoch_whose_last_step_leaves_non_finite_weights_raises(data):
    model = build_model(TINY_ARCH, image_size=8, rng=0)
    optimizer = SGD(model.parameters(), lr=0.01)
    real_step, steps = optimizer.step, []

    def overflowing_last_step():   # what an overflowing update leaves; every loss was still finite
        real_step()
        steps.append(1)
        if len(steps) == 2:
            model.fc1.weight.data[0, 0] = np.inf

    optimizer.step = overflowing_last_step
    x = np.random.default_rng(0).random((6, 3, 8, 8), dtype=np.float32)
    with pytest.raises(loop.Diverged, match="fc1.weight became non-finite at step 2, the epoch's last"):
        loop.train_epoch(model, optimizer, x, np.arange(6) % 7, batch_size=4)


def test_resuming_reports_the_data_source_the_run_began_with(data, tmp_path):
    first = _run(_config(data, epochs=1), tmp_path / "run")
    again = _run(_config(data, epochs=1), tmp_path / "run", resume=True)   # read via its split files
    assert first["data"]["source"] == again["data"]["source"] == "class folders"
    assert "(class folders, 7 images)" in (tmp_path / "run" / "table1.md").read_text()


def test_ctrl_c_outside_the_epochs_still_says_what_is_saved(data, tmp_path, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    real = run._warm_up
    monkeypatch.setattr(run, "_warm_up", ctrl_c)   # while numba compiles, before epoch 1
    with pytest.raises(Interrupted, match="nothing was saved; run the same command again"):
        _run(_config(data), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(run, "_warm_up", real)
    monkeypatch.setattr(run, "write_plots", ctrl_c)   # after the last epoch was saved
    with pytest.raises(Interrupted, match="holds the last saved epoch; continue with: .*--resume"):
        _run(_config(data, epochs=1), tmp_path / "run")
    assert load_checkpoint(tmp_path / "run").meta["epoch"] == 1
