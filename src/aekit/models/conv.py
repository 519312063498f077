"""The conv family: convolutional, for 2-D images of any size and channel count."""

from __future__ import annotations

from collections.abc import Sequence

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
        x = x.permute(0, 3, 1, 2)
        if x.is_cuda:
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
        return super().forward(x).permute(0, 2, 3, 1)


def conv_network(
    sample_shape: Sequence[int],
    latent_dim: int,
    *,
    channels: Sequence[int],
    hidden: Sequence[int],
    activation: str,
) -> tuple[nn.Module, nn.Module]:
    """Strided 3x3 convolutions down (each halving height and width), optional dense layers
    (``hidden``), and the mirror image up from the code, with transposed convolutions to
    exactly the input's size (odd sizes included). Samples are ``(H, W, C)``."""
    if len(sample_shape) != 3:
        raise SettingError(
            f"the conv kind needs image samples (height, width, channels); got samples of "
            f"shape {tuple(sample_shape)}: ingest images, or pass arrays of shape "
            "(n, height, width[, channels]), or use kind='dense'."
        )
    height, width, n_channels = sample_shape
    sizes = [(height, width)]
    for _ in channels:
        sizes.append((_halve(sizes[-1][0]), _halve(sizes[-1][1])))
    if min(sizes[-2]) < 2:
        most = _most_stages(min(height, width))
        fix = (
            f"use at most {most} conv channels entries"
            if most
            else "they cannot be downsampled at all: use kind='dense'"
        )
        raise SettingError(
            f"images of {height}x{width} are too small for {len(channels)} downsampling "
            f"stages; {fix}."
        )
    act = ACTIVATIONS[activation]
    down: list[nn.Module] = []
    for c_in, c_out in zip([n_channels, *channels[:-1]], channels, strict=True):
        down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), act()]
    h, w = sizes[-1]
    flat = channels[-1] * h * w
    # Dense layers between the convolutions and the code, mirrored in the decoder
    features = ChannelsFirst(
        *down, nn.Flatten(), *mlp([flat, *hidden], activation, last_activation=True)
    )
    up: list[nn.Module] = [
        *mlp([latent_dim, *reversed(hidden), flat], activation, last_activation=True),
        nn.Unflatten(1, (channels[-1], h, w)),
    ]
    outs = [*reversed(channels[:-1]), n_channels]
    for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs, strict=True)):
        (h_in, w_in), (h_out, w_out) = sizes[-1 - i], sizes[-2 - i]
        # output_padding picks the odd or even size the matching encoder stage came from
        pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
        up.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad))
        if i < len(channels) - 1:
            up.append(act())
    return features, ChannelsLast(*up)
