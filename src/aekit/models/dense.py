"""Fully connected autoencoder of any depth."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aekit.models.scaling import Standardizer

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


def _mlp(widths: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers through ``widths`` with an activation between them, none after the last.

    The last layer is linear on both sides of the code: a ReLU on the code (the usual tutorial
    choice) silently kills latent dimensions, and a squashing output cannot reach standardised
    values beyond its range.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class DenseAutoencoder(nn.Module):
    """Encoder ``prod(sample_shape) -> *hidden -> latent_dim`` and its mirror image as decoder.

    The model works in standardised units inside and raw units at its edges: ``encode`` takes raw
    inputs, ``decode`` returns raw outputs. Training losses use the ``*_normalized`` pair so that
    every feature counts equally whatever its unit. Samples of any shape are flattened (an image
    ``(H, W, C)`` with per-channel statistics, a table row ``(F,)`` with per-feature ones).
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int],
        activation: str,
        mean: np.ndarray,
        std: np.ndarray,
    ) -> None:
        super().__init__()
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.scaler = Standardizer(mean, std)
        widths = [int(np.prod(self.sample_shape)), *hidden, latent_dim]
        self.encoder = _mlp(widths, activation)
        self.decoder = _mlp(widths[::-1], activation)

    def encode_normalized(self, x: torch.Tensor) -> torch.Tensor:  # (B, *S) -> (B, L)
        return self.encoder(x.flatten(1))

    def decode_normalized(self, z: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, *S)
        return self.decoder(z).view(len(z), *self.sample_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_normalized(self.scaler(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.scaler.inverse(self.decode_normalized(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
