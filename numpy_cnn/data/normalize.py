"""From stored pixels to what the network sees, and training-mean subtraction.

Stored images are uint8 (N, H, W) grayscale. The network takes float32
(N, 3, H, W) in [0, 1], the gray channel copied three times (the paper's
"grayscale -> 3 channels"), minus the mean of the *training* images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels (any shape) -> float32 in [0, 1]."""
    return np.asarray(x, dtype=np.float32) * np.float32(1 / 255)


def to_network_input(x: np.ndarray, channels: int = 3) -> np.ndarray:
    """Grayscale images -> network input.

    Args:
        x: (N, H, W) uint8 in [0, 255] or float in [0, 1].

    Returns:
        float32 (N, channels, H, W), the gray channel replicated.
    """
    if x.dtype == np.uint8:
        x = to_float(x)
    x = np.asarray(x, dtype=np.float32)
    return np.repeat(x[:, None], channels, axis=1)


@dataclass(frozen=True)
class MeanSubtraction:
    """Subtract the training-set mean: a scalar (default) or per-pixel (H, W) image.

    Fit it on training images only, store :meth:`state_dict` in the checkpoint,
    and apply the same object at evaluation and prediction.

    Attributes:
        mean: float32 array of shape () or (H, W), in the units of the fitted
            images ([0, 1] when fitted on :func:`to_float` output).
    """

    mean: np.ndarray

    @classmethod
    def fit(cls, x_train: np.ndarray, per_pixel: bool = False) -> MeanSubtraction:
        """Mean of (N, H, W) or (N, C, H, W) training images; uint8 input is scaled to [0, 1] first."""
        x = to_float(x_train) if x_train.dtype == np.uint8 else np.asarray(x_train, np.float32)
        x = x.reshape(-1, *x.shape[-2:])  # channels are copies of one gray channel
        mean = x.mean(axis=0, dtype=np.float64) if per_pixel else x.mean(dtype=np.float64)
        return cls(np.asarray(mean, dtype=np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, C, H, W) float -> the same shape, float32, minus the mean."""
        return np.asarray(x, np.float32) - self.mean

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"mean": array}``, for checkpoints."""
        return {"mean": self.mean}

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> MeanSubtraction:
        """Rebuild from :meth:`state_dict` output."""
        return cls(np.asarray(state["mean"], dtype=np.float32))
