"""Networks written as a user of aekit writes them, in a module of their own, outside aekit.

Each is a factory ``build(sample_shape, latent_dim, **kwargs) -> (features, decoder)``; the tests
name them by import path (``tests.networks:table_net``), as a user's config file does.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from torch import nn


def table_net(
    sample_shape: Sequence[int], latent_dim: int, *, width: int = 32, dropout: float = 0.1
) -> tuple[nn.Module, nn.Module]:
    """A table network with LayerNorm and dropout, which the built-in dense family has not."""
    n = int(np.prod(sample_shape))
    features = nn.Sequential(
        nn.Flatten(), nn.Linear(n, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout)
    )
    decoder = nn.Sequential(nn.Linear(latent_dim, width), nn.GELU(), nn.Linear(width, n))
    return features, decoder


def dense_layers(
    sample_shape: Sequence[int], latent_dim: int, *, hidden: Sequence[int]
) -> tuple[nn.Module, nn.Module]:
    """The layers the built-in dense family builds with GELU, written out by hand."""
    widths = [int(np.prod(sample_shape)), *hidden]
    down: list[nn.Module] = [nn.Flatten()]
    for a, b in pairwise(widths):
        down += [nn.Linear(a, b), nn.GELU()]
    up: list[nn.Module] = []
    back = [latent_dim, *reversed(widths)]
    for i, (a, b) in enumerate(pairwise(back)):
        up += [nn.Linear(a, b)] + ([nn.GELU()] if i < len(back) - 2 else [])
    return nn.Sequential(*down), nn.Sequential(*up)


def wrong_output(sample_shape: Sequence[int], latent_dim: int) -> tuple[nn.Module, nn.Module]:
    """A factory with a mistake: its features keep the samples' shape (no flat vector)."""
    return nn.Identity(), nn.Linear(latent_dim, int(np.prod(sample_shape)))
