"""Learning-rate schedules, evaluated per optimizer step: PyTorch's formulas in closed form.

A schedule is a pure function of the step: ``lr = schedule(t)`` for the t-th
optimizer step of the run (t = 0, 1, ..., T-1, counted across epochs). The
trainer sets ``optimizer.lr = schedule(t)`` before each ``optimizer.step()``
(both :class:`~numpy_cnn.nn.optim.SGD` and :class:`~numpy_cnn.nn.optim.Adam`
read ``self.lr`` at every step and hand it to their kernels), so nothing
about the schedule lives in the optimizer or the checkpoint: a resumed run
recomputes the same lr from the step number.

With ``W`` warm-up steps and ``S = T - W`` steps left for the main schedule
(``s = t - W`` counts them)::

    warm-up   t < W:  lr = lr0 * (f + (1 - f) * t / W)        f = warmup_start_factor
    constant:         lr = base_lr
    step:             lr = base_lr * gamma ** (s // step_size)
    cosine:           lr = base_lr * (1 + cos(pi * s / S)) / 2
    onecycle:         s < P:  lr = anneal(base_lr / div_factor, base_lr, s / P)
                      else:   lr = anneal(base_lr, base_lr / div_factor / final_div_factor,
                                          (s - P) / (S - 1 - P))
                      with P = pct_start * S - 1 and anneal(a, b, p) = b + (a - b) / 2 * (cos(pi p) + 1)

``lr0`` is where the main schedule starts: ``base_lr`` for constant, step and
cosine; ``base_lr / div_factor`` for onecycle (whose own first phase is a
warm-up already). So the warm-up rises linearly to the value the main
schedule begins with and the lr does not jump. (A onecycle of fewer than 4
steps has no first phase and starts higher; PyTorch's warm-up still ends at
``base_lr / div_factor`` there, and so does this one.)

Which PyTorch schedulers these are, stepped once per optimizer step
(``optimizer.step(); scheduler.step()``); the tests compare every lr to ~1e-12:

* constant: no scheduler (with warm-up: ``LinearLR(opt, start_factor=f, total_iters=W)`` alone).
* step: ``StepLR(opt, step_size, gamma)``, with ``step_size`` counted in
  optimizer steps: :func:`build_schedule` takes it in epochs and multiplies by
  the steps per epoch, so the lr drops at epoch boundaries. ``gamma=0.1`` is
  PyTorch's default; the default step size is a third of the epochs after the
  warm-up (at least 1), so a run ends at 1/100 of its lr after two drops.
* cosine: ``CosineAnnealingLR(opt, T_max=S, eta_min=0)``, one half-cosine from
  ``base_lr`` towards 0 (the last step's lr is small but not 0).
* onecycle: ``OneCycleLR(opt, max_lr=base_lr, total_steps=S, pct_start=0.3,
  anneal_strategy="cos", div_factor=25, final_div_factor=1e4, three_phase=False,
  cycle_momentum=False)``. PyTorch's default ``cycle_momentum=True`` would also
  move SGD's momentum (or Adam's beta1) between 0.95 and 0.85 against the lr;
  here the momentum stays what the optimizer was given.
* warm-up: ``SequentialLR(opt, [LinearLR(opt, start_factor=f, total_iters=W), main],
  milestones=[W])``: at step W the main scheduler starts from its own step 0.
  PyTorch's LinearLR multiplies the optimizer's current lr, which SequentialLR
  resets to the main scheduler's ``initial_lr``: ``base_lr``, or
  ``base_lr / div_factor`` for OneCycleLR. That is ``lr0`` above.

PyTorch computes most of these recursively (each lr from the previous one);
the closed forms here are the same numbers to rounding (~t * 1e-16 relative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numpy_cnn.errors import UserError

SCHEDULES = ("constant", "step", "cosine", "onecycle")
WARMUP_START_FACTOR = 0.01
STEP_GAMMA = 0.1
# OneCycleLR's defaults (PyTorch's): a 30% rise from base/25, then a fall to base/25/1e4.
PCT_START = 0.3
DIV_FACTOR = 25.0
FINAL_DIV_FACTOR = 1e4


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``n_images``: the last batch may be smaller (``drop_last=False``)."""
    return -(-n_images // batch_size)


@dataclass(frozen=True)
class LRSchedule:
    """The lr of every optimizer step of a run: ``schedule(t)`` for t in [0, total_steps).

    Attributes:
        name: one of :data:`SCHEDULES`.
        base_lr: the lr the user gave (``--lr``); onecycle's peak (``max_lr``).
        total_steps: T, the optimizer steps of the whole run (warm-up included).
        warmup_steps: W, the linear warm-up's steps (0: none).
        step_size: for ``step``, the steps between two drops of the lr by ``gamma``.
    """

    name: str
    base_lr: float
    total_steps: int
    warmup_steps: int = 0
    step_size: int = 1
    gamma: float = STEP_GAMMA
    warmup_start_factor: float = WARMUP_START_FACTOR
    pct_start: float = PCT_START
    div_factor: float = DIV_FACTOR
    final_div_factor: float = FINAL_DIV_FACTOR

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.name!r}")
        if not self.base_lr > 0 or self.total_steps < 1:
            raise UserError(f"a schedule needs lr > 0 and at least one step, got lr={self.base_lr}, "
                            f"{self.total_steps} steps")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise UserError(f"--warmup: {self.warmup_steps} warm-up steps leave none of the run's "
                            f"{self.total_steps} for the schedule; use fewer warm-up epochs")
        if not 0 < self.warmup_start_factor <= 1 or self.step_size < 1 or not 0 < self.gamma <= 1:
            raise UserError(f"a schedule needs 0 < warmup_start_factor <= 1, step_size >= 1 and "
                            f"0 < gamma <= 1; got {self.warmup_start_factor}, {self.step_size}, {self.gamma}")

    def __call__(self, t: int) -> float:
        """The lr of optimizer step ``t`` (0-based, counted over the whole run)."""
        w = self.warmup_steps
        if t < w:   # LinearLR's closed form: the factor rises from f towards 1
            f = self.warmup_start_factor
            return self.warmup_target() * (f + (1.0 - f) * t / w)
        return self._main(t - w)

    def warmup_target(self) -> float:
        """``lr0``, where the warm-up ends: the main scheduler's ``initial_lr`` in PyTorch."""
        return self.base_lr / self.div_factor if self.name == "onecycle" else self.base_lr

    def _main(self, s: int) -> float:
        """The main schedule at its own step ``s`` (0 at the end of the warm-up)."""
        if self.name == "constant":
            return self.base_lr
        if self.name == "step":     # StepLR's closed form
            return self.base_lr * self.gamma ** (s // self.step_size)
        steps = self.total_steps - self.warmup_steps
        if self.name == "cosine":   # CosineAnnealingLR's closed form, eta_min = 0
            return self.base_lr * (1 + math.cos(math.pi * s / steps)) / 2
        return self._one_cycle(s, steps)

    def _one_cycle(self, s: int, steps: int) -> float:
        """OneCycleLR.get_lr, two phases, written as PyTorch writes it (the same float operations)."""
        initial = self.base_lr / self.div_factor
        phases = ((float(self.pct_start * steps) - 1, initial, self.base_lr),
                  (steps - 1, self.base_lr, initial / self.final_div_factor))
        start_step = 0.0
        for i, (end_step, start_lr, end_lr) in enumerate(phases):
            if s <= end_step or i == len(phases) - 1:
                # A phase of no length (PyTorch divides by zero there) is at its end.
                pct = (s - start_step) / (end_step - start_step) if end_step != start_step else 1.0
                return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
            start_step = end_step
        raise AssertionError("unreachable: the last phase always answers")

    def lrs(self) -> list[float]:
        """The lr of every step of the run, ``[schedule(0), ..., schedule(T - 1)]`` (for plots and tests)."""
        return [self(t) for t in range(self.total_steps)]


def build_schedule(name: str, base_lr: float, epochs: int, steps_per_epoch: int, *,
                   warmup: float = 0.0, step_epochs: int | None = None, gamma: float = STEP_GAMMA,
                   warmup_start_factor: float = WARMUP_START_FACTOR) -> LRSchedule:
    """``--schedule NAME --warmup EPOCHS``: the schedule of a run of ``epochs`` epochs.

    Args:
        name: ``constant`` (today's behaviour: every step gets ``base_lr``), ``step``,
            ``cosine`` or ``onecycle``.
        steps_per_epoch: :func:`steps_per_epoch` of the training set and batch size.
        warmup: epochs of linear warm-up (may be fractional; rounded to whole steps).
        step_epochs: for ``step``, epochs between two drops (default: a third of the
            epochs after the warm-up, at least 1).
        gamma: for ``step``, the factor of each drop.

    A ``constant`` schedule without warm-up returns ``base_lr`` itself at every
    step, so setting it on the optimizer changes no number.
    """
    if warmup < 0:
        raise UserError(f"--warmup must be >= 0 epochs, got {warmup}")
    warmup_steps = int(round(warmup * steps_per_epoch))
    if step_epochs is None:
        step_epochs = max(1, (epochs - int(round(warmup))) // 3)
    if step_epochs < 1:
        raise UserError(f"the step schedule's step size must be >= 1 epoch, got {step_epochs}")
    return LRSchedule(name, base_lr, epochs * steps_per_epoch, warmup_steps, step_epochs * steps_per_epoch,
                      gamma, warmup_start_factor)
