"""Input scaling owned by the model, so that a saved model takes raw inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

# Features whose spread is below this are constant for all practical purposes; dividing by their
# tiny std would blow noise up to unit variance, so they are only centred.
_MIN_STD = 1e-8


def usable_std(std: np.ndarray) -> np.ndarray:
    """``std`` with constant features (std ~ 0) given 1: they are only centred."""
    return np.where(np.asarray(std) > _MIN_STD, std, 1.0)


def shared_statistics(stats: dict[str, Any]) -> dict[str, Any]:
    """``stats`` (per feature, equal counts) pooled into one mean, std, min and max over all
    values, repeated per feature: what one image channel holding the same values would get, so
    that pixels held as a table are scaled as the image would be."""
    mean, std = np.asarray(stats["mean"], np.float64), np.asarray(stats["std"], np.float64)
    pooled = mean.mean()
    # The pooled variance: each feature's own spread plus its mean's distance from the pooled one
    spread = np.sqrt(np.mean(std**2 + (mean - pooled) ** 2))
    low, high = np.min(stats["min"]), np.max(stats["max"])
    return dict(
        stats,
        **{key: np.full(len(mean), value).tolist() for key, value in
           (("mean", pooled), ("std", spread), ("min", low), ("max", high))},
    )  # fmt: skip


def scaled_by(scale: str, stats: dict[str, Any]) -> dict[str, Any]:
    """The statistics a model standardises with under ``model.scale``: ``stats`` themselves
    ('feature'), or pooled over all values ('shared')."""
    return stats if scale == "feature" else shared_statistics(stats)


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
