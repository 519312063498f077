"""The training engine: one loop, and callbacks that take its decisions."""

from __future__ import annotations

from aekit.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    MonitorCallback,
    TrainingState,
)
from aekit.training.loop import BatchSource, evaluate, train

__all__ = [
    "BatchSource",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "MonitorCallback",
    "TrainingState",
    "evaluate",
    "train",
]
