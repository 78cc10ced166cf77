"""The network-wide gradient check (numpy_cnn.nn.gradcheck.check_network) and its report.

The check itself is explained in numpy_cnn.nn.gradcheck; these tests prove that it passes
correct networks, fails a wrong backward and names the layer, and leaves the model alone.
"""

import types

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model
from numpy_cnn.nn.gradcheck import (GradRow, TOLERANCE, ZERO_GRADIENT, _forward_with_kinks,
                                    _sampled_differences, check_network, format_report)
from numpy_cnn.nn.layers import ReLU

PAPER_PARAMS = [f"{layer}.{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")]


def failures(rows):
    return {(r.layer, r.what) for r in rows if not r.passed}


def test_the_papers_net_passes_every_row_and_is_left_alone():
    model = build_model(DEFAULT_ARCH, image_size=48, rng=np.random.default_rng(0))
    before = model.state_dict()
    rows = check_network(model, (3, 48, 48), np.random.default_rng(0))
    assert failures(rows) == set(), format_report(rows)
    checked = {(r.layer, r.what) for r in rows}
    # The first conv skips its input gradient (its input is data): no row for it.
    assert ("conv1", "input") not in checked and ("conv2", "input") in checked
    assert {("relu1", "input"), ("pool1", "input"), ("flatten", "input"), ("fc3", "bias")} <= checked
    assert {f"{r.layer}.{r.what.split()[0]}" for r in rows if r.what.endswith("(whole network)")} == set(PAPER_PARAMS)
    assert all(r.entries > 0 and r.rel_error <= TOLERANCE for r in rows)
    assert max(r.entries for r in rows) == 40                  # sampled, not every entry
    # A float64 copy was checked: the caller's float32 weights are untouched.
    after = model.state_dict()
    assert all(after[k].dtype == np.float32 and np.array_equal(after[k], before[k]) for k in before)


def test_a_wrong_backward_fails_and_is_named():
    model = build_model(DEFAULT_ARCH, image_size=24, rng=np.random.default_rng(1))
    conv2 = model.conv2

    def backward_off_by_one_percent(self, grad_out):
        return 1.01 * type(self).backward(self, grad_out)

    # Bound to this one layer; the check's deep copy rebinds it to the copy's conv2.
    conv2.backward = types.MethodType(backward_off_by_one_percent, conv2)
    rows = check_network(model, (3, 24, 24), np.random.default_rng(1), samples=12)
    # conv2 alone: its dx is off. Whole network: conv1 learns through that dx, so its gradients are off too.
    assert failures(rows) == {("conv2", "input"), ("conv1", "weight (whole network)"),
                              ("conv1", "bias (whole network)")}
    bad = next(r for r in rows if (r.layer, r.what) == ("conv2", "input"))
    assert 1e-3 < bad.rel_error < 1e-2          # 1% off: ||0.01 g|| / ||2.01 g||
    report = format_report(rows)
    assert any(line.startswith("conv2") and "input" in line and "FAIL" in line for line in report.splitlines())
    assert report.splitlines()[-1] == f"3 of {len(rows)} FAILED"


def test_one_layer_and_an_unknown_name():
    model = build_model(DEFAULT_ARCH, image_size=24, rng=np.random.default_rng(2))
    rows = check_network(model, (3, 24, 24), np.random.default_rng(2), layer="conv2", samples=8)
    assert {r.layer for r in rows} == {"conv2"}
    assert [r.what for r in rows] == ["input", "weight", "bias", "weight (whole network)", "bias (whole network)"]
    assert all(r.passed for r in rows)
    with pytest.raises(UserError, match=r"no layer 'conv9'.*conv1, relu1, pool1, conv2"):
        check_network(model, (3, 24, 24), np.random.default_rng(2), layer="conv9")


def test_batchnorm_and_dropout_pass():
    model = build_model("c8k3p1-bn-relu-pool2-fc16-relu-drop0.5", image_size=16, rng=np.random.default_rng(3))
    dropout_rng = model.drop1.rng
    state = dropout_rng.bit_generator.state
    rows = check_network(model, (3, 16, 16), np.random.default_rng(3), samples=20)
    assert failures(rows) == set(), format_report(rows)
    checked = {(r.layer, r.what) for r in rows}
    assert {("bn1", "input"), ("bn1", "weight"), ("drop1", "input"), ("bn1", "bias (whole network)")} <= checked
    # conv1's bias is taken away again by bn1's batch mean: its true gradient is 0, judged as such.
    zero = next(r for r in rows if (r.layer, r.what) == ("conv1", "bias (whole network)"))
    assert np.isnan(zero.rel_error) and zero.tolerance == ZERO_GRADIENT and "bn1 subtracts it" in zero.note
    assert dropout_rng.bit_generator.state == state        # the copy drew its own masks
    assert model.training and model.conv1.weight.data.dtype == np.float32


def test_entries_at_a_kink_are_skipped(rng):
    # Half of the ReLU's inputs are exactly 0: a step of +-eps there crosses the kink.
    x = rng.standard_normal(40)
    x[::2] = 0.0
    relu = ReLU(method="reference")

    def loss():
        y, kinks = _forward_with_kinks([relu], x)
        return float(y.sum()), kinks

    _, base = loss()
    idx, numeric, skipped = _sampled_differences(loss, x, base, rng, samples=40, eps=1e-6)
    assert skipped == 20 and len(idx) == 20 and np.all(idx % 2 == 1)
    np.testing.assert_allclose(numeric, (x[idx] > 0).astype(float), atol=1e-9)


def test_report_columns_and_totals():
    rows = [GradRow("conv1", "weight", 3.2e-10, 1e-6, True, 40, 0.5),
            GradRow("pool1", "input", 1.1e-9, 1e-6, True, 40, 0.25, "3 entries skipped at a kink or tie"),
            GradRow("conv1", "bias (whole network)", float("nan"), ZERO_GRADIENT, True, 6, 0.25, "true gradient 0")]
    lines = format_report(rows).splitlines()
    assert lines[0].split() == ["layer", "gradient", "entries", "rel.", "error", "tolerance", "result"]
    assert lines[1].split() == ["conv1", "weight", "40", "3.2e-10", "1e-06", "PASS"]
    assert lines[2].endswith("PASS  3 entries skipped at a kink or tie")
    assert lines[3].split()[:7] == ["conv1", "bias", "(whole", "network)", "6", "-", "1e-08"]
    assert len({len(line) for line in lines[:2]}) == 1                 # fixed width
    assert lines[-1] == "all 3 checks passed in 1.0 s"
    failed = format_report(rows + [GradRow("fc1", "input", 0.3, 1e-6, False, 40, 0.1)])
    assert failed.splitlines()[-1] == "1 of 4 FAILED"
    assert "FAIL" in failed.splitlines()[-2]
