"""The line printed after each epoch: how far, how good, how long, and how much longer."""

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


def epoch_line(row: dict, epochs: int, seconds_per_epoch: float) -> str:
    """``epoch  12/200  loss 1.8123  train 27.4%  test 25.2%  0.84s  ETA 2m37s``.

    ``row`` is one row of the run's metrics; the ETA assumes the remaining
    epochs take ``seconds_per_epoch`` each (the caller's recent mean).
    """
    width = len(str(epochs))
    eta = format_duration(seconds_per_epoch * (epochs - row["epoch"]))
    return (f"epoch {row['epoch']:>{width}}/{epochs}  loss {row['train_loss']:.4f}  "
            f"train {100 * row['train_acc']:5.1f}%  test {100 * row['test_acc']:5.1f}%  "
            f"{row['seconds']:.2f}s  ETA {eta}")
