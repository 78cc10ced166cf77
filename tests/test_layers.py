"""Layer contracts: shapes, dtypes, the parameter protocol, init, and one-line errors on bad input."""

from collections import OrderedDict

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.models import paper_net
from numpy_cnn.nn.module import Sequential
from numpy_cnn.nn.naive import conv2d_naive, maxpool2d_naive


def test_paper_net_shapes_names_and_parameter_count():
    model = paper_net(rng=0)
    shapes = OrderedDict((k, v.shape) for k, v in model.state_dict().items())
    assert shapes == OrderedDict([
        ("conv1.weight", (6, 3, 5, 5)), ("conv1.bias", (6,)),
        ("conv2.weight", (16, 6, 5, 5)), ("conv2.bias", (16,)),
        ("fc1.weight", (120, 1296)), ("fc1.bias", (120,)),
        ("fc2.weight", (84, 120)), ("fc2.bias", (84,)),
        ("fc3.weight", (7, 84)), ("fc3.bias", (7,)),
    ])
    assert sum(p.data.size for p in model.parameters()) == 169_271
    y = model.forward(np.zeros((2, 3, 48, 48), np.float32))
    assert y.shape == (2, 7) and y.dtype == np.float32


def test_paper_net_parameters_follow_the_arguments():
    model = paper_net(in_channels=1, image_size=32, num_classes=5, rng=0)
    assert model["conv1"].weight.shape == (6, 1, 5, 5)
    assert model["fc1"].weight.shape == (120, 16 * 5 * 5)
    assert model["fc3"].weight.shape == (5, 84)


def test_same_seed_same_weights_and_pytorch_default_init_bounds():
    a, b = paper_net(rng=3).state_dict(), paper_net(rng=3).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc1.weight"], paper_net(rng=4).state_dict()["fc1.weight"])
    for key, fan_in in [("conv1.weight", 75), ("conv2.bias", 150), ("fc1.weight", 1296), ("fc3.bias", 84)]:
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(a[key]).max() <= bound
        assert np.abs(a[key]).max() > 0.8 * bound    # uses the whole range


def test_forward_matches_the_loop_definitions(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    conv = Conv2d(3, 4, (3, 2), stride=2, padding=1, rng=rng, dtype=np.float64)
    np.testing.assert_allclose(conv.forward(x), conv2d_naive(x, conv.weight.data, conv.bias.data, 2, 1),
                               atol=1e-12)
    pool = MaxPool2d(3, 2)
    np.testing.assert_array_equal(pool.forward(x), maxpool2d_naive(x, (3, 3), (2, 2)))
    assert pool.forward(x).shape == (2, 3, 4, 3)   # floors: (9-3)//2+1, (8-3)//2+1


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("n,c,h,w,f,k,s,p", [
    (1, 3, 48, 48, 6, 5, 1, 0), (4, 6, 22, 22, 16, 5, 1, 0), (2, 3, 9, 8, 5, (3, 2), 1, 2),
    (3, 2, 9, 8, 3, 3, 2, 1), (1, 1, 5, 7, 1, 1, 1, 0),
])
def test_conv_methods_agree(n, c, h, w, f, k, s, p, dtype, tol, rng):
    """The readable reference and the fast paths: same output, same gradients."""
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    layers = {m: Conv2d(c, f, k, stride=s, padding=p, rng=0, dtype=dtype, method=m)
              for m in ("reference", "im2col", "direct")}
    g = rng.standard_normal(layers["reference"].forward(x).shape).astype(dtype)
    ref_y, ref_dx = layers["reference"].forward(x), layers["reference"].backward(g)
    for m in ("im2col", "direct"):
        layer = layers[m]
        np.testing.assert_allclose(layer.forward(x), ref_y, rtol=tol, atol=tol, err_msg=m)
        np.testing.assert_allclose(layer.backward(g), ref_dx, rtol=tol, atol=tol, err_msg=m)
        for name in ("weight", "bias"):
            np.testing.assert_allclose(getattr(layer, name).grad, getattr(layers["reference"], name).grad,
                                       rtol=tol, atol=tol * 10, err_msg=f"{m} {name}")


@pytest.mark.parametrize("shape,kernel,stride", [
    ((4, 6, 44, 44), 2, None), ((1, 3, 7, 5), 2, None), ((2, 2, 7, 6), 3, 2), ((2, 2, 7, 9), (2, 3), (1, 2)),
])
def test_pool_methods_agree(shape, kernel, stride, rng):
    x = rng.integers(0, 5, size=shape).astype(np.float32)   # small integers: many ties
    ref, fast = MaxPool2d(kernel, stride, method="reference"), MaxPool2d(kernel, stride, method="numba")
    np.testing.assert_array_equal(fast.forward(x), ref.forward(x))
    g = rng.standard_normal(ref.forward(x).shape).astype(np.float32)
    np.testing.assert_allclose(fast.backward(g), ref.backward(g), rtol=1e-6, atol=1e-6)


def test_default_methods_are_the_fast_ones():
    assert Conv2d(3, 6, 5).method == "direct" and Conv2d(3, 6, 5, stride=2).method == "im2col"
    assert MaxPool2d(2).method == "numba"


def test_state_dict_round_trip_and_mismatch():
    a, b = paper_net(rng=1), paper_net(rng=2)
    b.load_state_dict(a.state_dict())
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    other = paper_net(num_classes=5, rng=0)
    before = other.state_dict()
    with pytest.raises(UserError, match="fc3.weight.*another architecture"):
        other.load_state_dict(a.state_dict())
    assert all(np.array_equal(v, other.state_dict()[k]) for k, v in before.items())   # untouched
    with pytest.raises(UserError, match="missing keys"):
        a.load_state_dict({"conv1.weight": np.zeros((6, 3, 5, 5))})


def test_backward_overwrites_gradients():
    layer = Linear(3, 2, rng=0, dtype=np.float64)
    x, g = np.ones((1, 3)), np.ones((1, 2))
    layer.forward(x)
    layer.backward(g)
    first = layer.weight.grad.copy()
    layer.forward(x)
    layer.backward(g)
    np.testing.assert_array_equal(layer.weight.grad, first)


def test_to_float64_and_sequential_indexing():
    model = paper_net(rng=0).to(np.float64)
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    assert model[0] is model["conv1"] and len(model) == 12
    assert [type(m).__name__ for m in Sequential(ReLU(), Flatten())] == ["ReLU", "Flatten"]


@pytest.mark.parametrize("layer,x,message", [
    (Conv2d(3, 6, 5), np.zeros((3, 48, 48), np.float32), r"Conv2d\(3, 6.*expected input \(N, 3, H, W\) float32, got \(3, 48, 48\)"),
    (Conv2d(3, 6, 5), np.zeros((2, 1, 48, 48), np.float32), r"expected input \(N, 3, H, W\), got \(2, 1, 48, 48\)"),
    (Conv2d(3, 6, 5), np.zeros((2, 3, 48, 48), np.float64), r"float32, got \(2, 3, 48, 48\) float64"),
    (Conv2d(3, 6, 5), np.zeros((2, 3, 4, 48), np.float32), r"smaller than the 5x5 kernel"),
    (MaxPool2d(2), np.zeros((2, 3, 1, 4), np.float32), r"smaller than the 2x2 window"),
    (MaxPool2d(2), np.zeros((2, 3, 4, 4), np.int64), r"MaxPool2d.*float32 or float64, got \(2, 3, 4, 4\) int64"),
    (Linear(10, 2), np.zeros((2, 3), np.float32), r"Linear\(in_features=10.*expected input \(N, 10\), got \(2, 3\)"),
    (Linear(10, 2), np.zeros((10,), np.float32), r"expected input \(N, 10\) float32, got \(10,\)"),
    (ReLU(), [1.0, 2.0], r"ReLU.*expected a numpy array"),
    (Flatten(), np.zeros(3, np.float32), r"Flatten.*batch axis"),
])
def test_bad_input_is_a_one_line_error_naming_the_layer(layer, x, message):
    with pytest.raises(UserError, match=message) as err:
        layer.forward(x)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("layer,x", [
    (Conv2d(3, 6, 5), np.zeros((2, 3, 9, 9), np.float32)),
    (Conv2d(3, 6, 5, method="reference"), np.zeros((2, 3, 9, 9), np.float32)),
    (MaxPool2d(2), np.zeros((2, 3, 4, 4), np.float32)),
    (ReLU(), np.zeros((2, 3), np.float32)),
    (Linear(3, 4), np.zeros((2, 3), np.float32)),
    (Flatten(), np.zeros((2, 3, 4), np.float32)),
])
def test_backward_rejects_a_gradient_of_the_wrong_shape(layer, x):
    # The numba kernels skip bounds checks, so a wrong shape must be stopped before them.
    with pytest.raises(UserError, match="backward called before forward"):
        layer.backward(np.zeros(1, np.float32))
    y = layer.forward(x)
    with pytest.raises(UserError, match=r"backward expected grad_out \(2, .*the shape forward returned\), got \(1, "):
        layer.backward(np.zeros((1,) + y.shape[1:], np.float32))
    assert layer.backward(np.ones_like(y)) is not None or isinstance(layer, Conv2d)


def test_errors_name_the_layer_inside_a_model():
    with pytest.raises(UserError, match=r"^conv2 = Conv2d\(6, 16"):
        paper_net(rng=0).forward(np.zeros((1, 3, 12, 12), np.float32))


@pytest.mark.parametrize("make", [
    lambda: Conv2d(3, 0, 5), lambda: Conv2d(3, 6, (5,)), lambda: Conv2d(3, 6, 5, padding=-1),
    lambda: Conv2d(3, 6, 5, method="fft"), lambda: MaxPool2d(0), lambda: MaxPool2d(2, method="x"),
    lambda: Linear(0, 3),
    lambda: paper_net(image_size=12),
])
def test_bad_constructor_arguments(make):
    with pytest.raises(UserError):
        make()
