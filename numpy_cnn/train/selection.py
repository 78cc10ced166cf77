"""Model selection on a validation set: ``--keep best|last`` and early stopping (``--patience N``).

With ``--val-frac`` a run evaluates, after every epoch, on validation images
carved from its training side (:func:`numpy_cnn.data.validation_split`), never
on the test set. This module keeps the books:

* the best epoch so far: the first epoch with the highest validation accuracy
  (a later tie does not replace it);
* ``--keep best``: that epoch's weights (with BatchNorm's running statistics),
  which the checkpoint holds as *the* model while the run trains on from its
  last weights (:class:`~numpy_cnn.train.checkpoint.Checkpoint`'s ``last``);
* ``--patience N``: the run stops once N epochs in a row brought no better
  validation accuracy.

Everything but the best weights follows from the run's history (its
``val_acc`` column), so a resumed run rebuilds its books with
:meth:`Selection.from_history` and stops, or goes on, exactly where an
uninterrupted run would.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from numpy_cnn.nn.module import Module


@dataclass
class Selection:
    """The best validation accuracy so far, its epoch, and (``keep="best"``) its weights.

    Attributes:
        keep: ``"best"`` or ``"last"``: which weights the run keeps.
        patience: epochs without a better validation accuracy before the run stops (None: never).
        best_acc: the best validation accuracy seen (-1 before the first epoch).
        best_epoch: its epoch (0 before the first).
        best_state: with ``keep="best"``, a copy of the model's state dict at ``best_epoch``.
    """

    keep: str = "last"
    patience: int | None = None
    best_acc: float = -1.0
    best_epoch: int = 0
    best_state: OrderedDict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def from_history(cls, history: list[dict], keep: str, patience: int | None,
                     best_state: OrderedDict[str, np.ndarray] | None = None) -> Selection:
        """The books after the epochs in ``history`` (rows with ``val_acc``), for a resumed run;
        ``best_state`` is the checkpoint's model when it keeps the best epoch's weights."""
        selection = cls(keep, patience)
        for row in history:
            selection.update(row["epoch"], row["val_acc"], None)
        selection.best_state = best_state
        return selection

    def update(self, epoch: int, val_acc: float, model: Module | None) -> bool:
        """Record ``epoch``'s validation accuracy; True if it is the best so far.

        When it is, and the run keeps the best weights, a copy of ``model``'s state
        dict (weights and BatchNorm's running statistics) is kept.
        """
        if val_acc <= self.best_acc:
            return False
        self.best_acc, self.best_epoch = val_acc, epoch
        if self.keep == "best" and model is not None:
            self.best_state = model.state_dict()   # copies
        return True

    def should_stop(self, epoch: int) -> bool:
        """True once ``patience`` epochs in a row after the best one brought nothing better."""
        return self.patience is not None and epoch - self.best_epoch >= self.patience

    def kept_epoch(self, epoch: int) -> int:
        """The epoch whose weights the run keeps after ``epoch`` (the last one trained)."""
        return self.best_epoch if self.keep == "best" else epoch

    def summary(self, epoch: int, epochs: int) -> dict:
        """What ``results.json`` says of the selection after ``epoch`` of a run of ``epochs``."""
        return {"keep": self.keep, "best_val_accuracy": self.best_acc, "best_epoch": self.best_epoch,
                "kept_epoch": self.kept_epoch(epoch), "patience": self.patience,
                "stopped_early": epoch < epochs and self.should_stop(epoch)}
