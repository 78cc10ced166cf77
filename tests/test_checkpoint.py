"""Checkpoints: round trip, atomic replacement, pickle refusal, architecture mismatch, PyTorch load."""

from collections import OrderedDict

import numpy as np
import pytest

from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model
from numpy_cnn.train.checkpoint import Checkpoint, load_checkpoint, load_model, require_training_meta, save_checkpoint
from numpy_cnn.errors import UserError
from numpy_cnn.nn.optim import SGD


def _checkpoint(arch=DEFAULT_ARCH, seed=0):
    model = build_model(arch, rng=seed)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    meta = {"arch": arch, "classes": ["a", "b", "c", "d", "e", "f", "g"], "image_size": 48,
            "in_channels": 3, "epoch": 3, "rng_state": np.random.default_rng(1).bit_generator.state}
    return model, Checkpoint(model=model.state_dict(), meta=meta,
                             mean=np.full((48, 48), 0.25, np.float32), optim=opt.state_dict())


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path):
    model, ckpt = _checkpoint()
    save_checkpoint(tmp_path / "c.npz", ckpt)
    back = load_checkpoint(tmp_path / "c.npz")
    assert list(back.model) == list(ckpt.model)
    for key in ckpt.model:
        assert np.array_equal(back.model[key], ckpt.model[key]) and back.model[key].dtype == np.float32
    assert back.optim.keys() == ckpt.optim.keys()
    assert all(np.array_equal(back.optim[k], ckpt.optim[k]) for k in ckpt.optim)
    assert np.array_equal(back.mean, ckpt.mean)
    assert back.meta == ckpt.meta   # including the Generator state's 128-bit integers
    rebuilt, _ = load_model(tmp_path / "c.npz")
    x = np.random.default_rng(0).random((2, 3, 48, 48), dtype=np.float32)
    assert np.array_equal(rebuilt.forward(x), model.forward(x))


def test_plain_numpy_loads_it_without_pickle_and_model_keys_are_unprefixed(tmp_path):
    _, ckpt = _checkpoint()
    save_checkpoint(tmp_path / "c.npz", ckpt)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        model_keys = [k for k in f.files if not k.startswith("_")]
        assert f["_meta"].dtype.kind == "U" and f["_meta"].shape == ()
    assert model_keys == list(ckpt.model)


def test_a_failed_write_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    _, ckpt = _checkpoint()
    path = tmp_path / "c.npz"
    save_checkpoint(path, ckpt)
    before = path.read_bytes()

    def explode(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, ckpt)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_an_npz_that_needs_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"conv1.weight": np.array([{"x": 1}], dtype=object), "_meta": np.array("{}")})
    with pytest.raises(UserError, match="pickle"):
        load_checkpoint(path)


@pytest.mark.parametrize("content, needle", [(b"not a zip at all", "not a readable checkpoint"),
                                             (None, "no checkpoint")])
def test_garbage_or_missing_files_are_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "c.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=needle):
        load_checkpoint(path)


def test_an_npz_without_metadata_is_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "w.npz", w=np.zeros(3))
    with pytest.raises(UserError, match="not a numpy_cnn checkpoint"):
        load_checkpoint(tmp_path / "w.npz")


def test_weights_of_another_architecture_are_refused(tmp_path):
    _, ckpt = _checkpoint("c8k5-relu-pool2-fc32-relu")
    ckpt.meta["arch"] = DEFAULT_ARCH   # the spec no longer matches the weights
    save_checkpoint(tmp_path / "c.npz", ckpt)
    with pytest.raises(UserError, match="another architecture"):
        load_model(tmp_path / "c.npz")


def test_pytorch_loads_the_model_entries_into_a_same_named_sequential(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model, ckpt = _checkpoint()
    save_checkpoint(tmp_path / "c.npz", ckpt)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 6, 5)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(1296, 120)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(120, 84)), ("relu4", nn.ReLU()), ("fc3", nn.Linear(84, 7)),
    ]))
    # The README's recipe: every entry not starting with "_" is the model.
    f = np.load(tmp_path / "c.npz")
    net.load_state_dict({k: torch.from_numpy(f[k]) for k in f.files if not k.startswith("_")})
    x = np.random.default_rng(0).random((2, 3, 48, 48), dtype=np.float32)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, model.forward(x), rtol=1e-4, atol=1e-5)


def test_a_model_only_checkpoint_is_refused_where_training_state_is_needed(tmp_path):
    _, ckpt = _checkpoint()   # arch, classes, sizes, epoch and rng_state, but no config, history or data
    with pytest.raises(UserError, match=r"holds no training state \(config, history, data\), so it cannot "
                                        "be resumed"):
        require_training_meta(ckpt, tmp_path / "c.npz", "be resumed")
