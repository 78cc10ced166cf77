"""Every gradient proven: each layer, the loss and the whole network against finite differences.

Everything runs in float64 (float32 cannot see a wrong gradient below ~1e-3).
The tolerance and the error formula are explained in numpy_cnn.nn.gradcheck.
"""

import numpy as np
import pytest

from numpy_cnn.nn import gradcheck
from numpy_cnn.nn.gradcheck import TOLERANCE, check_layer, numerical_gradient, rel_error
from numpy_cnn.nn.arch import build_model
from numpy_cnn.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.models import paper_net

# (N, C_in, H, W, C_out, kernel, stride, padding)
CONV_SHAPES = [
    (1, 1, 5, 5, 1, 3, 1, 0),          # batch 1, single channel
    (2, 3, 7, 6, 4, (3, 2), 1, 1),     # non-square input and kernel, padding 1
    (3, 2, 8, 9, 3, 3, 2, 1),          # stride 2 with padding
    (2, 2, 6, 5, 2, (2, 3), 2, 2),     # padding 2, odd sizes
    (1, 3, 9, 7, 2, 5, 1, 2),          # the paper's 5x5 kernel, padded
    (2, 3, 7, 7, 2, 3, 3, 0),          # stride that does not divide: floors
]


def away_from_ties(rng, shape, gap=1e-2):
    """Distinct values at least `gap` apart: a max-pool tie (or near-tie within eps)
    would make the finite difference straddle a switch of the argmax."""
    values = rng.permutation(int(np.prod(shape))) * gap
    return (values - values.mean()).reshape(shape).astype(np.float64)


def away_from_kinks(rng, shape, margin=0.1):
    """|x| >= margin: near 0 the finite difference would straddle ReLU's kink."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, 1.0, size=shape)


def assert_all_small(errors):
    assert errors, "no gradient was checked"
    worst = max(errors.values())
    assert worst <= TOLERANCE, errors


@pytest.mark.parametrize("method", ["reference", "im2col", "direct"])
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv2d(shape, method, rng):
    n, c, h, w, f, k, s, p = shape
    layer = Conv2d(c, f, k, stride=s, padding=p, rng=rng, dtype=np.float64, method=method)
    errors = check_layer(layer, rng.standard_normal((n, c, h, w)), rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert_all_small(errors)


def test_conv2d_without_input_grad_still_gets_parameter_grads(rng):
    layer = Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64, needs_input_grad=False)
    errors = check_layer(layer, rng.standard_normal((2, 3, 6, 6)), rng)
    assert set(errors) == {"weight", "bias"}
    assert_all_small(errors)


@pytest.mark.parametrize("shape,kernel,stride", [
    ((1, 1, 4, 4), 2, None),          # batch 1
    ((2, 3, 5, 7), 2, None),          # odd sizes: the last row/column is dropped
    ((2, 2, 6, 6), 3, 2),             # overlapping windows: gradients add up
    ((1, 2, 7, 5), (2, 3), (1, 2)),   # non-square window and stride
    ((2, 1, 9, 9), 3, 3),
])
@pytest.mark.parametrize("method", ["reference", "numba"])
def test_maxpool2d(shape, kernel, stride, method, rng):
    layer = MaxPool2d(kernel, stride, method=method)
    errors = check_layer(layer, away_from_ties(rng, shape), rng)
    assert set(errors) == {"input"}
    assert_all_small(errors)


@pytest.mark.parametrize("shape", [(1, 5), (3, 2, 5, 4)])
def test_relu(shape, rng):
    assert_all_small(check_layer(ReLU(), away_from_kinks(rng, shape), rng))


@pytest.mark.parametrize("n,d_in,d_out", [(1, 1, 1), (4, 7, 3), (5, 1296, 12)])
def test_linear(n, d_in, d_out, rng):
    layer = Linear(d_in, d_out, rng=rng, dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((n, d_in)), rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert_all_small(errors)


def test_flatten(rng):
    assert_all_small(check_layer(Flatten(), rng.standard_normal((2, 3, 4, 5)), rng))


@pytest.mark.parametrize("n,k", [(1, 2), (4, 7), (9, 3)])
def test_cross_entropy(n, k, rng):
    logits = rng.standard_normal((n, k)) * 3
    target = rng.integers(0, k, size=n)
    _, grad = cross_entropy(logits, target)
    numeric = numerical_gradient(lambda: cross_entropy(logits, target)[0], logits)
    assert rel_error(grad, numeric) <= TOLERANCE


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    loss, grad = cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(np.log(3) / 2)   # first row contributes exactly 0
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)   # softmax rows minus one-hot


def margins(model, x):
    """The smallest |pre-activation| of every ReLU, and the smallest gap between a
    pool window's top two positive values: both must dwarf eps for the check to be valid."""
    relu_margin, pool_gap = np.inf, np.inf
    for layer in model:
        if isinstance(layer, ReLU):
            relu_margin = min(relu_margin, np.abs(x).min())
        if isinstance(layer, MaxPool2d):
            n, c, h, w = x.shape
            windows = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
            top = np.sort(windows.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4), axis=-1)
            live = top[..., -1] > 0
            pool_gap = min(pool_gap, (top[..., -1] - top[..., -2])[live].min())
        x = layer.forward(x)
    return relu_margin, pool_gap


@pytest.mark.parametrize("conv_method,pool_method", [("reference", "reference"), ("im2col", "numba"),
                                                     ("direct", "numba")])
def test_whole_network(conv_method, pool_method):
    # Seed 16 keeps every ReLU input >= 2.5e-4 from 0 and every pool window's top two
    # values >= 3e-4 apart, while eps moves a pre-activation by < 1e-5: no kink is crossed.
    rng = np.random.default_rng(16)
    model = paper_net(image_size=24, rng=rng, dtype=np.float64, conv_method=conv_method,
                      pool_method=pool_method)
    x = rng.standard_normal((3, 3, 24, 24))
    target = np.array([0, 3, 6])
    relu_margin, pool_gap = margins(model, x)
    assert relu_margin > 1e-4 and pool_gap > 1e-4, "pick another seed: input too close to a kink or tie"
    errors = gradcheck.check_model(model, x, target, rng, samples=12)
    assert set(errors) == {f"{layer}.{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
                           for p in ("weight", "bias")}
    assert_all_small(errors)


def test_gradcheck_catches_a_wrong_gradient(rng):
    # The check must be able to fail: a Linear whose backward forgets the transpose.
    class Broken(Linear):
        def backward(self, grad_out):
            super().backward(grad_out)
            self.weight.grad = self.weight.grad * 1.01
            return grad_out @ self.weight.data
    errors = check_layer(Broken(4, 4, rng=rng, dtype=np.float64), rng.standard_normal((3, 4)), rng)
    assert errors["weight"] > 1e-3 and errors["input"] <= TOLERANCE


@pytest.mark.parametrize("method", ["reference", "compact", "numba"])
@pytest.mark.parametrize("training", [True, False])
# Not a batch of 2 for 1d: x_hat is then +-1 whatever x, dx is ~eps/var and all rounding.
@pytest.mark.parametrize("cls,shape", [("2d", (3, 4, 5, 6)), ("2d", (1, 2, 3, 3)), ("1d", (5, 7)), ("1d", (3, 4))])
def test_batchnorm(cls, shape, training, method, rng):
    layer = (BatchNorm2d if cls == "2d" else BatchNorm1d)(shape[1], dtype=np.float64, method=method)
    layer.weight.data = rng.uniform(0.5, 2.0, shape[1])     # away from the init's 1 and 0: every term shows
    layer.bias.data = rng.standard_normal(shape[1])
    layer.running_mean.data = rng.standard_normal(shape[1])
    layer.running_var.data = rng.uniform(0.5, 2.0, shape[1])
    errors = check_layer(layer.train(training), rng.standard_normal(shape) * 2 + 1, rng)
    assert set(errors) == {"input", "weight", "bias"}
    assert_all_small(errors)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5])
def test_dropout_with_the_mask_held_fixed(p, rng):
    layer = Dropout(p, rng=np.random.default_rng(2))
    errors = check_layer(layer, rng.standard_normal((4, 6, 3)), rng)
    assert set(errors) == {"input"}
    assert_all_small(errors)


def test_whole_network_with_batchnorm_and_dropout():
    # Seed 27 keeps every ReLU input and pool window top-two gap > 1e-3 from eps (asserted).
    rng = np.random.default_rng(27)
    model = build_model("c4k3-bn-relu-pool2-c6k3-bn-relu-pool2-fc12-bn-relu-drop0.5-fc10-relu",
                        image_size=14, rng=rng, dtype=np.float64)
    x = rng.standard_normal((4, 3, 14, 14))
    relu_margin, pool_gap = margins(model, x)
    assert relu_margin > 1e-4 and pool_gap > 1e-4, "pick another seed: input too close to a kink or tie"
    errors = gradcheck.check_model(model, x, np.array([0, 3, 6, 1]), rng, samples=12)
    # A bias right before a training-mode BatchNorm is subtracted again with the mean: its true
    # gradient is 0, so both estimates are rounding noise and their relative error means nothing.
    before_bn = ("conv1.bias", "conv2.bias", "fc1.bias")
    for name in before_bn:
        assert np.abs(dict(model.named_parameters())[name].grad).max() < 1e-12
    assert_all_small({k: v for k, v in errors.items() if k not in before_bn})
    assert {"bn1.weight", "bn2.bias", "bn3.weight", "fc2.weight"} <= set(errors)
