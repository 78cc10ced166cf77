"""The summary table against counts written out by hand."""

from collections import OrderedDict

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from numpy_cnn.nn.models import paper_net
from numpy_cnn.nn.module import Sequential
from numpy_cnn.study.summary import FLOP_CONVENTION, summarize


def test_paper_net_parameters_shapes_and_flops_by_hand():
    s = summarize(paper_net(rng=0), (1, 3, 48, 48))
    params = {r.name: r.params for r in s.rows if r.params}
    assert params == {
        "conv1": 6 * 3 * 5 * 5 + 6,          # 456
        "conv2": 16 * 6 * 5 * 5 + 16,        # 2,416
        "fc1": 1296 * 120 + 120,             # 155,640
        "fc2": 120 * 84 + 84,                # 10,164
        "fc3": 84 * 7 + 7,                   # 595
    }
    assert s.params == 169_271
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["conv1"] == (1, 6, 44, 44) and shapes["pool1"] == (1, 6, 22, 22)
    assert shapes["conv2"] == (1, 16, 18, 18) and shapes["pool2"] == (1, 16, 9, 9)
    assert shapes["flatten"] == (1, 1296) and shapes["fc3"] == (1, 7)

    flops = {r.name: r.flops for r in s.rows}
    # Conv: 2 * F * K * P for the GEMM plus F * P bias adds, K = C*5*5, P = H'*W'.
    assert flops["conv1"] == 2 * 6 * 75 * 44 * 44 + 6 * 44 * 44        # 1,754,016
    assert flops["conv2"] == 2 * 16 * 150 * 18 * 18 + 16 * 18 * 18     # 1,560,384
    # ReLU: one comparison per element. Pool 2x2: three comparisons per output.
    assert flops["relu1"] == 6 * 44 * 44 and flops["pool1"] == 3 * 6 * 22 * 22
    assert flops["relu2"] == 16 * 18 * 18 and flops["pool2"] == 3 * 16 * 9 * 9
    assert flops["flatten"] == 0
    assert flops["fc1"] == 2 * 1296 * 120 + 120 and flops["fc2"] == 2 * 120 * 84 + 84
    assert flops["fc3"] == 2 * 84 * 7 + 7
    assert s.flops == sum(flops.values()) == 3_676_591

    cols = {r.name: (r.cols_shape, r.cols_bytes) for r in s.rows if r.cols_shape}
    assert cols == {"conv1": ((1, 75, 1936), 75 * 1936 * 4), "conv2": ((1, 150, 324), 150 * 324 * 4)}


def test_one_epoch_is_about_4_9_gflop_counting_multiply_adds():
    s = summarize(paper_net(rng=0), (540, 3, 48, 48))
    forward_macs = 6 * 75 * 1936 + 16 * 150 * 324 + 1296 * 120 + 120 * 84 + 84 * 7
    # Backward: conv1 only dW (needs_input_grad=False); conv2 and the fc layers dW and dx.
    backward_macs = 6 * 75 * 1936 + 2 * (16 * 150 * 324 + 1296 * 120 + 120 * 84 + 84 * 7)
    assert s.macs == 540 * forward_macs and s.backward_macs == 540 * backward_macs
    assert 2 * (s.macs + s.backward_macs) == pytest.approx(4.94e9, rel=1e-3)


def test_small_non_default_architecture_by_hand():
    rng = np.random.default_rng(0)
    model = Sequential(OrderedDict([
        ("conv1", Conv2d(1, 4, 3, stride=2, padding=1, rng=rng)),   # 16x16 -> 8x8
        ("relu1", ReLU()),
        ("pool1", MaxPool2d(3, stride=1)),                          # overlapping: 8 -> 6
        ("flatten", Flatten()),
        ("fc1", Linear(4 * 6 * 6, 5, rng=rng)),
    ]))
    s = summarize(model, (2, 1, 16, 16))
    conv, relu, pool, _, fc = s.rows
    assert conv.output_shape == (2, 4, 8, 8) and pool.output_shape == (2, 4, 6, 6)
    assert conv.params == 4 * 1 * 3 * 3 + 4 and fc.params == 144 * 5 + 5 and s.params == 765
    assert conv.cols_shape == (2, 9, 64) and conv.cols_bytes == 2 * 9 * 64 * 4
    assert conv.flops == 2 * (2 * 4 * 9 * 64) + 2 * 4 * 64
    assert relu.flops == 2 * 4 * 64
    assert pool.flops == 8 * 2 * 4 * 36          # 3*3 - 1 comparisons per output
    assert fc.flops == 2 * (2 * 144 * 5) + 2 * 5
    # This conv is a first layer that does compute dx: col2im adds N*K*P.
    assert conv.backward_flops == 2 * 2 * (2 * 4 * 9 * 64) + 2 * 4 * 64 + 2 * 9 * 64


def test_text_has_every_layer_totals_and_the_convention():
    text = str(summarize(paper_net(rng=0), (1, 3, 48, 48)))
    for name in ("conv1", "relu1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2", "fc3", "total"):
        assert name in text
    assert "169,271" in text and "(1, 75, 1936)" in text and FLOP_CONVENTION in text


def test_shape_that_does_not_fit_is_a_one_line_error():
    with pytest.raises(UserError) as err:
        summarize(paper_net(rng=0), (1, 3, 12, 12))
    assert "\n" not in str(err.value) and "conv2" in str(err.value)
    with pytest.raises(UserError, match="fc1"):
        summarize(paper_net(rng=0), (1, 3, 64, 64))


def test_conv_after_flatten_is_a_one_line_error():
    rng = np.random.default_rng(0)
    model = Sequential(OrderedDict([("flatten", Flatten()), ("conv1", Conv2d(1, 2, 3, rng=rng))]))
    with pytest.raises(UserError, match="conv1.*before the first fully connected"):
        summarize(model, (1, 1, 8, 8))
