"""Input scaling owned by the model, so that a saved model takes raw inputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Features whose spread is below this are constant for all practical purposes; dividing by their
# tiny std would blow noise up to unit variance, so they are only centred.
_MIN_STD = 1e-8


def usable_std(std: np.ndarray) -> np.ndarray:
    """``std`` with constant features (std ~ 0) given 1: they are only centred."""
    return np.where(np.asarray(std) > _MIN_STD, std, 1.0)


class Standardizer(nn.Module):
    """Maps raw inputs to standardised units and back, with statistics stored as buffers.

    Parameters
    ----------
    mean, std : array-like of shape (n_features,)
        Statistics of the training data in raw units. Constant features (std ~ 0) keep std = 1.
    low, high : array-like of shape (n_features,), optional
        The data's minimum and maximum, for corruption noise (default: mean -/+ std).
    """

    mean: torch.Tensor
    std: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def __init__(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        std = usable_std(std)
        mean = np.asarray(mean)
        # The data's range, in raw units: what corruption noise is measured against
        low = mean - std if low is None else np.asarray(low)
        high = mean + std if high is None else np.asarray(high)
        for name, value in (("mean", mean), ("std", std), ("low", low), ("high", high)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Casting here lets callers hand over uint8 or float64 batches and normalise on the device.
        return (x.to(self.mean.dtype) - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean
