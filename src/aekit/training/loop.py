"""The training loop: one flat function, shared by the estimator and the CLI."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
from torch import nn

from aekit.training.callbacks import Callback, TrainingState
from aekit.training.guard import LossWindow, Reduce, host_values, weighted_sum


class BatchSource(Protocol):
    """Anything that yields the batches of one epoch (in-memory arrays, on-disk stores)."""

    @property
    def n_samples(self) -> int: ...

    def __len__(self) -> int: ...

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]: ...

    @property
    def final_share(self) -> tuple[int, float] | None:
        """How the epoch's last batch counts when it is not a plain mean (see
        :attr:`aekit.data.stream.StoreBatches.final_share`)."""


# (model, batch) -> mean loss; also takes the last batch's share where the source has one
LossFn = Callable[..., torch.Tensor]


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    # bf16 on CUDA: the matrix units' fast path, with float32's range (no loss scaling needed)
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def single_process(values: list[float]) -> list[float]:
    """The reduction of one process: its own sums are the totals."""
    return values


def evaluate(
    model: nn.Module,
    data: BatchSource,
    loss_fn: LossFn,
    device: torch.device,
    reduce: Reduce = single_process,
) -> float:
    """Sample-weighted mean loss over one pass of ``data``, without gradients; with several
    ranks, over every rank's share (``reduce`` sums across them)."""
    model.eval()
    losses: list[torch.Tensor] = []
    sizes: list[float] = []
    with torch.no_grad(), _autocast(device):
        for x in data.batches(0):
            x = x.to(device, non_blocking=True)
            losses.append(loss_fn(model, x))
            sizes.append(len(x))
    model.train()
    # One transfer for the whole pass, not one wait for the device per batch
    total = weighted_sum(host_values(losses), sizes)
    global_total, global_count = reduce([total, float(sum(sizes))])
    return global_total / max(global_count, 1.0)


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
    grad_clip: float = 0.0,
    val_every_steps: int = 0,
    resume: Callable[[TrainingState], None] | None = None,
    reduce: Reduce = single_process,
) -> TrainingState:
    """Train ``model`` for up to ``epochs`` epochs and return the final state with its history.

    Each epoch's logs hold ``epoch, train_loss, val_loss (when there is validation data), lr,
    seconds, samples_per_s``; callbacks read them to stop early, change the learning rate,
    log and checkpoint. ``resume`` puts a checkpoint back into the state before the first batch;
    training then continues at the saved position. A NaN or infinite loss raises
    :class:`DivergenceError` with the weights of before it (losses are read in windows, not per
    step: see :mod:`aekit.training.guard`). With several ranks, ``reduce`` sums
    losses and counts across them, so every rank logs and decides on the same global figures.
    """
    state = TrainingState(model, optimizer, epochs=epochs, steps_per_epoch=len(train_data))
    window = LossWindow(model, optimizer, reduce)
    state.settle = functools.partial(window.settle, state)
    for cb in callbacks:
        cb.on_train_begin(state)
    if resume is not None:
        resume(state)
    val = val_data if val_data is not None and val_data.n_samples > 0 else None

    model.train()
    for epoch in range(state.epoch, epochs):
        state.epoch = epoch
        window.open(state)
        started = time.perf_counter()
        for cb in callbacks:
            cb.on_epoch_begin(state)
        # A resumed epoch starts after the batches already trained on; they are not read again
        for x in train_data.batches(epoch, start=state.batch):
            # non_blocking lets the copy overlap compute when the batch sits in pinned memory
            x = x.to(device, non_blocking=True)
            share = train_data.final_share if state.batch == len(train_data) - 1 else None
            loss = _step(model, optimizer, loss_fn, x, device, grad_clip, share)
            # Read at the next check, not now (see guard.py). A share's loss is the global
            # batch's mean over this rank's part: it counts for the real rows over the ranks
            window.add(loss, len(x) if share is None else 1 / share[1])
            state.step += 1
            state.batch += 1
            if window.due:
                state.settle()
            for cb in callbacks:
                cb.on_batch_end(state)
            if val is not None and val_every_steps and state.step % val_every_steps == 0:
                state.settle()
                step_logs = {"step": float(state.step)}
                step_logs["val_loss"] = evaluate(model, val, loss_fn, device, reduce)
                for cb in callbacks:
                    cb.on_validation(state, step_logs)
        state.settle()
        seconds = time.perf_counter() - started

        # The epoch's record: what callbacks decide on and what metrics.csv holds
        logs = _epoch_logs(state, optimizer, seconds, reduce)
        if val is not None:
            logs["val_loss"] = evaluate(model, val, loss_fn, device, reduce)
        state.history.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(state, logs)
        state.batch, state.loss_sum, state.sample_count = 0, 0.0, 0
        if state.stop:
            break

    for cb in callbacks:
        cb.on_train_end(state)
    model.eval()
    return state


def _step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    x: torch.Tensor,
    device: torch.device,
    grad_clip: float,
    share: tuple[int, float] | None = None,
) -> torch.Tensor:
    """One optimiser step on batch ``x``; the loss it logs stays on the device: over every
    sample of the batch, also where the objective left some out of the update (a trim), so
    that the training curve is one quantity when trimming stops."""
    with _autocast(device):
        loss = loss_fn(model, x) if share is None else loss_fn(model, x, share)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    monitored = getattr(loss_fn, "monitored", None)
    return loss if monitored is None else monitored


def _epoch_logs(
    state: TrainingState, optimizer: torch.optim.Optimizer, seconds: float, reduce: Reduce
) -> dict[str, float]:
    """The epoch's training figures, summed over every rank."""
    loss_sum, sample_count = reduce([state.loss_sum, float(state.sample_count)])
    return {
        "epoch": float(state.epoch + 1),
        "train_loss": loss_sum / max(sample_count, 1),
        "lr": optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "samples_per_s": sample_count / seconds if seconds > 0 else math.inf,
    }
