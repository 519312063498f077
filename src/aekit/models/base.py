"""What every autoencoder family shares: input scaling, the code, variational heads, output.

A family supplies two parts: ``features`` maps standardised inputs to a flat feature vector
(B, F), and ``decoder`` maps a code (B, L) back to the input's shape. This base adds the linear
code layer (two of them, mean and log-variance, for a variational model) and the output
mapping: standardised units undone by the scaler, or logits of a Bernoulli for data in [0, 1].
"""

from __future__ import annotations

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
OUTPUTS = ("standardized", "bernoulli")


class AutoencoderModule(nn.Module):
    """Base of all families; see the module docstring.

    Parameters
    ----------
    sample_shape : shape of one sample: (F,) for tables, (H, W, C) for images
    latent_dim : int
    mean, std : per-feature (tables) or per-channel (images) statistics in raw units
    low, high : the same features' minimum and maximum (for corruption noise), optional
    variational : bool
        Encode to a Gaussian (mean and log-variance) and sample the code while training.
    output : {'standardized', 'bernoulli'}
        Linear output in standardised units (paired with MSE), or logits of pixel intensities
        in [0, 1] (paired with binary cross-entropy).
    """

    features: nn.Module
    decoder: nn.Module
    score_scale: torch.Tensor

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int,
        mean: np.ndarray,
        std: np.ndarray,
        variational: bool = False,
        output: str = "standardized",
        *,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}")
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.latent_dim = latent_dim
        self.variational = variational
        self.output = output
        self.scaler = Standardizer(mean, std, low, high)
        # A copy of this model from early in its fit, read by the anomaly score, and the epoch
        # it was taken after (0: none); set together by keep_early only
        self.early: AutoencoderModule | None = None
        self.early_epoch = 0

    def _build_code(self, n_features: int) -> None:
        self.to_code = nn.Linear(n_features, self.latent_dim)
        if self.variational:
            self.to_logvar = nn.Linear(n_features, self.latent_dim)

    def encode_distribution(self, x_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the code; log-variance is zero for a plain autoencoder."""
        h = self.features(x_std)  # (B, F)
        mu = self.to_code(h)  # (B, L)
        if not self.variational:
            return mu, torch.zeros_like(mu)
        return mu, self.to_logvar(h).clamp(-12.0, 8.0)

    def encode_normalized(self, x_std: torch.Tensor) -> torch.Tensor:
        """The code (its mean for a variational model). (B, *S) -> (B, L)"""
        return self.to_code(self.features(x_std))

    def decode_normalized(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised reconstruction, or logits for a Bernoulli output. (B, L) -> (B, *S)"""
        # shape[0], not len(z): it stays symbolic when the model is exported with a dynamic batch
        return self.decoder(z).reshape(z.shape[0], *self.sample_shape)

    def to_raw(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.output == "bernoulli" else self.scaler.inverse(out)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_normalized(self.scaler(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_raw(self.decode_normalized(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def keep_early(self, early: AutoencoderModule, epoch: int, scale: torch.Tensor) -> None:
        """Keep ``early``, a copy of this model after ``epoch`` epochs of its fit, and
        ``scale``, the median loss of this model and of the copy on training data: the
        anomaly score reads both (see :mod:`aekit.anomaly`). Saved with the weights."""
        self.early = early
        self.early_epoch = int(epoch)
        self.register_buffer("score_scale", scale.to(next(self.parameters()).device))


def mlp(widths: Sequence[int], activation: str, *, last_activation: bool) -> nn.Sequential:
    """Linear layers through ``widths`` with an activation between them (and after the last,
    if asked)."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2 or last_activation:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
