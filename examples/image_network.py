"""Your own network for images: residual blocks with group normalisation, which the built-in
conv family has not.

    python examples/image_network.py      # fits it on scikit-learn's 8x8 digits

Samples reach ``features`` as stores hold them, channels last ``(B, H, W, C)``, standardised;
:class:`aekit.models.ChannelsFirst` turns them to ``(B, C, H, W)`` for ``nn.Conv2d``, and
:class:`aekit.models.ChannelsLast` turns the decoder's output back. aekit adds the scaling, the
code layer and the output around the two parts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aekit.models import ChannelsFirst, ChannelsLast


class Residual(nn.Module):
    """Two 3x3 convolutions with group normalisation, added to their input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(4, channels), nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(4, channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x + self.body(x))


def build(
    sample_shape: Sequence[int], latent_dim: int, *, channels: int = 16, blocks: int = 1
) -> tuple[nn.Module, nn.Module]:
    """(features, decoder): a residual stage, one strided convolution halving the image, and
    their mirror image up from the code."""
    height, width, colours = sample_shape
    half = ((height + 1) // 2, (width + 1) // 2)
    features = ChannelsFirst(
        nn.Conv2d(colours, channels, 3, padding=1),
        *[Residual(channels) for _ in range(blocks)],
        nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.GELU(), nn.Flatten(),
    )  # fmt: skip
    # output_padding brings the halved size back to the original, odd or even
    pad = (height - (2 * half[0] - 1), width - (2 * half[1] - 1))
    decoder = ChannelsLast(
        nn.Linear(latent_dim, channels * half[0] * half[1]), nn.GELU(),
        nn.Unflatten(1, (channels, *half)),
        nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=pad),
        *[Residual(channels) for _ in range(blocks)],
        nn.Conv2d(channels, colours, 3, padding=1),
    )  # fmt: skip
    return features, decoder


def main(epochs: int | str = "auto") -> dict[str, float]:
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    from aekit import Autoencoder

    X = (load_digits().data / 16).astype(np.float32).reshape(-1, 8, 8, 1)
    train, test = X[:1400], X[1400:]
    ae = Autoencoder(network=build, latent_dim=8, epochs=epochs, random_state=0).fit(train)
    flat = train.reshape(len(train), -1)
    pca = PCA(8).fit(flat)
    baseline = pca.inverse_transform(pca.transform(test.reshape(len(test), -1)))
    result = {
        "autoencoder": float(np.mean((ae.reconstruct(test) - test) ** 2)),
        "pca": float(np.mean((baseline - test.reshape(len(test), -1)) ** 2)),
    }
    print(f"held-out reconstruction error: {result['autoencoder']:.4f} (PCA: {result['pca']:.4f})")
    return result


if __name__ == "__main__":
    main()
