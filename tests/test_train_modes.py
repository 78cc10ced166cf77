"""Train and eval modes in the trainer, and the optimizers in a run: what a BatchNorm or Dropout
network needs to train, evaluate and resume exactly."""

import numpy as np
import pytest
from train_support import TINY_ARCH, make_class_folders, no_plots, train_quietly as _run  # noqa: F401 (a fixture)

from numpy_cnn.study import trace
from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model
from numpy_cnn.train.checkpoint import load_checkpoint, load_model
from numpy_cnn.errors import UserError
from numpy_cnn.nn.models import paper_net
from numpy_cnn.nn.optim import SGD
from numpy_cnn.train import loop
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.trainer import Interrupted

BN_DROP_ARCH = "c4k5-bn-relu-pool4-fc16-bn-relu-drop0.5"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_class_folders(tmp_path_factory.mktemp("faces"))


def _config(data, **kw):
    return TrainConfig(**{"data": str(data), "arch": BN_DROP_ARCH, "epochs": 4, "lr": 0.01, **kw})


def _state(out):
    ckpt = load_checkpoint(out)
    return {**ckpt.model, **{f"_optim.{k}": v for k, v in ckpt.optim.items()}}, ckpt.meta


def _assert_bit_identical(a, b):
    (sa, ma), (sb, mb) = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and sa[key].tobytes() == sb[key].tobytes(), key
    assert ma["rng_state"] == mb["rng_state"]
    untimed = lambda h: [{k: v for k, v in r.items() if "seconds" not in k} for r in h]   # noqa: E731
    assert untimed(ma["history"]) == untimed(mb["history"])


def test_evaluate_is_deterministic_and_leaves_running_statistics_alone(rng):
    model = build_model(BN_DROP_ARCH, image_size=24, rng=rng)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = rng.standard_normal((12, 3, 24, 24)).astype(np.float32)
    y = rng.integers(0, 7, 12)
    loop.train_epoch(model, opt, x, y, batch_size=4)   # moves weights and running statistics
    assert int(model.bn1.num_batches_tracked.data) == 3
    before = model.state_dict()
    gen_state = model.drop1.rng.bit_generator.state
    first = loop.evaluate(model, x, y)
    second = loop.evaluate(model, x, y)
    assert first[0] == second[0] and first[1] == second[1] and np.array_equal(first[2], second[2])
    after = model.state_dict()
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)
    assert model.drop1.rng.bit_generator.state == gen_state   # no mask drawn
    # One image alone gets the same logits as in a batch (up to the GEMMs' float32 rounding,
    # which depends on the batch): eval mode does not look at the batch.
    np.testing.assert_allclose(loop.predict_logits(model, x[:1]), loop.predict_logits(model, x)[:1], rtol=1e-5)
    # And training mode is restored by the next epoch.
    loop.train_epoch(model, opt, x, y, batch_size=4)
    assert model.training and int(model.bn1.num_batches_tracked.data) == 6


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_a_bn_dropout_run_resumes_bit_identically(data, tmp_path, optimizer):
    _run(_config(data, optimizer=optimizer), tmp_path / "full")
    _run(_config(data, optimizer=optimizer, epochs=2), tmp_path / "part")
    _run(_config(data, optimizer=optimizer), tmp_path / "part", resume=True)
    _assert_bit_identical(tmp_path / "full", tmp_path / "part")
    model, ckpt = load_model(tmp_path / "full")
    assert int(ckpt.model["bn1.num_batches_tracked"]) > 0 and "bn1.num_batches_tracked" not in dict(model.named_parameters())
    if optimizer != "sgd":
        assert {"0.exp_avg", "0.exp_avg_sq", "0.step"} <= set(ckpt.optim)
    # The gradient-flow picture reads these: BatchNorm's parameters have curves, its buffers none.
    assert "grad_norm.bn1.weight" in ckpt.meta["history"][0]
    assert not any("running" in key for key in ckpt.meta["history"][0])


def test_ctrl_c_and_resume_with_dropout_match_an_uninterrupted_run(data, tmp_path):
    _run(_config(data), tmp_path / "full")

    def ctrl_c_after_epoch_1(epoch):
        if epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(Interrupted):
        _run(_config(data), tmp_path / "cut", on_epoch_end=ctrl_c_after_epoch_1)
    _run(_config(data), tmp_path / "cut", resume=True)
    _assert_bit_identical(tmp_path / "full", tmp_path / "cut")


def test_the_seed_fixes_the_dropout_masks(data, tmp_path):
    _run(_config(data, epochs=2), tmp_path / "a")
    _run(_config(data, epochs=2), tmp_path / "b")
    _assert_bit_identical(tmp_path / "a", tmp_path / "b")
    _run(_config(data, epochs=2, seed=3), tmp_path / "c")
    assert not np.array_equal(_state(tmp_path / "a")[0]["fc1.weight"], _state(tmp_path / "c")[0]["fc1.weight"])


def test_the_default_network_draws_nothing_more_from_the_generator():
    a, b = np.random.default_rng(0), np.random.default_rng(0)
    build_model(DEFAULT_ARCH, rng=a)
    paper_net(rng=b)
    assert a.bit_generator.state == b.bit_generator.state
    model = build_model(DEFAULT_ARCH, rng=0)
    assert list(model.named_buffers()) == [] and list(model.state_dict()) == [n for n, _ in model.named_parameters()]


def test_each_optimizer_gets_its_default_lr_and_weight_decay_unless_given():
    assert (TrainConfig().lr, TrainConfig().weight_decay) == (0.001, 0.0)   # the paper's
    assert (TrainConfig(optimizer="adam").lr, TrainConfig(optimizer="adam").weight_decay) == (0.001, 0.0)
    assert TrainConfig(optimizer="adamw").weight_decay == 0.01
    assert TrainConfig(optimizer="adamw", lr=0.01, weight_decay=0.0).to_json()["weight_decay"] == 0.0
    with pytest.raises(UserError, match="--optimizer must be one of sgd, adam, adamw"):
        TrainConfig(optimizer="rmsprop")


def test_an_old_checkpoint_config_without_an_optimizer_is_sgd():
    stored = TrainConfig().to_json()
    del stored["optimizer"]
    assert TrainConfig.from_json(stored).optimizer == "sgd"


def test_tiny_arch_still_trains_with_sgd_by_default(data, tmp_path):
    results = _run(_config(data, arch=TINY_ARCH, epochs=1), tmp_path / "r")
    assert results["config"]["optimizer"] == "sgd" and results["config"]["lr"] == 0.01


def test_trace_reports_batch_statistics_and_the_keep_rate_in_each_mode(rng):
    model = build_model(BN_DROP_ARCH.replace("fc16-bn-relu", "fc16-relu"), image_size=24, rng=rng)
    x = rng.standard_normal((1, 3, 24, 24)).astype(np.float32)
    text = str(trace.run_trace(model.eval(), x))
    assert "eval mode: normalised with running mean [0, 0], running var [1, 1] (0 batches tracked)" in text
    assert "eval mode: identity, nothing dropped (keep rate 1.0)" in text
    text = str(trace.run_trace(model.train(), x))
    assert "train mode: normalised with these batch statistics; running statistics updated" in text
    assert "train mode: mask kept" in text and "(expected 50%), survivors scaled by 1/(1-p) = 2" in text
