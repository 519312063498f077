"""Normalisation statistics computed in one streaming pass."""

from __future__ import annotations

from typing import Any

import numpy as np

# Elements converted to float64 at a time: keeps the temporary copy near 32 MB for image batches.
_BLOCK_ELEMENTS = 1 << 22


class RunningStats:
    """Per-feature (or per-channel) count, mean, std, min and max, merged batch by batch.

    Batches are combined with Chan et al.'s pairwise update in float64, which stays accurate on
    large or offset data where a float32 running sum would lose digits.

    Parameters
    ----------
    n_features : int
        Length of the last axis of every batch: features for tables, channels for images.
    """

    def __init__(self, n_features: int) -> None:
        self.count = 0
        self.mean = np.zeros(n_features)
        self._m2 = np.zeros(n_features)
        self.min = np.full(n_features, np.inf)
        self.max = np.full(n_features, -np.inf)

    def update(self, batch: np.ndarray) -> None:
        """Add a batch whose last axis is the feature (or channel) axis."""
        rows = np.asarray(batch).reshape(-1, len(self.mean))
        step = max(1, _BLOCK_ELEMENTS // max(1, rows.shape[1]))
        for start in range(0, len(rows), step):
            self._merge(rows[start : start + step].astype(np.float64))

    def _merge(self, b: np.ndarray) -> None:
        n_b = len(b)
        if n_b == 0:
            return
        mean_b = b.mean(axis=0)
        m2_b = ((b - mean_b) ** 2).sum(axis=0)
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self._m2 = self._m2 + m2_b + delta**2 * (self.count * n_b / total)
        self.count = total
        self.min = np.minimum(self.min, b.min(axis=0))
        self.max = np.maximum(self.max, b.max(axis=0))

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (ddof=0)."""
        return np.sqrt(self._m2 / max(self.count, 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": int(self.count),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
        }
