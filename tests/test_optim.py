"""SGD: PyTorch's update rule, checked by hand (the torch oracle checks it again)."""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.module import Parameter
from numpy_cnn.optim import SGD


def step_with(grad, opt, p):
    p.grad = np.array(grad, dtype=np.float64)
    opt.step()
    return p.data.copy()


def test_plain_sgd():
    p = Parameter(np.array([1.0, -2.0]))
    opt = SGD([p], lr=0.1)
    np.testing.assert_allclose(step_with([1.0, 1.0], opt, p), [0.9, -2.1])


def test_momentum_buffer_starts_as_the_first_gradient():
    p = Parameter(np.array([0.0]))
    opt = SGD([p], lr=1.0, momentum=0.9)
    assert step_with([1.0], opt, p)[0] == pytest.approx(-1.0)          # buf = g, not (1-0.9) g or 0.9*0 + g
    assert step_with([1.0], opt, p)[0] == pytest.approx(-1.0 - 1.9)    # buf = 0.9*1 + 1
    assert step_with([0.0], opt, p)[0] == pytest.approx(-2.9 - 1.71)   # buf = 0.9*1.9


def test_weight_decay_dampening_and_nesterov():
    p = Parameter(np.array([2.0]))
    opt = SGD([p], lr=0.5, momentum=0.5, weight_decay=0.1, nesterov=True)
    d = 1.0 + 0.1 * 2.0                   # g + wd * p
    buf = d
    expected = 2.0 - 0.5 * (d + 0.5 * buf)
    assert step_with([1.0], opt, p)[0] == pytest.approx(expected)
    q = Parameter(np.array([0.0]))
    opt = SGD([q], lr=1.0, momentum=0.5, dampening=0.5)
    step_with([1.0], opt, q)                                           # buf = 1 (no dampening at first)
    assert step_with([1.0], opt, q)[0] == pytest.approx(-1.0 - (0.5 * 1 + 0.5 * 1))


def test_parameters_without_grad_are_skipped_and_state_round_trips():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    step_with([1.0, 1.0], opt, a)
    assert np.all(b.data == 1.0)
    state = opt.state_dict()
    assert set(state) == {"0.momentum_buffer"}
    fresh = SGD([a, b], lr=0.1, momentum=0.9)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.momentum_buffers[0], state["0.momentum_buffer"])


def test_bad_hyper_parameters():
    with pytest.raises(UserError, match="lr > 0"):
        SGD([Parameter(np.ones(1))], lr=0.0)
