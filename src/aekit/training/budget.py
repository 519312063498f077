"""Batch size, epochs and patience chosen from the data (``auto``): a budget of optimiser steps.

What a fit costs, and to a first approximation what it needs to converge, is a number of
optimiser steps, not of epochs. Fixed epochs make a 150-row table train for 5 steps an epoch
and a 100,000-row table for 3,000, so one default cannot serve both. ``auto`` gives every data
set about :data:`STEP_BUDGET` steps instead:

- the batch is 32 and doubles (up to 512) while an epoch would take more than
  :data:`EPOCH_STEPS` steps, so that large tables are read in fewer, larger steps, each of
  which costs the CPU little more than a small one;
- the epochs are what the budget buys at that batch, at least :data:`MIN_EPOCHS` (so that
  early stopping has epochs to compare) and at most :data:`MAX_EPOCHS`;
- early stopping waits a quarter of the epochs without improvement, 5 to 30 (a tenth, tried
  first, stopped a digits VAE at a noisy plateau: its samples' classifier score fell from
  0.78 to 0.74; ``python -m bench digits``).

A setting given as a number is kept as it is. ``python -m bench fit-time`` measures the cost.

Examples
--------
>>> auto_batch_size(160), auto_batch_size(9_000), auto_batch_size(1_000_000)
(32, 128, 512)
>>> auto_epochs(5), auto_epochs(71), auto_epochs(20_000)
(300, 85, 5)
"""

from __future__ import annotations

from aekit.config import RunConfig

STEP_BUDGET = 6_000
EPOCH_STEPS = 128
MIN_BATCH, MAX_BATCH = 32, 512
MIN_EPOCHS, MAX_EPOCHS = 5, 300
MIN_PATIENCE, MAX_PATIENCE = 5, 30


def auto_batch_size(n_train: int, world_size: int = 1) -> int:
    """The batch of ``n_train`` training samples, rounded up to a multiple of ``world_size``
    (the batch is global: every process reads an equal share of it)."""
    batch = MIN_BATCH
    while batch < MAX_BATCH and n_train > EPOCH_STEPS * batch:
        batch *= 2
    return -(-batch // world_size) * world_size


def auto_epochs(steps_per_epoch: int) -> int:
    """The epochs that spend about :data:`STEP_BUDGET` steps, within the bounds."""
    return min(MAX_EPOCHS, max(MIN_EPOCHS, round(STEP_BUDGET / max(1, steps_per_epoch))))


def auto_patience(epochs: int) -> int:
    return min(MAX_PATIENCE, max(MIN_PATIENCE, epochs // 4))


def resolve_budget(config: RunConfig, batch_size: int, steps_per_epoch: int) -> RunConfig:
    """``config`` with its ``auto`` batch size, epochs and patience replaced by numbers, given
    the batch the data sources chose and the steps of an epoch at that batch."""
    t = config.train
    epochs = auto_epochs(steps_per_epoch) if t.epochs == "auto" else t.epochs
    patience = t.early_stopping_patience
    return config.model_copy(
        update={
            "data": config.data.model_copy(update={"batch_size": batch_size}),
            "train": t.model_copy(
                update={
                    "epochs": epochs,
                    "early_stopping_patience": (
                        auto_patience(epochs) if patience == "auto" else patience
                    ),
                }
            ),
        }
    )


def budget_note(config: RunConfig, resolved: RunConfig, steps_per_epoch: int) -> str:
    """One line saying the batch, epochs and patience of a fit, and which were chosen here."""

    def chosen(value: object) -> str:
        return " (auto)" if value == "auto" else ""

    d, t, r = config.data, config.train, resolved.train
    patience = (
        f"stop after {r.early_stopping_patience}{chosen(t.early_stopping_patience)} epochs "
        "without improvement"
        if r.early_stopping_patience
        else "no early stopping"
    )
    return (
        f"schedule: batch {resolved.data.batch_size}{chosen(d.batch_size)}, "
        f"{steps_per_epoch} steps an epoch, at most {r.epochs}{chosen(t.epochs)} epochs, "
        f"{patience}"
    )
