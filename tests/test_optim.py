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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, weight_decay=1e-3),
    dict(momentum=0.5, dampening=0.3, weight_decay=0.1),
    dict(momentum=0.9, weight_decay=1e-2, nesterov=True),
    dict(weight_decay=0.05),
])
def test_numba_step_equals_the_numpy_rule_bit_for_bit(dtype, options):
    # Same rounding in the same order and no FMA (see kernels/sgd.py), so equal exactly.
    rng = np.random.default_rng(3)
    shapes = [(6, 3, 5, 5), (6,), (120, 1296), (7,)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(4)]
    results = {}
    for method in ("reference", "numba"):
        params = [Parameter(a.copy()) for a in start]
        opt = SGD(params, lr=0.01, method=method, **options)
        for k, step in enumerate(grads):
            for p, g in zip(params, step):
                p.grad = g
            if k == 2:
                params[1].grad = None   # skipped this step
            opt.step()
        results[method] = ([p.data for p in params], opt.state_dict())
    for a, b in zip(results["reference"][0], results["numba"][0]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert results["reference"][1].keys() == results["numba"][1].keys()
    for key in results["reference"][1]:
        np.testing.assert_array_equal(results["reference"][1][key], results["numba"][1][key])


def test_numba_step_continues_from_a_loaded_state():
    rng = np.random.default_rng(4)
    start, g1, g2 = (rng.standard_normal(50).astype(np.float32) for _ in range(3))
    out = {}
    for method in ("reference", "numba"):
        p = Parameter(start.copy())
        opt = SGD([p], lr=0.1, momentum=0.9, method=method)
        p.grad = g1
        opt.step()
        fresh = SGD([p], lr=0.1, momentum=0.9, method=method)
        fresh.load_state_dict(opt.state_dict())
        p.grad = g2
        fresh.step()
        out[method] = p.data
    np.testing.assert_array_equal(out["reference"], out["numba"])


def test_unknown_method():
    with pytest.raises(UserError, match="method"):
        SGD([Parameter(np.ones(1))], lr=0.1, method="fast")


def test_numba_step_with_mixed_dtypes_and_a_late_first_gradient():
    # A parameter whose first gradient comes at step 2 starts its buffer then, as in the reference.
    rng = np.random.default_rng(5)
    start = [rng.standard_normal(4).astype(np.float32), rng.standard_normal(3)]   # float32 and float64
    grads = [rng.standard_normal(4).astype(np.float32), rng.standard_normal(3)]
    out = {}
    for method in ("reference", "numba"):
        for pair in ([0], [0, 1]):   # one dtype, then both
            params = [Parameter(start[k].copy()) for k in pair]
            opt = SGD(params, lr=0.1, momentum=0.9, method=method)
            for step in range(3):
                for k, p in zip(pair, params):
                    p.grad = grads[k] if (k == 0 or step > 0) else None
                opt.step()
            out[method, len(pair)] = [p.data for p in params]
    for n in (1, 2):
        for a, b in zip(out["reference", n], out["numba", n]):
            np.testing.assert_array_equal(a, b)
