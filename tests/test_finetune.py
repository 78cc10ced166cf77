"""Fine-tuning: --init-from loads a run's weights into a matching network, --freeze keeps layers fixed.

The promises tested: the loaded weights are the source's bit for bit; another
network is refused in one line naming the first layer that differs; frozen
weights stay bit for bit the same through steps with momentum and weight
decay; the gradients nothing needs are not computed (grad stays None, the conv
kernel is not called); a fine-tuned run resumes bit-identically; results.json
says where the weights came from, with the source's test accuracy from its own
results.json when that belongs to the checkpoint (right with --val-frac and
--keep best), else from its history, and says which.
"""

import json
import shutil

import numpy as np
import pytest
from test_cli import _assert_clean_failure, cli, train_args
from train_support import TINY_ARCH, files_snapshot, make_class_folders, no_plots  # noqa: F401 (a fixture)

from numpy_cnn.nn._fast import kernels
from numpy_cnn.nn.arch import build_model
from numpy_cnn.train.checkpoint import load_checkpoint, save_checkpoint
from numpy_cnn.errors import UserError
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.optim import SGD
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.finetune import freeze, init_from, prepare, weights_digest
from numpy_cnn.train.trainer import train

# Two convolutions, so conv1,conv2 can be frozen below trainable fc layers; 16x16 inputs keep it fast.
TWO_CONV = "c4k3-relu-pool2-c6k3-relu-pool2-fc12-relu"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A finished 2-epoch run on one dataset (the 'FER2013' of these tests) and a second dataset."""
    home = tmp_path_factory.mktemp("ft")
    source, target = make_class_folders(home / "pre"), make_class_folders(home / "target", per_class=6, seed=1)
    train(_config(source, epochs=2), home / "source", home=home, cache_dir=None, log=None)
    return {"home": home, "source": home / "source", "target": target}


def _config(data, **kw):
    return TrainConfig(**{"data": str(data), "arch": TINY_ARCH, "epochs": 4, "lr": 0.01, **kw})


def _finetune(pretrained, out, log=None, **kw):
    config = _config(pretrained["target"], init_from=str(pretrained["source"]), **kw)
    return train(config, out, home=out.parent, cache_dir=None, log=log)


def _batch(model_arch=TWO_CONV, seed=0):
    rng = np.random.default_rng(seed)
    model = build_model(model_arch, image_size=16, rng=seed)
    return model, rng.standard_normal((3, 3, 16, 16)).astype(np.float32), np.array([0, 3, 6])


def _backward(model, x, y):
    return model.backward(cross_entropy(model.forward(x), y)[1])


# -- --init-from -----------------------------------------------------------------

def test_init_from_loads_the_source_weights_bit_for_bit_and_says_where_they_came_from(pretrained):
    source = load_checkpoint(pretrained["source"])
    model = build_model(TINY_ARCH, rng=7)
    origin = init_from(model, pretrained["source"])
    for name, value in model.state_dict().items():
        assert value.tobytes() == source.model[name].tobytes(), name
    assert origin["path"] == str((pretrained["source"] / "checkpoint.npz").resolve())
    assert origin["weights_digest"] == weights_digest(source.model) and len(origin["weights_digest"]) == 16
    assert origin["arch"] == TINY_ARCH and origin["epochs"] == 2
    assert origin["test_accuracy"] == source.meta["history"][-1]["test_acc"]
    assert origin["test_accuracy_from"] == "results.json" and origin["selection"] is None
    assert origin["data"]["source"] == "class folders"


def _origin_and_line(path):
    """What a new run starting ``--init-from path`` records, and its log line."""
    lines = []
    origin = prepare(build_model(TINY_ARCH, rng=7), str(path), None, None, lines.append)
    assert len(lines) == 1
    return origin, lines[0]


def test_the_source_test_accuracy_of_a_val_frac_run_comes_from_its_results_json(pretrained, tmp_path):
    # With --val-frac the history holds validation scores; the test set is scored once, on the kept weights.
    config = _config(pretrained["target"], epochs=3, val_frac=0.3, keep="best")
    results = train(config, tmp_path / "val", home=tmp_path, cache_dir=None, log=None)
    assert "test_acc" not in load_checkpoint(tmp_path / "val").meta["history"][-1]
    origin, line = _origin_and_line(tmp_path / "val")
    assert origin["test_accuracy"] == results["overall_test_accuracy"]
    assert origin["test_accuracy_from"] == "results.json" and origin["selection"] == results["selection"]
    kept, best = results["selection"]["kept_epoch"], results["selection"]["best_val_accuracy"]
    assert line.endswith(f"({TINY_ARCH}, 3 epochs, test {100 * results['overall_test_accuracy']:.1f}% from "
                         f"results.json, weights of epoch {kept} (--keep best, best validation {100 * best:.1f}%))")

    # The checkpoint alone: its history has no test accuracy, and the record says so.
    (tmp_path / "alone").mkdir()
    shutil.copy(tmp_path / "val" / "checkpoint.npz", tmp_path / "alone")
    origin, line = _origin_and_line(tmp_path / "alone" / "checkpoint.npz")
    assert (origin["test_accuracy"], origin["test_accuracy_from"], origin["selection"]) == (None, None, None)
    assert line.endswith("3 epochs, test accuracy unknown (no results.json of this checkpoint beside it))")


def test_without_a_results_json_of_the_checkpoint_the_history_stands_in_and_says_so(pretrained, tmp_path):
    history = load_checkpoint(pretrained["source"]).meta["history"]
    shutil.copytree(pretrained["source"], tmp_path / "run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    stale = {**results, "epochs": 1, "overall_test_accuracy": 0.99}   # an earlier session's file
    for written in (None, json.dumps(stale), json.dumps({**results, "config": {**results["config"], "seed": 5}}),
                    "{not json"):
        (tmp_path / "run" / "results.json").unlink(missing_ok=True)
        if written is not None:
            (tmp_path / "run" / "results.json").write_text(written)
        origin, line = _origin_and_line(tmp_path / "run")
        assert origin["test_accuracy"] == history[-1]["test_acc"] and origin["test_accuracy_from"] == "history"
        assert origin["selection"] is None
        last = f"{100 * history[-1]['test_acc']:.1f}%"
        assert line.endswith(f"2 epochs, test {last} at the last epoch, from its history)")


@pytest.mark.parametrize("arch, needle", [
    ("c8k5-relu-pool4-fc16-relu",
     "the network differs from this run's at layer 1: conv1 Conv2d(3, 4, kernel_size=(5, 5)) weight (4, 3, 5, 5), "
     "bias (4,) in the checkpoint, conv1 Conv2d(3, 8, kernel_size=(5, 5)) weight (8, 3, 5, 5), bias (8,) here; "
     f"train with --arch {TINY_ARCH} (the checkpoint's)"),
    ("c4k5-relu-pool4-fc16-relu-fc8-relu",
     "at layer 7: fc2 Linear(in_features=16, out_features=7) weight (7, 16), bias (7,) in the checkpoint, "
     "fc2 Linear(in_features=16, out_features=8) weight (8, 16), bias (8,) here"),
    ("c4k5-pool4-fc16-relu", "at layer 2: relu1 ReLU() in the checkpoint, pool1 MaxPool2d("),
])
def test_another_network_is_refused_in_one_line_naming_the_first_layer_that_differs(pretrained, arch, needle):
    model = build_model(arch, rng=0)
    before = model.state_dict()
    with pytest.raises(UserError) as info:
        init_from(model, pretrained["source"] / "checkpoint.npz")
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert all(before[k].tobytes() == v.tobytes() for k, v in model.state_dict().items())   # untouched


def test_a_model_only_checkpoint_gives_its_weights_and_is_compared_by_weight_shapes(pretrained, tmp_path):
    source = load_checkpoint(pretrained["source"])
    source.meta, source.optim = {}, {}
    save_checkpoint(tmp_path / "m.npz", source)
    model = build_model(TINY_ARCH, rng=7)
    origin = init_from(model, tmp_path / "m.npz")
    assert origin["arch"] is None and origin["test_accuracy"] is None
    assert origin["weights_digest"] == weights_digest(source.model)
    with pytest.raises(UserError, match=r"at layer 2: fc1 weight \(16, 484\), bias \(16,\) in the checkpoint, "
                                        r"fc1 weight \(16, 1936\), bias \(16,\) here"):
        init_from(build_model("c4k5-relu-pool2-fc16-relu", rng=0), tmp_path / "m.npz")


def test_bad_sources_are_one_line_errors(pretrained, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    bad = load_checkpoint(pretrained["source"])
    bad.model["fc1.weight"] = np.full_like(bad.model["fc1.weight"], np.nan)
    save_checkpoint(tmp_path / "nan" / "checkpoint.npz", bad)
    for path, needle in [(tmp_path / "missing", f"--init-from {tmp_path / 'missing'}: no checkpoint there"),
                         (tmp_path / "notes.txt", "not an .npz archive"),
                         (tmp_path / "nan", "fc1.weight holds NaN or infinite weights")]:
        with pytest.raises(UserError, match="^--init-from ") as info:
            init_from(build_model(TINY_ARCH, rng=0), path)
        assert needle in str(info.value)


# -- --freeze ----------------------------------------------------------------------

def test_freeze_names_are_checked_against_the_network_and_stored_in_its_order():
    assert TrainConfig(freeze="conv2, conv1").freeze == "conv1,conv2"
    with pytest.raises(UserError, match="no layer with parameters is called conv3, relu1; "
                                        "name some of conv1,conv2,fc1,fc2,fc3"):
        TrainConfig(freeze="conv3,relu1")
    with pytest.raises(UserError, match="freezes every layer, leaving nothing to train; .* the last, fc2"):
        TrainConfig(arch=TINY_ARCH, freeze="fc2,conv1,fc1")


def test_frozen_bottom_layers_are_not_called_and_the_rest_get_the_same_gradients(monkeypatch):
    model, x, y = _batch()
    reference, _, _ = _batch()
    _backward(reference, x, y)
    freeze(model, ["conv1", "conv2"])
    assert not model.fc1.needs_input_grad   # nothing below fc1 learns

    def not_called(*args, **kwargs):
        raise AssertionError("a layer below the lowest trainable one ran backward")

    for name in ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten"):
        monkeypatch.setattr(model[name], "backward", not_called)
    monkeypatch.setattr(kernels(), "conv2d_backward", not_called)
    assert _backward(model, x, y) is None
    grads = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        if name.startswith("conv"):
            assert p.grad is None and not p.requires_grad, name
        else:
            assert p.grad.tobytes() == grads[name].grad.tobytes(), name


@pytest.mark.parametrize("frozen, method", [("fc1", None), ("conv2", None), ("conv2", "reference")])
def test_a_frozen_middle_layer_gets_no_gradient_and_passes_the_right_one_down(frozen, method):
    model, x, y = _batch()
    reference, _, _ = _batch()
    if method:
        for m in (model, reference):
            m.conv2.method = method
    _backward(reference, x, y)
    freeze(model, [frozen])
    _backward(model, x, y)
    grads = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        if name.startswith(frozen + "."):
            assert p.grad is None, name
        else:
            assert p.grad.tobytes() == grads[name].grad.tobytes(), name


@pytest.mark.parametrize("method", ["numba", "reference"])
def test_sgd_leaves_frozen_parameters_bit_for_bit_with_momentum_and_weight_decay(method):
    model, x, y = _batch()
    freeze(model, ["conv1", "fc1"])
    before = model.state_dict()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1, method=method)
    for _ in range(3):
        _backward(model, x, y)
        model.conv1.weight.grad = np.ones_like(model.conv1.weight.data)   # even a stray gradient is ignored
        optimizer.step()
    for name, value in model.state_dict().items():
        frozen = name.split(".")[0] in ("conv1", "fc1")
        assert (value.tobytes() == before[name].tobytes()) == frozen, name
    frozen_index = [i for i, (n, _) in enumerate(model.named_parameters()) if n.split(".")[0] in ("conv1", "fc1")]
    assert not {f"{i}.momentum_buffer" for i in frozen_index} & optimizer.state_dict().keys()


# -- whole runs ----------------------------------------------------------------------

def test_a_fine_tuned_run_starts_from_the_source_keeps_frozen_weights_and_records_provenance(pretrained, tmp_path):
    lines = []
    results = _finetune(pretrained, tmp_path / "ft", log=lines.append, freeze="conv1", weight_decay=0.05)
    source, tuned = load_checkpoint(pretrained["source"]), load_checkpoint(tmp_path / "ft")
    for name in ("conv1.weight", "conv1.bias"):
        assert tuned.model[name].tobytes() == source.model[name].tobytes(), name
    assert not np.array_equal(tuned.model["fc1.weight"], source.model["fc1.weight"])
    assert sorted(tuned.optim) == [f"{i}.momentum_buffer" for i in range(2, 6)]   # no buffers for conv1
    saved = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert saved["init_from"] == results["init_from"] == tuned.meta["init_from"]
    assert saved["init_from"]["weights_digest"] == weights_digest(source.model)
    assert saved["config"]["init_from"] == str(pretrained["source"]) and saved["config"]["freeze"] == "conv1"
    assert [k for k in tuned.meta["history"][0] if k.startswith("grad_norm.")][0] == "grad_norm.fc1.weight"
    assert lines[0].startswith(f"init: weights of {pretrained['source'] / 'checkpoint.npz'} ({TINY_ARCH}, 2 epochs")
    assert lines[1] == "freeze: conv1 (304 of 8,183 parameters fixed)"
    # The run's own mean, from its own data: that of a fresh run on the same data, not the source's.
    fresh = train(_config(pretrained["target"], epochs=1), tmp_path / "fresh", home=tmp_path, cache_dir=None, log=None)
    assert fresh["init_from"] is None
    assert tuned.mean.tobytes() == load_checkpoint(tmp_path / "fresh").mean.tobytes() != source.mean.tobytes()


def test_a_fine_tuned_run_resumes_bit_identically_without_reading_the_source_again(pretrained, tmp_path):
    _finetune(pretrained, tmp_path / "full", freeze="conv1", epochs=4)
    _finetune(pretrained, tmp_path / "part", freeze="conv1", epochs=2)
    config = load_checkpoint(tmp_path / "part").meta["config"]
    gone = tmp_path / "moved-away"
    config["init_from"] = str(gone)   # the source is not needed any more
    train(TrainConfig.from_json({**config, "epochs": 4}), tmp_path / "part", home=tmp_path, cache_dir=None,
          log=None, resume=True)
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    assert a.model.keys() == b.model.keys() and a.optim.keys() == b.optim.keys()
    for key in a.model:
        assert a.model[key].tobytes() == b.model[key].tobytes(), key
    for key in a.optim:
        assert a.optim[key].tobytes() == b.optim[key].tobytes(), key
    assert a.meta["rng_state"] == b.meta["rng_state"] and a.meta["init_from"] == b.meta["init_from"]


# -- the command line ------------------------------------------------------------------

def test_the_cli_refuses_bad_sources_and_names_in_one_line_writing_nothing(pretrained, tmp_path):
    world = {"run": pretrained["source"], "cache": tmp_path / "cache"}
    target, out = pretrained["target"], tmp_path / "new"
    (tmp_path / "x.png").write_bytes(b"not a checkpoint")
    for extra, needle in [
        (["--init-from", tmp_path / "nowhere"], "--init-from " + str(tmp_path / "nowhere")),
        (["--init-from", tmp_path / "x.png"], "not an .npz archive"),
        (["--init-from", pretrained["source"], "--arch", "c8k5-relu-pool4-fc16-relu"], "at layer 1: conv1"),
        (["--freeze", "conv9"], "name some of conv1,fc1,fc2"),
        (["--freeze", "conv1,fc1,fc2"], "freezes every layer"),
    ]:
        _assert_clean_failure(world, tmp_path, train_args(target, out, world["cache"], *extra), needle)
        assert not out.exists()


def test_the_cli_fine_tunes_warns_when_freezing_random_weights_and_resume_keeps_the_setting(pretrained, tmp_path):
    cache = tmp_path / "cache"
    code, out, err = cli(*train_args(pretrained["target"], tmp_path / "r", cache, "--freeze", "conv1"),
                         home=tmp_path)
    assert code == 0, err
    assert "warning: --freeze without --init-from keeps conv1 at their random initial weights" in out
    code, out, err = cli(*train_args(pretrained["target"], tmp_path / "ft", cache, "--init-from",
                                     pretrained["source"], "--freeze", "conv1"), home=tmp_path)
    assert code == 0 and "warning" not in out, err
    world = {"run": tmp_path / "ft", "cache": cache}
    before = files_snapshot(tmp_path / "ft")
    _assert_clean_failure(world, tmp_path, ["--resume", tmp_path / "ft", "--freeze", "fc1"],
                          "--freeze fc1 (the run used conv1)")
    assert files_snapshot(tmp_path / "ft") == before
    code, out, err = cli("--resume", tmp_path / "ft", "--epochs", 3, "--cache-dir", cache, home=tmp_path)
    assert code == 0 and "epoch 3/3" in out, err
    assert json.loads((tmp_path / "ft" / "results.json").read_text())["init_from"]["arch"] == TINY_ARCH


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_frozen_batchnorm_and_conv_parameters_stay_bit_for_bit_with_every_optimizer(pretrained, tmp_path, optimizer):
    # Random weights frozen (no --init-from): the run's first draw from its seed is the reference.
    arch = "c4k5-bn-relu-pool4-fc16-relu"
    config = _config(pretrained["target"], arch=arch, freeze="bn1,conv1", optimizer=optimizer, epochs=2,
                     weight_decay=0.05)
    train(config, tmp_path / "run", home=tmp_path, cache_dir=None, log=None)
    start = build_model(arch, rng=np.random.default_rng(config.seed)).state_dict()
    tuned = load_checkpoint(tmp_path / "run")
    for name in ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias"):
        assert tuned.model[name].tobytes() == start[name].tobytes(), name
    assert not np.array_equal(tuned.model["fc1.weight"], start["fc1.weight"])
    # PyTorch's semantics: requires_grad does not stop BatchNorm's running statistics in training mode.
    assert not np.array_equal(tuned.model["bn1.running_mean"], start["bn1.running_mean"])
    assert config.freeze == "conv1,bn1"
