"""The dense family: fully connected, of any depth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from aekit.models.base import mlp


def dense_network(
    sample_shape: Sequence[int], latent_dim: int, *, hidden: Sequence[int], activation: str
) -> tuple[nn.Module, nn.Module]:
    """Encoder ``prod(sample_shape) -> *hidden`` and its mirror image ``latent_dim -> *hidden
    reversed -> prod(sample_shape)`` as decoder.

    The code layer (aekit's) and the output layer are linear: a ReLU on the code (the usual
    tutorial choice) silently kills latent dimensions, and a squashing output cannot reach
    standardised values beyond its range. Samples of any shape are flattened.
    """
    n_in = int(np.prod(sample_shape))
    widths = [n_in, *hidden]
    features = nn.Sequential(nn.Flatten(), *mlp(widths, activation, last_activation=True))
    decoder = mlp([latent_dim, *reversed(hidden), n_in], activation, last_activation=False)
    return features, decoder
