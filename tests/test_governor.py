"""ThreadGovernor on a fake clock: it settles on the faster thread count, probes rarely, and switches back."""

import pytest

from numpy_cnn.train import governor as gov
from numpy_cnn.train.governor import ThreadGovernor, levels


class Machine:
    """A fake machine: a step takes ``cost[threads]`` seconds; the governor sets ``threads``."""

    def __init__(self, cost):
        self.cost, self.now, self.threads = cost, 0.0, None

    def set_threads(self, n):
        self.threads = n

    def run(self, governor, steps):
        for _ in range(steps):
            self.now += self.cost[governor.threads]
            governor.step()


def make(cost, most):
    m = Machine(cost)
    return m, ThreadGovernor(most, m.set_threads, clock=lambda: m.now)


def test_levels_halve_down_to_one():
    assert levels(8) == [8, 4, 2, 1] and levels(3) == [3, 1] and levels(1) == [1]


def test_a_quiet_machine_keeps_every_thread_and_probes_rarely():
    m, g = make({2: 0.003, 1: 0.005}, most=2)
    m.run(g, 20_000)                                   # a minute of steps
    assert g.threads == 2
    assert g.summary()["2"] > 0.99                     # probes lost, and backed off


def test_a_busy_machine_falls_back_to_one_thread_then_returns_when_it_is_quiet():
    m, g = make({2: 0.020, 1: 0.005}, most=2)         # two threads wait on each other
    m.run(g, 2_000)
    assert g.threads == 1 and m.threads == 1
    m.cost = {2: 0.003, 1: 0.005}                      # the other process ended
    m.run(g, 20_000)
    assert g.threads == 2 and m.threads == 2


def test_eight_threads_step_down_to_the_best_count():
    m, g = make({8: 0.010, 4: 0.006, 2: 0.004, 1: 0.007}, most=8)
    m.run(g, 20_000)
    assert g.threads == 2


def test_a_tie_keeps_the_current_count():
    m, g = make({2: 0.004, 1: 0.0041}, most=2)
    m.run(g, 10_000)
    assert g.threads == 2


def test_finish_restores_the_most_threads():
    m, g = make({2: 0.020, 1: 0.005}, most=2)
    m.run(g, 2_000)
    assert m.threads == 1
    assert g.finish() == 2 and m.threads == 2
    assert sum(g.summary().values()) == pytest.approx(1, abs=1e-3)


def test_one_thread_never_probes():
    m, g = make({1: 0.005}, most=1)
    m.run(g, 1_000)
    assert m.threads is None and g.summary() == {"1": 1.0}


def test_windows_are_long_enough_to_time(monkeypatch):
    # Tiny steps: a window waits for WINDOW_SECONDS, not just WINDOW_STEPS.
    m, g = make({2: 1e-5, 1: 2e-5}, most=2)
    m.run(g, 3_000)
    assert g.threads == 2
    assert gov.WINDOW_SECONDS / 1e-5 > gov.WINDOW_STEPS
