"""The architecture spec: parsing, naming, shapes, and one-line errors."""

import numpy as np
import pytest

from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model, trainable_layer_names
from numpy_cnn.errors import UserError
from numpy_cnn.nn.models import paper_net


def test_default_spec_is_the_paper_net_with_the_same_names_and_weights():
    ours = build_model(DEFAULT_ARCH, rng=np.random.default_rng(7))
    paper = paper_net(rng=np.random.default_rng(7))
    assert [n for n, _ in ours.named_children()] == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "relu4", "fc3"]
    a, b = ours.state_dict(), paper.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == np.float32 and np.array_equal(a[key], b[key]), key


def test_first_conv_skips_its_input_gradient_and_later_ones_do_not():
    model = build_model("c3k3-relu-c4k3-relu", image_size=12)
    assert model.conv1.needs_input_grad is False
    assert model.conv2.needs_input_grad is True


def test_stride_padding_pool_stride_and_output_shape():
    model = build_model("c8k3s2p1-relu-pool3s2-fc10", image_size=48, num_classes=5, rng=0)
    # conv: (48 + 2 - 3) // 2 + 1 = 24; pool 3 stride 2: (24 - 3) // 2 + 1 = 11
    assert model.conv1.stride == 2 and model.conv1.padding == 1
    assert model.pool1.stride == (2, 2)
    assert model.fc1.in_features == 8 * 11 * 11
    x = np.zeros((2, 3, 48, 48), np.float32)
    assert model.forward(x).shape == (2, 5)


def test_spec_without_fc_gets_flatten_and_classifier():
    model = build_model("c2k5", image_size=16, num_classes=7)
    assert [n for n, _ in model.named_children()] == ["conv1", "flatten", "fc1"]
    assert model.fc1.in_features == 2 * 12 * 12 and model.fc1.out_features == 7


@pytest.mark.parametrize("spec, needle", [
    ("", "empty"),
    ("c6k5-relu-bogus", "'bogus'"),
    ("c6k5--relu", "''"),
    ("c6k49", "'c6k49'"),
    ("c6k5-pool2-pool2-pool2-pool2-pool2-pool2", "token 7 'pool2'"),
    ("fc10-c3k3", "'c3k3'"),
    ("c0k3", "'c0k3'"),
    ("pool2s0", "'pool2s0'"),
    ("fc100000000", "parameters"),   # refused before 500 GB of weights are drawn
])
def test_impossible_specs_are_one_line_errors_naming_the_token(spec, needle):
    with pytest.raises(UserError) as info:
        build_model(spec)
    message = str(info.value)
    assert needle in message and "\n" not in message


@pytest.mark.parametrize("spec", [DEFAULT_ARCH, "c6k5-bn-relu-pool2-c16k5-bn-relu-pool2-fc120-bn-relu-drop0.5-fc84-relu",
                                  "c2k5", "fc10-drop0.2-relu"])
def test_trainable_layer_names_are_the_built_layers_with_parameters_without_building(spec):
    built = build_model(spec, rng=0)
    assert trainable_layer_names(spec) == [n for n, layer in built.named_children() if layer.parameters()]


def test_trainable_layer_names_of_a_bad_spec_is_the_arch_error():
    with pytest.raises(UserError, match="'pool64'"):
        trainable_layer_names("c6k5-pool64")
