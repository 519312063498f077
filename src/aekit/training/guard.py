"""Divergence checks without a host synchronisation at every step.

Reading a loss on the host (``loss.item()``) makes the host wait for the device to finish the
step, so on a GPU the next batch cannot be queued while this one computes. The training loop
instead keeps each step's loss on the device in a :class:`LossWindow` and reads the window's
losses in one transfer at a check: every ``CHECK_EVERY`` steps, before a checkpoint or a
validation, and at each epoch's end.

A non-finite loss must still stop training before it touches the weights. The window starts
with a copy of the weights (one device-to-device copy per window, the size of the model); a
check that finds a non-finite loss puts that copy back and raises :class:`DivergenceError`
naming the first bad step. Training is otherwise unchanged: the same operations run in the same
order, so results stay bitwise those of a per-step check.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from aekit.errors import DivergenceError
from aekit.training.callbacks import TrainingState

# Steps between checks: one transfer per this many steps, and at most this many steps of work
# lost when training diverges.
CHECK_EVERY = 32

Reduce = Callable[[list[float]], list[float]]


def host_values(losses: list[torch.Tensor]) -> list[float]:
    """The values of scalar losses kept on the device, read in one transfer."""
    return torch.stack(losses).float().tolist() if losses else []


def weighted_sum(values: list[float], sizes: list[float]) -> float:
    """Sum of each batch's mean loss times its size, in batch order (as a per-step sum gave)."""
    total = 0.0
    for value, n in zip(values, sizes, strict=True):
        total += value * n
    return total


class LossWindow:
    """The losses of the steps since the last check, with the weights from before them."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, reduce: Reduce) -> None:
        self.optimizer = optimizer
        self.reduce = reduce
        self.weights = [t for t in model.state_dict(keep_vars=True).values()]
        self.saved = [t.detach().clone() for t in self.weights]
        self.losses: list[torch.Tensor] = []
        self.sizes: list[float] = []
        self.first_step = self.first_batch = self.epoch = 0

    def open(self, state: TrainingState) -> None:
        """Start a window at the state's position; its weights are the ones a divergence
        restores."""
        self.losses, self.sizes = [], []
        self.first_step, self.epoch, self.first_batch = state.step, state.epoch, state.batch
        with torch.no_grad():
            torch._foreach_copy_(self.saved, [t.detach() for t in self.weights])

    def add(self, loss: torch.Tensor, n_samples: float) -> None:
        self.losses.append(loss.detach())
        self.sizes.append(n_samples)

    @property
    def due(self) -> bool:
        return len(self.losses) >= CHECK_EVERY

    def settle(self, state: TrainingState) -> None:
        """Check the window, add its losses to the epoch's running loss, open the next one."""
        loss_sum, sample_count = self.check()
        state.loss_sum += loss_sum
        state.sample_count += sample_count
        self.open(state)

    def check(self) -> tuple[float, float]:
        """Read the window's losses (the one synchronisation) and return their sample-weighted
        sum and sample count; raise :class:`DivergenceError` with the weights put back when one
        is not finite here, or on another process."""
        values = host_values(self.losses)
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        # Every process checks at the same steps; a divergence anywhere stops all of them
        # before any writes a checkpoint of weights the bad gradients reached.
        if self.reduce([0.0 if bad is None else 1.0])[0] > 0:
            with torch.no_grad():
                torch._foreach_copy_([t.detach() for t in self.weights], self.saved)
            raise self._diverged(values, bad)
        return weighted_sum(values, self.sizes), sum(self.sizes)

    def _diverged(self, values: list[float], bad: int | None) -> DivergenceError:
        lr = self.optimizer.param_groups[0]["lr"]
        if bad is None:
            where = (
                f"on another process between steps {self.first_step + 1} and "
                f"{self.first_step + len(values)}"
            )
            value = "non-finite"
        else:
            where = (
                f"at step {self.first_step + bad + 1} (epoch {self.epoch + 1}, batch "
                f"{self.first_batch + bad + 1})"
            )
            value = str(values[bad])
        return DivergenceError(
            f"the loss became {value} {where}; the learning rate ({lr:.3g}) is likely too high "
            "for this model, or the data hold extreme values: lower train.learning_rate or set "
            "train.grad_clip."
        )
