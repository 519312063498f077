"""The learning-rate range test: train briefly while raising the rate, watch the loss."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch

from aekit.training.loop import BatchSource, LossFn


@dataclass
class LRRange:
    lrs: np.ndarray
    losses: np.ndarray  # smoothed
    suggestion: float


def find_lr(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    data: BatchSource,
    device: torch.device,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    steps: int = 100,
) -> LRRange:
    """Raise the learning rate geometrically from ``min_lr`` to ``max_lr`` over ``steps``
    batches and record the (exponentially smoothed) loss; stop once it exceeds 4 times its best.

    The suggestion is a tenth of the rate at the smoothed loss's minimum: the loss still falls
    fast there, well before the rate where it blows up. The model and optimiser are left as
    they were.
    """
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    factor = (max_lr / min_lr) ** (1 / max(1, steps - 1))
    lrs, losses = [], []
    smooth, best = 0.0, math.inf  # exponential average of the loss, bias-corrected below
    batches = (x for epoch in range(10**6) for x in data.batches(epoch))
    model.train()
    for i, x in enumerate(islice(batches, steps)):
        lr = min_lr * factor**i
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model, x.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            break
        smooth = 0.9 * smooth + 0.1 * value
        corrected = smooth / (1 - 0.9 ** (i + 1))
        lrs.append(lr)
        losses.append(corrected)
        best = min(best, corrected)
        if corrected > 4 * best:
            break
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    lr_arr, loss_arr = np.array(lrs), np.array(losses)
    suggestion = float(lr_arr[int(np.argmin(loss_arr))] / 10) if len(lrs) else min_lr
    return LRRange(lr_arr, loss_arr, suggestion)
