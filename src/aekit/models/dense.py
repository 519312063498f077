"""Fully connected autoencoder of any depth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from aekit.models.base import AutoencoderModule, mlp


class DenseAutoencoder(AutoencoderModule):
    """Encoder ``prod(sample_shape) -> *hidden -> latent_dim`` and its mirror image as decoder.

    The code layer and the output layer are linear: a ReLU on the code (the usual tutorial
    choice) silently kills latent dimensions, and a squashing output cannot reach standardised
    values beyond its range. Samples of any shape are flattened.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int],
        activation: str,
        mean: np.ndarray,
        std: np.ndarray,
        variational: bool = False,
        output: str = "standardized",
        *,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
    ) -> None:
        super().__init__(
            sample_shape, latent_dim, mean, std, variational, output, low=low, high=high
        )
        n_in = int(np.prod(self.sample_shape))
        widths = [n_in, *hidden]
        self.features = nn.Sequential(nn.Flatten(), *mlp(widths, activation, last_activation=True))
        self._build_code(widths[-1])
        self.decoder = mlp([latent_dim, *reversed(hidden), n_in], activation, last_activation=False)
