"""Autoencoder families, one module each, and the registry that builds them by name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aekit.errors import AekitError
from aekit.models.base import ACTIVATIONS, AutoencoderModule
from aekit.models.conv import ConvAutoencoder
from aekit.models.dense import DenseAutoencoder
from aekit.models.scaling import Standardizer

KINDS = ("dense", "conv", "vae")


def build_model(
    kind: str,
    sample_shape: Sequence[int],
    latent_dim: int,
    *,
    hidden: Sequence[int],
    conv_channels: Sequence[int],
    activation: str,
    mean: np.ndarray,
    std: np.ndarray,
    output: str = "standardized",
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> AutoencoderModule:
    """The model a kind names. ``vae`` is variational on a convolutional body for images and a
    dense one for tables."""
    if kind not in KINDS:
        raise AekitError(f"unknown kind '{kind}'; use one of {', '.join(KINDS)}.")
    images = len(sample_shape) == 3
    variational = kind == "vae"
    if kind == "conv" or (variational and images):
        return ConvAutoencoder(
            sample_shape,
            latent_dim,
            conv_channels,
            hidden,
            activation,
            mean,
            std,
            variational,
            output,
            low=low,
            high=high,
        )
    return DenseAutoencoder(
        sample_shape,
        latent_dim,
        hidden,
        activation,
        mean,
        std,
        variational,
        output,
        low=low,
        high=high,
    )


__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "AutoencoderModule",
    "ConvAutoencoder",
    "DenseAutoencoder",
    "Standardizer",
    "build_model",
]
