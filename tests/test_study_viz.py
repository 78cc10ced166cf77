"""Pictures: valid PNG files, the right array shapes, and saliency's input-gradient switch."""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.models import paper_net
from numpy_cnn.study.viz import (feature_maps, gradient_norms_from_rows, input_gradients_on, load_gradient_norms,
                           plot_feature_maps, plot_filters, plot_gradient_flow, plot_saliency, saliency)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


@pytest.fixture(scope="module")
def model():
    return paper_net(image_size=32, rng=0)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32) - 0.5


def test_feature_maps_after_each_conv_and_pool(model, image):
    maps = feature_maps(model, image)
    assert [(name, m.shape) for name, m in maps] == [
        ("conv1", (6, 28, 28)), ("pool1", (6, 14, 14)), ("conv2", (16, 10, 10)), ("pool2", (16, 5, 5))]


def test_saliency_has_the_image_shape_and_restores_the_flag(model, image):
    assert model["conv1"].needs_input_grad is False
    sal, c = saliency(model, image)
    assert sal.shape == (32, 32) and (sal >= 0).all() and sal.max() > 0
    assert c == int(np.argmax(model.forward(image)[0]))
    assert model["conv1"].needs_input_grad is False


def test_saliency_is_the_input_gradient_of_the_class_score(model, image):
    # The same backward done by hand: one-hot at the logit, every layer computing dx.
    sal, c = saliency(model, image, class_index=2)
    with input_gradients_on(model):
        model.forward(image)
        seed = np.zeros((1, 7), np.float32)
        seed[0, 2] = 1
        dx = model.backward(seed)
    assert np.allclose(sal, np.abs(dx[0]).max(axis=0))
    with pytest.raises(UserError):
        saliency(model, image, class_index=7)


def test_flag_is_restored_even_when_the_pass_fails(model):
    with pytest.raises(UserError):
        with input_gradients_on(model):
            assert model["conv1"].needs_input_grad is True
            model.forward(np.zeros((1, 5, 32, 32), np.float32))
    assert model["conv1"].needs_input_grad is False


def test_every_picture_is_a_png(model, image, tmp_path):
    paths = [
        plot_filters(model["conv1"].weight.data, tmp_path / "conv1.png"),
        plot_filters(model["conv2"].weight.data, tmp_path / "conv2.png"),
        plot_feature_maps(feature_maps(model, image)[2][1], tmp_path / "fm.png"),
        plot_gradient_flow({"conv1.weight": [1.0, 0.5, 0.25], "fc3.bias": [0.1, 0.2, 0.3]}, tmp_path / "g.png"),
        plot_saliency(image[0, 0], saliency(model, image)[0], tmp_path / "sal.png"),
    ]
    for p in paths:
        assert p.is_file() and is_png(p) and p.stat().st_size > 1000


def test_bad_arrays_are_one_line_errors(tmp_path):
    for call in (lambda: plot_filters(np.zeros((3, 5, 5)), tmp_path / "x.png"),
                 lambda: plot_gradient_flow({}, tmp_path / "x.png"),
                 lambda: plot_saliency(np.zeros((4, 4)), np.zeros((5, 5)), tmp_path / "x.png")):
        with pytest.raises(UserError) as err:
            call()
        assert "\n" not in str(err.value)


def test_gradient_norms_from_the_trainers_rows(tmp_path):
    rows = [{"epoch": 1, "train_loss": 2.0, "grad_norm.conv1.weight": 0.5, "grad_norm.fc3.bias": 0.1},
            {"epoch": 2, "train_loss": 1.5, "grad_norm.conv1.weight": 0.4, "grad_norm.fc3.bias": 0.2}]
    assert gradient_norms_from_rows(rows) == {"conv1.weight": [0.5, 0.4], "fc3.bias": [0.1, 0.2]}
    with pytest.raises(UserError, match="metrics.json"):
        load_gradient_norms(tmp_path)
    (tmp_path / "metrics.json").write_text('[{"epoch": 1}]')
    with pytest.raises(UserError, match="no per-epoch gradient norms"):
        load_gradient_norms(tmp_path)
