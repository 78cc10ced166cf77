"""BatchNorm and Dropout: the three BatchNorm paths agree, buffers behave as PyTorch's, modes switch,
Dropout draws from the Generator it is given. (Finite differences: test_gradcheck.py; PyTorch:
test_torch_oracle.py.)"""

import numpy as np
import pytest

from numpy_cnn.nn.arch import build_model
from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import BatchNorm1d, BatchNorm2d, Dropout
from numpy_cnn.nn.module import Sequential

BN_ARCH = "c4k3-bn-relu-pool2-fc10-bn-relu-drop0.5"


def run(layer, x, dy):
    y = layer.forward(x)
    dx = layer.backward(dy)
    return [y, dx, layer.weight.grad, layer.bias.grad, layer.running_mean.data, layer.running_var.data]


@pytest.mark.parametrize("cls,shape", [(BatchNorm2d, (4, 3, 5, 6)), (BatchNorm2d, (1, 2, 3, 3)),
                                       (BatchNorm1d, (5, 7)), (BatchNorm1d, (2, 3))])
@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("training", [True, False])
def test_graph_compact_and_numba_agree(cls, shape, dtype, atol, training, rng):
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    results = {}
    for method in ("reference", "compact", "numba"):
        layer = cls(shape[1], dtype=dtype, method=method).train(training)
        layer.weight.data = np.linspace(0.5, 2.0, shape[1]).astype(dtype)
        layer.bias.data = np.linspace(-1.0, 1.0, shape[1]).astype(dtype)
        layer.running_mean.data += dtype(0.5)
        results[method] = run(layer, x, dy)
    for method in ("compact", "numba"):
        for a, b in zip(results["reference"], results[method]):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_allclose(b, a, rtol=0, atol=atol * max(1.0, np.abs(a).max()), err_msg=method)


def test_training_statistics_and_running_update_follow_pytorch_formulas(rng):
    x = rng.standard_normal((4, 2, 3, 3)) * 2 + 1
    bn = BatchNorm2d(2, dtype=np.float64, momentum=0.25)
    y = bn.forward(x)
    m = 4 * 3 * 3
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))                    # biased
    np.testing.assert_allclose(y, (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.data, 0.25 * mean, atol=1e-15)
    np.testing.assert_allclose(bn.running_var.data, 0.75 + 0.25 * var * m / (m - 1), atol=1e-15)   # unbiased
    assert bn.num_batches_tracked.data == 1 and bn.num_batches_tracked.data.dtype == np.int64


def test_eval_mode_uses_running_statistics_and_changes_nothing(rng):
    bn = BatchNorm1d(3, dtype=np.float64)
    bn.forward(rng.standard_normal((8, 3)) + 4)          # train: moves the running statistics
    state = bn.state_dict()
    bn.eval()
    x = rng.standard_normal((2, 3))
    y = bn.forward(x)
    expected = (x - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-5)
    np.testing.assert_allclose(y, expected, atol=1e-12)
    assert all(np.array_equal(v, bn.state_dict()[k]) for k, v in state.items())


def test_buffers_are_state_but_not_parameters():
    model = build_model(BN_ARCH, image_size=12, rng=0)
    params = [name for name, _ in model.named_parameters()]
    buffers = [name for name, _ in model.named_buffers()]
    assert buffers == [f"bn{i}.{b}" for i in (1, 2) for b in ("running_mean", "running_var", "num_batches_tracked")]
    assert not set(params) & set(buffers)
    # PyTorch's order: each module's parameters, then its buffers.
    keys = list(model.state_dict())
    assert keys[keys.index("bn1.weight"):keys.index("bn1.weight") + 5] == [
        "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]
    model.to(np.float64)
    assert model.bn1.running_var.data.dtype == np.float64 and model.bn1.num_batches_tracked.data.dtype == np.int64


def test_load_state_dict_restores_buffers_and_checks_them():
    a, b = build_model(BN_ARCH, image_size=12, rng=0), build_model(BN_ARCH, image_size=12, rng=1)
    a.forward(np.random.default_rng(0).random((3, 3, 12, 12), dtype=np.float32))
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    state = a.state_dict()
    del state["bn2.running_var"]
    with pytest.raises(UserError, match=r"missing keys \['bn2.running_var'\]"):
        b.load_state_dict(state)


def test_train_and_eval_reach_every_layer():
    model = build_model(BN_ARCH, image_size=12, rng=0)
    assert model.training and all(layer.training for layer in model)
    assert model.eval() is model and not any(layer.training for layer in model)
    model.train()
    assert all(layer.training for layer in model)


def test_one_value_per_channel_cannot_be_trained_on():
    bn = BatchNorm1d(4)
    with pytest.raises(UserError, match="more than one value per channel"):
        bn.forward(np.ones((1, 4), np.float32))
    bn.eval()
    assert bn.forward(np.ones((1, 4), np.float32)).shape == (1, 4)


def test_wrong_channels_and_rank_are_one_line_errors():
    with pytest.raises(UserError, match=r"C = 3, got \(2, 4, 5, 5\)"):
        BatchNorm2d(3).forward(np.ones((2, 4, 5, 5), np.float32))
    with pytest.raises(UserError, match=r"expected input \(N, F\)"):
        BatchNorm1d(3).forward(np.ones((2, 3, 4), np.float32))


def test_dropout_scales_survivors_and_backward_uses_the_same_mask(rng):
    drop = Dropout(0.25, rng=np.random.default_rng(7))
    x = rng.standard_normal((200, 50))
    y = drop.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75)
    assert abs(kept.mean() - 0.75) < 0.01                      # 10,000 draws: sd 0.004
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(drop.backward(dy), np.where(kept, dy / 0.75, 0), rtol=1e-15)


def test_dropout_masks_come_from_the_given_generator_only():
    x = np.ones((4, 30), np.float32)
    a = Dropout(0.5, rng=np.random.default_rng(3)).forward(x)
    b = Dropout(0.5, rng=np.random.default_rng(3)).forward(x)
    c = Dropout(0.5, rng=np.random.default_rng(4)).forward(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    gen = np.random.default_rng(3)
    drop = Dropout(0.5, rng=gen)
    drop.forward(x)
    assert gen.bit_generator.state != np.random.default_rng(3).bit_generator.state   # it drew from gen


def test_dropout_eval_and_p_zero_are_the_identity_and_draw_nothing():
    gen = np.random.default_rng(5)
    before = gen.bit_generator.state
    x = np.arange(6.0).reshape(2, 3)
    for drop in (Dropout(0.5, rng=gen).eval(), Dropout(0.0, rng=gen)):
        assert drop.forward(x) is x
        assert drop.backward(x) is x
    assert gen.bit_generator.state == before


def test_dropout_rejects_a_probability_outside_0_1():
    with pytest.raises(UserError, match=r"p must be a probability in \[0, 1\]"):
        Dropout(1.5)


def test_a_dropout_network_draws_masks_from_the_build_generator():
    # The trainer builds the model with the run's Generator: the masks continue its sequence.
    gen = np.random.default_rng(0)
    model = build_model(BN_ARCH, image_size=12, rng=gen)
    assert model.drop1.rng is gen
    assert isinstance(model, Sequential)
