"""Decisions taken during training: when to stop, what learning rate, what to log.

Callbacks read the loop's logs and act through the shared :class:`TrainingState`; the loop
itself never decides anything. Stateful callbacks save and restore their state, so a resumed
run decides exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import copy
import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit.atomic import open_text, published
from aekit.errors import AekitError
from aekit.objectives import Objective
from aekit.training.threads import FOLLOW_SECONDS, FreeCoreCounter


@dataclass
class TrainingState:
    """What the loop shares with callbacks. Setting ``stop`` ends training after this epoch.

    ``epoch`` is the current epoch (0-based), ``batch`` the number of batches of it done,
    ``step`` the number of optimiser steps over the whole run. ``loss_sum`` and
    ``sample_count`` (the epoch's running loss) are brought up to date by ``settle()`` (see
    :mod:`aekit.training.guard`), which the loop calls at least every ``CHECK_EVERY`` steps.
    With several processes every one must call it at the same steps.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int = 0
    steps_per_epoch: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    sample_count: float = 0
    stop: bool = False
    stop_reason: str = "completed all epochs"
    history: list[dict[str, float]] = field(default_factory=list)
    settle: Callable[[], None] = field(default=lambda: None, repr=False)


class Callback:
    """Hooks called by the training loop; each does nothing unless overridden."""

    def on_train_begin(self, state: TrainingState) -> None:
        pass

    def on_epoch_begin(self, state: TrainingState) -> None:
        pass

    def on_batch_end(self, state: TrainingState) -> None:
        pass

    def on_validation(self, state: TrainingState, logs: dict[str, float]) -> None:
        """Validation between epoch ends (``val_every_steps``)."""

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, state: TrainingState) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
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
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0

    def on_train_begin(self, state: TrainingState) -> None:
        self._reset()

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

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


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

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best_weights = state["best_weights"]


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.5,
        patience: int = 5,
        min_lr: float = 1e-7,
        min_delta: float = 0.0,
    ) -> None:
        super().__init__(monitor, min_delta)
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if not self.update(state, logs) and self.wait >= self.patience:
            for group in state.optimizer.param_groups:
                group["lr"] = max(self.min_lr, group["lr"] * self.factor)
            self.wait = 0


class LRSchedule(Callback):
    """A learning-rate schedule stepped after every optimiser step: cosine decay or one-cycle.

    Built at the start of training, when the number of steps is known.
    """

    def __init__(self, kind: str, learning_rate: float) -> None:
        if kind not in ("cosine", "onecycle"):
            raise AekitError(f"unknown schedule '{kind}'; use cosine or onecycle.")
        self.kind = kind
        self.learning_rate = learning_rate

    def on_train_begin(self, state: TrainingState) -> None:
        total = max(1, state.epochs * state.steps_per_epoch)
        opt = state.optimizer
        self.scheduler: torch.optim.lr_scheduler.LRScheduler
        if self.kind == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        else:
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=self.learning_rate, total_steps=total + 1
            )

    def on_batch_end(self, state: TrainingState) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


class FollowFreeCores(Callback):
    """Gives torch's maths a thread per free core, counted again every ``every`` seconds of
    training: a fit whose count came from the free cores at its start (``threads="auto"``)
    follows a load that starts or ends later. Threads left spinning beside a new CPU hog stall
    one another at every operation; one left alone when the hog ends wastes a core.

    Nothing goes into checkpoints: a resumed run counts the cores it finds.
    """

    def __init__(self, every: float = FOLLOW_SECONDS) -> None:
        self.every = every

    def on_train_begin(self, state: TrainingState) -> None:
        self._counter = FreeCoreCounter()
        self._due = time.monotonic() + self.every

    def on_batch_end(self, state: TrainingState) -> None:
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.every
        threads = self._counter.count()
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)


class GeneratorState(Callback):
    """Saves a random generator's state in checkpoints (the objective's, which draws corruption
    noise and a VAE's code samples), so that a resumed run draws what the run left alone
    would have."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["state"])


class CSVLogger(Callback):
    """Appends each epoch's logs to a CSV file, flushed at once so a crash loses nothing.

    With ``append`` (a resumed run) the rows already written are kept.
    """

    COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "seconds", "samples_per_s")

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self.append = append

    def on_train_begin(self, state: TrainingState) -> None:
        if not (self.append and self.path.exists()):
            with open_text(self.path, "w") as f:
                csv.writer(f).writerow(self.COLUMNS)

    @classmethod
    def _row(cls, logs: dict[str, float]) -> list[Any]:
        return [int(logs["epoch"])] + [
            f"{logs[c]:.6g}" if c in logs else "" for c in cls.COLUMNS[1:]
        ]

    @classmethod
    def write(cls, path: str | Path, history: list[dict[str, float]]) -> None:
        """Write a whole finished history (e.g. ``Autoencoder.history_``) in the same format,
        under a temporary name renamed when complete."""
        with published(path) as tmp, tmp.open("x", newline="") as f:
            csv.writer(f).writerows([cls.COLUMNS, *(cls._row(logs) for logs in history)])

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        with open_text(self.path, "a") as f:
            csv.writer(f).writerow(self._row(logs))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Rows of epochs after the checkpoint were written by the killed process: drop them
        # so that the resumed run writes each epoch once.
        done = int(state.get("epochs_logged", 0))
        lines = self.path.read_text().splitlines()
        with open_text(self.path, "w") as f:
            f.write("\n".join(lines[: 1 + done]) + "\n")

    def state_dict(self) -> dict[str, Any]:
        lines = self.path.read_text().count("\n") if self.path.exists() else 1
        return {"epochs_logged": lines - 1}


class KLWarmup(Callback):
    """Ramps a variational model's KL weight from 0 to 1 over the first ``epochs`` epochs.

    The weight is a function of the step alone, so a resumed run ramps exactly as before.
    """

    def __init__(self, objective: Objective, epochs: int) -> None:
        self.objective = objective
        self.epochs = epochs

    def _set(self, state: TrainingState) -> None:
        total = max(1, self.epochs * state.steps_per_epoch)
        self.objective.kl_weight = min(1.0, state.step / total)

    def on_epoch_begin(self, state: TrainingState) -> None:
        self._set(state)

    def on_batch_end(self, state: TrainingState) -> None:
        self._set(state)
