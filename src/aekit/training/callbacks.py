"""Decisions taken during training: when to stop, which weights to keep.

Callbacks read the epoch's logs and act through the shared :class:`TrainingState`; the loop
itself never decides anything.
"""

from __future__ import annotations

import copy
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit.errors import AekitError


@dataclass
class TrainingState:
    """What the loop shares with callbacks. Setting ``stop`` ends training after this epoch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    stop: bool = False
    stop_reason: str = "completed all epochs"
    history: list[dict[str, float]] = field(default_factory=list)


class Callback:
    """Hooks called by the training loop; each does nothing unless overridden."""

    def on_train_begin(self, state: TrainingState) -> None:
        pass

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, state: TrainingState) -> None:
        pass


class MonitorCallback(Callback):
    """Base for callbacks that watch one metric and act when it stops improving (lower is better).

    Parameters
    ----------
    monitor : str
        Key of the epoch logs to watch, e.g. ``"val_loss"``.
    min_delta : float
        Smallest decrease that counts as an improvement.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.min_delta = min_delta

    def on_train_begin(self, state: TrainingState) -> None:
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0

    def current(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            available = ", ".join(sorted(logs))
            raise AekitError(
                f"{type(self).__name__} monitors '{self.monitor}', which the training logs do not "
                f"have; choose one of: {available}."
            )
        return logs[self.monitor]

    def update(self, state: TrainingState, logs: dict[str, float]) -> bool:
        """Record this epoch's value; return True when it is a new best."""
        value = self.current(logs)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            return True
        self.wait += 1
        return False


class EarlyStopping(MonitorCallback):
    """Stop when the monitored metric has not improved for ``patience`` epochs.

    With ``restore_best_weights`` the model ends with the weights of its best epoch, not its last.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        super().__init__(monitor, min_delta)
        self.patience = patience
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, state: TrainingState) -> None:
        super().on_train_begin(state)
        self.best_weights: dict[str, Any] | None = None

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if self.update(state, logs):
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(state.model.state_dict())
        elif self.wait >= self.patience:
            state.stop = True
            state.stop_reason = (
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.4g} at epoch {self.best_epoch + 1})"
            )

    def on_train_end(self, state: TrainingState) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)


class CSVLogger(Callback):
    """Appends each epoch's logs to a CSV file, flushed at once so a crash loses nothing."""

    COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "seconds", "samples_per_s")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_begin(self, state: TrainingState) -> None:
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerow(self.COLUMNS)

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        row = [int(logs["epoch"])] + [
            f"{logs[c]:.6g}" if c in logs else "" for c in self.COLUMNS[1:]
        ]
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(row)
