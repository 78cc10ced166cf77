"""The lines a run prints: after each epoch (how far, how good, how long, and how much longer),
and under Table 1 (the balanced accuracy)."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``75.3 -> '1m15s'``, ``3725 -> '1h02m'``, ``4.2 -> '4.2s'``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def epochs(n: int) -> str:
    """``1 -> '1 epoch'``, ``3 -> '3 epochs'``."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def near_chance_note(train_accuracy: float, test_accuracy: float, classes: int, epochs_trained: int,
                     optimizer: str, lr: float) -> str | None:
    """One line saying why a run that ended near chance is not broken, or None.

    Near chance: the training accuracy is within 10 points of guessing (1/classes),
    so the network has not even fitted its training images yet. At the paper's
    SGD lr 0.001 the loss barely moves for about 25 epochs before it drops
    (docs/training.md, "BatchNorm and Dropout"), so a short run looks like this.
    """
    chance = 1 / classes
    if train_accuracy >= chance + 0.10:
        return None
    why = (f"at SGD's lr {lr:g} the paper's net needs about 25 epochs to leave its starting plateau"
           if optimizer == "sgd" and lr <= 0.001 else "the network has not fitted its training images yet")
    return (f"note: after {epochs(epochs_trained)} the network is still near chance (train "
            f"{100 * train_accuracy:.1f}%, test {100 * test_accuracy:.1f}%, chance {100 * chance:.1f}%): "
            f"{why}; train longer (the paper trains 200 epochs)")


def epoch_line(row: dict, epochs: int, seconds_per_epoch: float, note: str = "") -> str:
    """``epoch  12/200  loss 1.8123  train 27.4%  test 25.2%  0.84s  ETA 2m37s``.

    ``row`` is one row of the run's metrics; the ETA assumes the remaining
    epochs take ``seconds_per_epoch`` each (the caller's recent mean). With
    ``--val-frac`` the row holds ``val_acc`` and the line says ``val`` instead of
    ``test`` (the test set is not looked at during training); ``note`` is added at
    the end (``best``, when the epoch is the best so far).
    """
    width = len(str(epochs))
    eta = format_duration(seconds_per_epoch * (epochs - row["epoch"]))
    side = "val" if "val_acc" in row else "test"
    return (f"epoch {row['epoch']:>{width}}/{epochs}  loss {row['train_loss']:.4f}  "
            f"train {100 * row['train_acc']:5.1f}%  {side} {100 * row[f'{side}_acc']:5.1f}%  "
            f"{row['seconds']:.2f}s  ETA {eta}" + (f"  {note}" if note else ""))


def balanced_line(balanced_accuracy: float) -> str:
    """The line under Table 1: ``balanced accuracy (mean of per-class recalls): 41.0%``."""
    return f"balanced accuracy (mean of per-class recalls): {100 * balanced_accuracy:.1f}%"


def table1_when(epoch: int, tta: str = "none", best_epoch: int | None = None) -> str:
    """Table 1's ``after 12 epochs``, with which weights and how they were tested when that is not
    the paper's way: ``after 12 epochs (the weights of epoch 9, the best on validation; flip TTA)``.

    ``best_epoch``: the epoch whose weights were kept (``--keep best``), or None for the last.
    """
    notes = []
    if best_epoch is not None:
        notes.append(f"the weights of epoch {best_epoch}, the best on validation")
    if tta != "none":
        notes.append(f"{tta} TTA")
    return f"after {epochs(epoch)}" + (f" ({'; '.join(notes)})" if notes else "")
