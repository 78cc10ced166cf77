"""SGD, Adam and AdamW: PyTorch's update rules, checked by hand (the torch oracle checks them again)."""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Parameter
from numpy_cnn.nn.optim import SGD, Adam, AdamW, build_optimizer


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


def test_adam_first_step_moves_each_weight_by_lr_against_its_gradient_sign():
    # Bias correction makes step 1 m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
    p = Parameter(np.array([1.0, 1.0, 1.0]))
    opt = Adam([p], lr=0.1)
    after = step_with([4.0, -0.001, 0.0], opt, p)
    np.testing.assert_allclose(after, [1.0 - 0.1 * 4 / (4 + 1e-8), 1.0 + 0.1 * 0.001 / (0.001 + 1e-8), 1.0])


def test_adam_second_step_by_hand():
    p = Parameter(np.array([0.5]))
    opt = Adam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    step_with([1.0], opt, p)
    g1, g2 = 1.0 + 0.1 * 0.5, None
    x1 = 0.5 - 0.01 * g1 / (g1 + 1e-8)
    g2 = 2.0 + 0.1 * x1                               # Adam: L2 added to the gradient
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.99 * 0.01 * g1 ** 2 + 0.01 * g2 ** 2
    expected = x1 - 0.01 / (1 - 0.9 ** 2) * m / (np.sqrt(v) / np.sqrt(1 - 0.99 ** 2) + 1e-8)
    assert step_with([2.0], opt, p)[0] == pytest.approx(expected, rel=1e-14)


def test_adamw_decays_the_weight_itself_not_the_gradient():
    p = Parameter(np.array([2.0]))
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    # p * (1 - lr * wd) first, then the plain Adam step of size lr * g / (|g| + eps).
    assert step_with([3.0], opt, p)[0] == pytest.approx(2.0 * (1 - 0.05) - 0.1 * 3 / (3 + 1e-8), rel=1e-14)
    assert AdamW([p]).weight_decay == 0.01 and Adam([p]).weight_decay == 0.0   # PyTorch's defaults


@pytest.mark.parametrize("cls,options", [(Adam, {}), (Adam, dict(weight_decay=0.01)), (AdamW, {}),
                                         (AdamW, dict(weight_decay=0.2, betas=(0.5, 0.9)))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_numba_step_equals_the_numpy_rule_bit_for_bit(cls, options, dtype):
    rng = np.random.default_rng(6)
    shapes = [(6, 3, 5, 5), (6,), (120, 1296), (7,)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(5)]
    results = {}
    for method in ("reference", "numba"):
        params = [Parameter(a.copy()) for a in start]
        opt = cls(params, lr=0.01, method=method, **options)
        for k, step in enumerate(grads):
            for p, g in zip(params, step):
                p.grad = g
            if k in (1, 2):
                params[1].grad = None   # skipped: its own step count falls behind
            opt.step()
        results[method] = ([p.data for p in params], opt.state_dict())
    assert results["reference"][1]["1.step"] == 3 and results["reference"][1]["0.step"] == 5
    for a, b in zip(results["reference"][0], results["numba"][0]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert results["reference"][1].keys() == results["numba"][1].keys()
    for key, value in results["reference"][1].items():
        np.testing.assert_array_equal(value, results["numba"][1][key])


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_state_round_trip_continues_bit_identically(cls):
    rng = np.random.default_rng(8)
    start, g1, g2 = (rng.standard_normal(40).astype(np.float32) for _ in range(3))
    a, b = Parameter(start.copy()), Parameter(start.copy())
    straight = cls([a], lr=0.01)
    for g in (g1, g2):
        a.grad = g
        straight.step()
    first = cls([b], lr=0.01)
    b.grad = g1
    first.step()
    state = first.state_dict()
    assert set(state) == {"0.exp_avg", "0.exp_avg_sq", "0.step"} and state["0.step"].dtype == np.int64
    resumed = cls([b], lr=0.01)
    resumed.load_state_dict(state)
    b.grad = g2
    resumed.step()
    assert a.data.tobytes() == b.data.tobytes()


def test_adam_refuses_a_state_for_another_model_or_optimizer():
    opt = Adam([Parameter(np.ones(3))])
    with pytest.raises(UserError, match="0.exp_avg does not fit"):
        opt.load_state_dict({"0.exp_avg": np.ones(4), "0.exp_avg_sq": np.ones(3), "0.step": np.array(1)})
    with pytest.raises(UserError, match="0.momentum_buffer does not fit"):
        opt.load_state_dict({"0.momentum_buffer": np.ones(3)})   # an SGD state


@pytest.mark.parametrize("options,needle", [(dict(lr=0.0), "lr > 0"), (dict(betas=(0.9, 1.0)), "betas in"),
                                            (dict(eps=0.0), "eps > 0"), (dict(method="fast"), "method")])
def test_adam_bad_hyper_parameters(options, needle):
    with pytest.raises(UserError, match=needle):
        Adam([Parameter(np.ones(1))], **options)


def test_build_optimizer_by_name():
    params = [Parameter(np.ones(2))]
    assert type(build_optimizer("sgd", params, 0.1, 0.0, momentum=0.9)) is SGD
    assert type(build_optimizer("adamw", params, 0.1, 0.01)) is AdamW
    with pytest.raises(UserError, match="--optimizer must be one of sgd, adam, adamw"):
        build_optimizer("rmsprop", params, 0.1, 0.0)
