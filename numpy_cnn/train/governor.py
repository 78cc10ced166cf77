"""Fewer threads when the machine is busy: ``ThreadGovernor``, timed step by step.

A parallel loop ends at a barrier: every thread waits for the slowest. On a
quiet machine that costs microseconds. Beside another CPU-bound process, the
operating system stops one of our threads for a whole time slice (milliseconds)
while the others wait for it, spinning, in every one of the ~10 parallel loops
of a step. Two threads beside one busy process then ran the default run's
epochs 4x slower than quiet, where one thread, which waits for nobody, ran
them 1.5x slower (``docs/performance.md``, "A busy machine").

No load figure says which count is faster now (the load average lags by a
minute and counts our own threads), so the governor measures it:

* it times windows of training steps (at least ``WINDOW_STEPS`` steps and
  ``WINDOW_SECONDS`` seconds) at the current thread count;
* right after its first window, and then every ``every`` seconds, it runs
  one window at a neighbouring count (half the threads, or double, up to
  ``most``), and keeps whichever ran the faster steps, by at least ``MARGIN``;
  a probe already slower than twice a settled window's time is cut short;
* a probe that loses doubles the time to the next one (up to ``MAX_PROBE``),
  so a settled run spends a fraction of a percent of its steps probing, and a
  probe that wins resets it.

Switching is safe because the kernels' sums do not depend on the thread count
(``docs/performance.md``, "Thread-count-independent sums"): the weights are
bit-identical whatever the governor chose, so it changes only the time.
``--threads N`` fixes the count and turns the governor off.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

WINDOW_STEPS = 8
WINDOW_SECONDS = 0.05
MARGIN = 0.95          # a count must run steps at least 5% faster to be kept
FIRST_PROBE = 2.0      # seconds between probes after a change, doubling while probes lose, up to MAX_PROBE
MAX_PROBE = 64.0


def levels(most: int) -> list[int]:
    """The counts the governor moves between: ``most``, halved down to 1 (``8 -> [8, 4, 2, 1]``)."""
    out = [most]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return out


class ThreadGovernor:
    """Call :meth:`step` after every training step; it sets the thread count through ``set_threads``.

    Args:
        most: the thread count to start with and never exceed.
        set_threads: sets the kernels' thread count (``numba.set_num_threads``).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, most: int, set_threads: Callable[[int], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.levels = levels(most)
        self.level = 0                   # index into levels: the settled count
        self.set_threads = set_threads
        self.clock = clock
        self.probing: int | None = None  # the level of the window being probed
        self.settled_rate: float | None = None   # seconds per step at the settled count, last window
        self.every = FIRST_PROBE
        self.last = self.next_probe = None
        self.window_steps, self.window_start = 0, None
        self.steps = Counter()           # steps run at each thread count
        self.up_next = False             # probes alternate between fewer and more threads

    @property
    def threads(self) -> int:
        """The count the last step ran on."""
        return self.levels[self.level if self.probing is None else self.probing]

    def step(self) -> None:
        """One training step ended."""
        now = self.clock()
        if self.window_start is None:    # the first call: the clock starts now, and the first window probes next
            self.window_start, self.next_probe = now, now
            return
        self.steps[self.threads] += 1
        self.window_steps += 1
        elapsed = now - self.window_start
        lost = self.probing is not None and elapsed > 2 * WINDOW_STEPS * self.settled_rate
        if not lost and (self.window_steps < WINDOW_STEPS or elapsed < WINDOW_SECONDS):
            return
        rate = elapsed / self.window_steps
        if self.probing is not None:
            self._judge(rate, now)
        else:
            self.settled_rate = rate
            if now >= self.next_probe:
                self._probe()
        self.window_steps, self.window_start = 0, self.clock()

    def _probe(self) -> None:
        """Run the next window at a neighbouring count: fewer and more threads in turn."""
        fewer, more = self.level + 1, self.level - 1
        options = [lvl for lvl in ((more, fewer) if self.up_next else (fewer, more)) if 0 <= lvl < len(self.levels)]
        self.up_next = not self.up_next
        if not options:                  # a single level (one thread): nothing to try
            self.next_probe = float("inf")
            return
        self.probing = options[0]
        self.set_threads(self.levels[self.probing])

    def _judge(self, rate: float, now: float) -> None:
        """Keep the probed count if its steps were faster, else go back and wait longer before the next probe."""
        if rate < MARGIN * self.settled_rate:
            self.level, self.every = self.probing, FIRST_PROBE
            self.settled_rate = rate
        else:
            self.set_threads(self.levels[self.level])
            self.every = min(2 * self.every, MAX_PROBE)
        self.probing = None
        self.next_probe = now + self.every

    def finish(self) -> int:
        """Back to the most threads (the process may train again); returns that count."""
        self.set_threads(self.levels[0])
        return self.levels[0]

    def summary(self) -> dict[str, float]:
        """The share of the steps that ran on each thread count, ``{"2": 0.97, "1": 0.03}``."""
        total = sum(self.steps.values()) or 1
        return {str(t): round(n / total, 4) for t, n in sorted(self.steps.items(), reverse=True)}
