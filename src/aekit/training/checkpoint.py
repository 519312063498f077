"""Checkpoints: everything needed to resume, written atomically.

A checkpoint holds the weights, the optimiser, every callback's state (schedules, early stopping
with its best weights), the RNG states, the position (epoch and batches done), the epoch's
running loss, the history and the run's configuration. It is written to a temporary name, synced
and renamed, so a process killed while writing leaves the previous checkpoint as it was. Loading
uses ``torch.load(weights_only=True)``: nothing is unpickled.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from aekit.atomic import write_bytes
from aekit.errors import AekitError
from aekit.training.callbacks import Callback, MonitorCallback, TrainingState

_NAME = re.compile(r"^step-(\d{9})\.pt$")


def _write_atomically(payload: dict[str, Any], path: Path) -> None:
    # Serialised in memory first (a checkpoint is the size of the model and its optimiser):
    # torch's own file writer turns a full disk into an opaque RuntimeError
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getbuffer(), sync=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (temporary files are ignored)."""
    found = sorted(p for p in folder.glob("step-*.pt") if _NAME.match(p.name))
    return found[-1] if found else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's content: tensors and plain values only, never an object unpickled."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own advice (load it with weights_only=False) is the unsafe way: left out
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise AekitError(
            f"{path}: not a checkpoint aekit wrote: it holds a Python object{what}, and aekit "
            "loads tensors and plain values only, never running a file's code; delete it to use "
            "the one before."
        ) from exc
    except Exception as exc:
        first = str(exc).strip().split("\n", 1)[0][:200]
        raise AekitError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {first}); delete it to "
            "use the one before."
        ) from exc


class Checkpointer(Callback):
    """Writes a checkpoint every ``every_steps`` optimiser steps and at each epoch end, keeps the
    last ``keep_last`` of them, and ``best.pt`` for the best monitored value.

    ``callbacks`` are the run's callbacks whose state goes into every checkpoint.
    """

    def __init__(
        self,
        folder: Path,
        callbacks: list[Callback],
        config: dict[str, Any],
        every_steps: int = 0,
        keep_last: int = 2,
        monitor: str = "val_loss",
        write: bool = True,
    ) -> None:
        self.folder = folder
        self.callbacks = callbacks
        self.config = config
        self.every_steps = every_steps
        self.keep_last = keep_last
        self.best = MonitorCallback(monitor)
        self.write = write  # False on ranks other than 0: they track state but write nothing
        self.last_path: Path | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.best.on_train_begin(state)

    def on_batch_end(self, state: TrainingState) -> None:
        if self.every_steps and state.step % self.every_steps == 0:
            if state.batch < state.steps_per_epoch:  # the epoch end writes its own
                # Every process checks the losses here, so none writes diverged weights
                state.settle()
                if self.write:
                    self.save(state, epoch=state.epoch, batch=state.batch)

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        improved = self.best.monitor in logs and self.best.update(state, logs)
        if not self.write:
            return
        path = self.save(state, epoch=state.epoch + 1, batch=0)
        if improved:
            write_bytes(self.folder / "best.pt", path.read_bytes(), sync=True)

    def save(self, state: TrainingState, epoch: int, batch: int) -> Path:
        payload = {
            "format": 1,
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "best": self.best.state_dict(),
            "position": {"epoch": epoch, "batch": batch, "step": state.step},
            "running": {
                "loss_sum": state.loss_sum if batch else 0.0,
                "sample_count": state.sample_count if batch else 0,
            },
            "history": state.history,
            # torch's global generators, for any draw a network's layers (a dropout), a
            # callback or a loss makes; the objective's own (noise, VAE samples) is
            # GeneratorState's, data orders need none
            "rng": {
                "torch": torch.get_rng_state(),
                **({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_initialized() else {}),
            },
            "config": self.config,
        }
        path = self.folder / f"step-{state.step:09d}.pt"
        _write_atomically(payload, path)
        self.last_path = path
        kept = sorted(p for p in self.folder.glob("step-*.pt") if _NAME.match(p.name))
        for old in kept[: -self.keep_last]:
            old.unlink()
        return path

    def state_dict(self) -> dict[str, Any]:
        return {}


def restore(state: TrainingState, payload: dict[str, Any], checkpointer: Checkpointer) -> None:
    """Put a checkpoint back: weights, optimiser, callbacks, RNGs, position and history."""
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    # By name: rank 0 also tracks its logger, which other ranks do not run
    for cb in checkpointer.callbacks:
        if type(cb).__name__ in payload["callbacks"]:
            cb.load_state_dict(payload["callbacks"][type(cb).__name__])
    checkpointer.best.load_state_dict(payload["best"])
    position = payload["position"]
    state.epoch, state.batch, state.step = position["epoch"], position["batch"], position["step"]
    state.loss_sum = payload["running"]["loss_sum"]
    state.sample_count = payload["running"]["sample_count"]
    state.history = list(payload["history"])
    torch.set_rng_state(payload["rng"]["torch"])
    if "cuda" in payload["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(payload["rng"]["cuda"])
