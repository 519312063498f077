"""Loss terms as pure functions of tensors."""

from __future__ import annotations

import torch


def reconstruction_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error over all non-batch dimensions. (B, ...) -> (B,)"""
    return (x_hat - x).pow(2).flatten(1).mean(dim=1)


def mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Batch mean squared error, the loss for standardised data."""
    return reconstruction_error(x_hat, x).mean()
