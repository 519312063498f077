"""The conv family: convolutional, for 2-D images of any size and channel count, and for windows
of series (steps, channels), with 1-D convolutions along time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from aekit.errors import SettingError
from aekit.models.base import ACTIVATIONS, mlp


def _most_stages(size: int) -> int:
    """Downsampling stages an image side of ``size`` pixels takes: each needs 2 pixels or more
    in, and halves them (rounded up)."""
    stages = 0
    while size >= 2:
        stages += 1
        size = _halve(size)
    return stages


def _halve(size: int) -> int:
    return (size + 1) // 2  # a 3x3 convolution with stride 2 and padding 1


class ChannelsFirst(nn.Sequential):
    """Layers that work on images channels first, ``(B, C, H, W)``, fed samples as stores hold
    them, channels last ``(B, H, W, C)`` (the channels-last memory format on CUDA, where
    convolutions run fastest so).

    Examples
    --------
    >>> ChannelsFirst(nn.Conv2d(3, 8, 3, padding=1))(torch.zeros(2, 5, 5, 3)).shape
    torch.Size([2, 8, 5, 5])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(-1, 1)  # (B, H, W, C) -> (B, C, H, W); (B, T, C) -> (B, C, T)
        if x.is_cuda and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


class ChannelsLast(nn.Sequential):
    """Layers whose output is channels first, ``(B, C, H, W)``, returned channels last as the
    samples are, ``(B, H, W, C)``.

    Examples
    --------
    >>> ChannelsLast(nn.Conv2d(8, 3, 3, padding=1))(torch.zeros(2, 8, 5, 5)).shape
    torch.Size([2, 5, 5, 3])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).movedim(1, -1)


def conv_network(
    sample_shape: Sequence[int],
    latent_dim: int,
    *,
    channels: Sequence[int],
    hidden: Sequence[int],
    activation: str,
) -> tuple[nn.Module, nn.Module]:
    """Strided convolutions of width 3 down (each halving every side), optional dense layers
    (``hidden``), and the mirror image up from the code, with transposed convolutions to
    exactly the input's size (odd sizes included). Samples are images ``(H, W, C)`` (2-D
    convolutions) or windows of a series ``(T, C)`` (1-D convolutions along time)."""
    if len(sample_shape) not in (2, 3):
        raise SettingError(
            f"the conv kind needs image samples (height, width, channels) or windows of a "
            f"series (steps, channels); got samples of shape {tuple(sample_shape)}: ingest "
            "images or series, or use kind='dense'."
        )
    *sides, n_channels = sample_shape
    conv, transposed = (nn.Conv2d, nn.ConvTranspose2d) if len(sides) == 2 else (
        nn.Conv1d, nn.ConvTranspose1d
    )  # fmt: skip
    sizes = [tuple(sides)]
    for _ in channels:
        sizes.append(tuple(_halve(side) for side in sizes[-1]))
    if min(sizes[-2]) < 2:
        most = _most_stages(min(sides))
        fix = (
            f"use at most {most} conv channels entries"
            if most
            else "they cannot be downsampled at all: use kind='dense'"
        )
        what = "images of " + "x".join(map(str, sides)) if len(sides) == 2 else (
            f"windows of {sides[0]} steps"
        )  # fmt: skip
        raise SettingError(f"{what} are too small for {len(channels)} downsampling stages; {fix}.")
    act = ACTIVATIONS[activation]
    down: list[nn.Module] = []
    for c_in, c_out in zip([n_channels, *channels[:-1]], channels, strict=True):
        down += [conv(c_in, c_out, 3, stride=2, padding=1), act()]
    flat = channels[-1] * int(np.prod(sizes[-1]))
    # Dense layers between the convolutions and the code, mirrored in the decoder
    features = ChannelsFirst(
        *down, nn.Flatten(), *mlp([flat, *hidden], activation, last_activation=True)
    )
    up: list[nn.Module] = [
        *mlp([latent_dim, *reversed(hidden), flat], activation, last_activation=True),
        nn.Unflatten(1, (channels[-1], *sizes[-1])),
    ]
    outs = [*reversed(channels[:-1]), n_channels]
    for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs, strict=True)):
        into, out = sizes[-1 - i], sizes[-2 - i]
        # output_padding picks the odd or even size the matching encoder stage came from
        pad: Any = tuple(o - (2 * n - 1) for n, o in zip(into, out, strict=True))
        up.append(transposed(c_in, c_out, 3, stride=2, padding=1, output_padding=pad))
        if i < len(channels) - 1:
            up.append(act())
    return features, ChannelsLast(*up)
