"""The trace: every layer, the right shapes, and norms equal to those computed directly."""

from collections import OrderedDict

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.models import paper_net
from numpy_cnn.nn.module import Sequential
from numpy_cnn.study.trace import run_trace


def test_paper_net_trace_has_every_layer_and_shape():
    x = np.random.default_rng(0).random((1, 3, 48, 48), dtype=np.float32)
    trace = run_trace(paper_net(rng=0), x, target=2)
    text = str(trace)
    names = [r.name for r in trace.layers]
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                     "fc1", "relu3", "fc2", "relu4", "fc3"]
    for name in names:
        assert f"  {name}" in text
    by = {r.name: r for r in trace.layers}
    assert by["conv1"].cols_shape == (1, 75, 1936) and by["conv2"].cols_shape == (1, 150, 324)
    assert by["pool2"].output_shape == (1, 16, 9, 9) and by["fc3"].output_shape == (1, 7)
    assert by["conv2"].param_grads["conv2.weight"][0] == (16, 6, 5, 5)
    assert by["conv1"].grad_in_shape is None and "needs_input_grad=False" in text
    for s in ("1x75x1936", "1x150x324", "1x16x9x9", "120x1296", "LOSS", "PROBS"):
        assert s in text
    assert trace.probs.shape == (7,) and trace.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_norms_and_loss_equal_a_direct_forward_backward():
    rng = np.random.default_rng(1)
    model = Sequential(OrderedDict([
        ("conv1", Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64)),
        ("relu1", ReLU()), ("pool1", MaxPool2d(2)), ("flatten", Flatten()),
        ("fc1", Linear(3 * 4 * 4, 4, rng=rng, dtype=np.float64)),
    ]))
    x = rng.standard_normal((1, 2, 8, 8))
    trace = run_trace(model, x, target=1)

    loss, dlogits = cross_entropy(model.forward(x), np.array([1]))
    dx = model.backward(dlogits)
    assert trace.loss == pytest.approx(loss, rel=1e-12)
    by = {r.name: r for r in trace.layers}
    for name, p in model.named_parameters():
        layer = name.split(".")[0]
        assert by[layer].param_grads[name][1] == pytest.approx(np.linalg.norm(p.grad), rel=1e-12)
    assert by["conv1"].grad_in_norm == pytest.approx(np.linalg.norm(dx), rel=1e-12)
    assert by["fc1"].grad_out_norm == pytest.approx(np.linalg.norm(dlogits), rel=1e-12)
    assert by["fc1"].grad_in_norm == pytest.approx(np.linalg.norm(dlogits @ model["fc1"].weight.data),
                                                   rel=1e-12)


def test_default_target_is_the_predicted_class():
    x = np.random.default_rng(2).random((1, 3, 32, 32), dtype=np.float32)
    trace = run_trace(paper_net(image_size=32, rng=0), x)
    assert trace.target == int(np.argmax(trace.probs))


def test_bad_inputs_are_one_line_errors():
    model = paper_net(rng=0)
    for x, target in [(np.zeros((2, 3, 48, 48), np.float32), None),
                      (np.zeros((1, 3, 48, 48), np.float32), 9)]:
        with pytest.raises(UserError) as err:
            run_trace(model, x, target)
        assert "\n" not in str(err.value)
