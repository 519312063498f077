"""Data sources, stores and batch streams."""

from __future__ import annotations

from aekit.data.arrays import ArrayBatches
from aekit.data.order import epoch_order

__all__ = ["ArrayBatches", "epoch_order"]
