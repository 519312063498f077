"""The training loop: one flat function, shared by the estimator and the CLI."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
from torch import nn

from aekit.training.callbacks import Callback, TrainingState


class BatchSource(Protocol):
    """Anything that yields the batches of one epoch (in-memory arrays, on-disk stores)."""

    @property
    def n_samples(self) -> int: ...

    def batches(self, epoch: int) -> Iterator[torch.Tensor]: ...


LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def evaluate(model: nn.Module, data: BatchSource, loss_fn: LossFn, device: torch.device) -> float:
    """Sample-weighted mean loss over one pass of ``data``, without gradients."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x in data.batches(0):
            x = x.to(device, non_blocking=True)
            total += loss_fn(model, x).item() * len(x)
            count += len(x)
    return total / max(count, 1)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    train_data: BatchSource,
    val_data: BatchSource | None,
    *,
    epochs: int,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainingState:
    """Train ``model`` for up to ``epochs`` epochs and return the final state with its history.

    Each epoch's logs hold ``epoch, train_loss, val_loss (when there is validation data), lr,
    seconds, samples_per_s``; callbacks read them to stop early or keep the best weights.
    """
    state = TrainingState(model=model, optimizer=optimizer)
    for cb in callbacks:
        cb.on_train_begin(state)

    for epoch in range(epochs):
        state.epoch = epoch
        model.train()
        started = time.perf_counter()
        total, count = 0.0, 0
        for x in train_data.batches(epoch):
            # non_blocking lets the copy overlap compute when the batch sits in pinned memory
            x = x.to(device, non_blocking=True)
            loss = loss_fn(model, x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            count += len(x)
        seconds = time.perf_counter() - started

        # The epoch's record: what callbacks decide on and what metrics.csv will hold
        logs = {
            "epoch": float(epoch + 1),
            "train_loss": total / max(count, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": seconds,
            "samples_per_s": count / seconds if seconds > 0 else math.inf,
        }
        if val_data is not None and val_data.n_samples > 0:
            logs["val_loss"] = evaluate(model, val_data, loss_fn, device)
        state.history.append(logs)
        if on_epoch is not None:
            on_epoch(logs)

        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        if state.stop:
            break

    for cb in callbacks:
        cb.on_train_end(state)
    return state
