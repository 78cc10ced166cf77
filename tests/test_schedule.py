"""Learning-rate schedules: PyTorch's schedulers as the oracle, every step's lr to ~1e-12 relative."""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Parameter
from numpy_cnn.nn.optim import SGD, Adam
from numpy_cnn.train.schedule import SCHEDULES, LRSchedule, build_schedule, steps_per_epoch

BASE_LR = 0.01


def torch_lrs(name, total, warmup, step_size=1, gamma=0.1, start_factor=0.01):
    """The lr PyTorch's optimizer holds at each of ``total`` steps (optimizer.step(); scheduler.step())."""
    torch = pytest.importorskip("torch")
    sched = torch.optim.lr_scheduler
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR, momentum=0.9)
    schedulers = []
    if warmup:
        schedulers.append(sched.LinearLR(opt, start_factor=start_factor, total_iters=warmup))
    main = total - warmup
    if name == "step":
        schedulers.append(sched.StepLR(opt, step_size=step_size, gamma=gamma))
    elif name == "cosine":
        schedulers.append(sched.CosineAnnealingLR(opt, T_max=main, eta_min=0.0))
    elif name == "onecycle":
        schedulers.append(sched.OneCycleLR(opt, max_lr=BASE_LR, total_steps=main, pct_start=0.3,
                                           anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4,
                                           three_phase=False, cycle_momentum=False))
    if len(schedulers) == 2:
        scheduler = sched.SequentialLR(opt, schedulers, milestones=[warmup])
    else:
        scheduler = schedulers[0] if schedulers else None
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return lrs


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("epochs, per_epoch, warmup_epochs", [(6, 37, 0), (6, 37, 1), (30, 175, 0),
                                                             (30, 175, 2), (3, 1, 1), (2, 4, 0.5)])
def test_every_step_matches_torch(name, epochs, per_epoch, warmup_epochs):
    ours = build_schedule(name, BASE_LR, epochs, per_epoch, warmup=warmup_epochs)
    theirs = torch_lrs(name, ours.total_steps, ours.warmup_steps, ours.step_size)
    np.testing.assert_allclose(ours.lrs(), theirs, rtol=1e-12, atol=0)


def test_the_step_size_is_counted_in_epochs_after_the_warm_up():
    s = build_schedule("step", 1.0, epochs=10, steps_per_epoch=5, warmup=1, step_epochs=3, gamma=0.5)
    assert s.warmup_steps == 5 and s.step_size == 15
    per_epoch = [s(5 * e) for e in range(10)]   # the lr at each epoch's first step
    assert per_epoch[1:] == [1.0] * 3 + [0.5] * 3 + [0.25] * 3
    assert per_epoch[0] == pytest.approx(0.01)
    assert build_schedule("step", 1.0, epochs=30, steps_per_epoch=2).step_size == 20   # a third of 30 epochs


def test_warm_up_rises_linearly_to_where_the_schedule_starts():
    for name in SCHEDULES:
        s = build_schedule(name, 0.1, epochs=4, steps_per_epoch=10, warmup=1)
        start = 0.1 / 25 if name == "onecycle" else 0.1
        warm = np.array([s(t) for t in range(11)])
        assert warm[0] == pytest.approx(0.01 * start) and warm[10] == pytest.approx(start)
        np.testing.assert_allclose(np.diff(warm[:11]), (start - 0.01 * start) / 10, rtol=1e-9)


def test_constant_without_warm_up_is_the_base_lr_itself():
    s = build_schedule("constant", 0.001, epochs=3, steps_per_epoch=7)
    assert all(lr == 0.001 for lr in s.lrs())       # the same float: the optimizer's numbers cannot change


def test_onecycle_and_cosine_shapes():
    one = build_schedule("onecycle", 1.0, epochs=10, steps_per_epoch=10)
    lrs = one.lrs()
    assert lrs[0] == pytest.approx(1 / 25) and max(lrs) == pytest.approx(1.0)
    assert int(np.argmax(lrs)) == 29 and lrs[-1] == pytest.approx(1 / 25 / 1e4)
    cos = build_schedule("cosine", 1.0, epochs=10, steps_per_epoch=10)
    assert cos(0) == 1.0 and cos(50) == pytest.approx(0.5) and 0 < cos(99) < 1e-3


def test_steps_per_epoch_counts_the_smaller_last_batch():
    assert steps_per_epoch(10, 4) == 3 and steps_per_epoch(8, 4) == 2 and steps_per_epoch(1, 256) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="linear"), "--schedule must be one of"),
    (dict(warmup_steps=12), "--warmup"),
    (dict(base_lr=0.0), "lr > 0"),
    (dict(step_size=0), "step_size"),
])
def test_bad_settings_are_one_line_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        LRSchedule(**{"name": "cosine", "base_lr": 0.1, "total_steps": 12, **kwargs})
    with pytest.raises(UserError, match="--warmup must be >= 0"):
        build_schedule("cosine", 0.1, 3, 4, warmup=-1)


@pytest.mark.parametrize("method", ["numba", "reference"])
def test_setting_optimizer_lr_before_each_step_applies_the_schedule(method):
    """The optimizers read ``self.lr`` at every step (the numba kernel gets it per call), so setting
    ``optimizer.lr = schedule(t)`` before step t is the scheduled update: plain SGD's
    ``p -= lr_t * g_t``, bit for bit."""
    schedule = build_schedule("cosine", 0.5, epochs=1, steps_per_epoch=4, warmup=0.5)
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(4)]
    p = Parameter(rng.standard_normal((3, 2)).astype(np.float32))
    expected = p.data.copy()
    opt = SGD([p], lr=0.5, method=method)
    for t, g in enumerate(grads):
        opt.lr = schedule(t)
        p.grad = g
        opt.step()
        expected -= schedule(t) * g
    assert len({schedule(t) for t in range(4)}) == 4      # a new lr every step
    np.testing.assert_array_equal(p.data, expected)


@pytest.mark.parametrize("method", ["numba", "reference"])
def test_adam_reads_its_lr_at_every_step(method):
    rng = np.random.default_rng(1)
    g = rng.standard_normal((4,)).astype(np.float32)
    a, b = (Parameter(np.ones(4, np.float32)) for _ in range(2))
    opt_a, opt_b = Adam([a], lr=0.1, method=method), Adam([b], lr=0.1, method=method)
    for step, lr in enumerate([0.1, 0.02]):
        a.grad = b.grad = g
        opt_a.lr = lr
        opt_a.step()
        if step == 1:                                   # b: a fresh optimizer state would differ,
            opt_b.lr = 0.02                             # so set b's lr the same way
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)
    opt_c = Adam([c := Parameter(np.ones(4, np.float32))], lr=0.1, method=method)
    for _ in range(2):
        c.grad = g
        opt_c.step()
    assert not np.array_equal(a.data, c.data)          # the second step really used 0.02
