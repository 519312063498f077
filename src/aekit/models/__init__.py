"""Autoencoder families, one module each, and the registry that builds them by name."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from aekit.errors import SettingError
from aekit.memory import require_memory
from aekit.models.base import ACTIVATIONS, AutoencoderModule
from aekit.models.conv import ConvAutoencoder
from aekit.models.dense import DenseAutoencoder
from aekit.models.scaling import Standardizer
from aekit.params import KINDS


def auto_hidden(
    kind: str, hidden: Sequence[int] | str, sample_shape: Sequence[int]
) -> tuple[int, ...]:
    """The dense widths ``hidden`` stands for: itself, or for ``'auto'`` (128,) after
    convolutions, (64,) for inputs of at most 32 features and (512, 256) for larger ones."""
    if hidden != "auto":
        return tuple(int(w) for w in hidden)
    if kind == "conv" or (kind == "vae" and len(sample_shape) == 3):
        return (128,)
    return (64,) if int(np.prod(sample_shape)) <= 32 else (512, 256)


def auto_activation(activation: str, sample_shape: Sequence[int]) -> str:
    """The nonlinearity ``activation`` stands for: for ``'auto'``, tanh on small tables (at most
    32 features, where its smoothness gave steadier codes) and GELU otherwise."""
    if activation != "auto":
        return activation
    small_table = len(sample_shape) == 1 and int(np.prod(sample_shape)) <= 32
    return "tanh" if small_table else "gelu"


def _parameter_count(
    sample_shape: Sequence[int],
    latent_dim: int,
    hidden: Sequence[int],
    conv_channels: Sequence[int],
) -> int:
    """About how many weights the encoder and its mirrored decoder hold (biases aside): what
    the memory check needs, before any tensor is made."""
    n, width = 0, int(np.prod(sample_shape))
    if conv_channels and len(sample_shape) == 3:  # 3x3 convolutions, each halving H and W
        channels = [sample_shape[-1], *conv_channels]
        n += sum(9 * a * b for a, b in pairwise(channels))
        stride = 2 ** len(conv_channels)
        width = (sample_shape[0] // stride) * (sample_shape[1] // stride) * conv_channels[-1]
    widths = [width, *hidden, 2 * latent_dim]
    n += sum(a * b for a, b in pairwise(widths))
    return 2 * n


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
        raise SettingError(f"unknown kind '{kind}'; use one of {', '.join(KINDS)}.")
    images = len(sample_shape) == 3
    variational = kind == "vae"
    convolutional = kind == "conv" or (variational and images)
    n = _parameter_count(sample_shape, latent_dim, hidden, conv_channels if convolutional else ())
    # weights, gradients and AdamW's two moments, float32
    require_memory(
        16 * n,
        f"a {kind} model of about {n:,} parameters",
        "lower --hidden, --latent-dim or --conv-channels",
    )
    if convolutional:
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
    "auto_activation",
    "auto_hidden",
    "build_model",
]
