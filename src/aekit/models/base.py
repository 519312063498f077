"""What every autoencoder shares, whatever its family: input scaling, the code, variational
heads, output.

A family supplies two parts (see :mod:`aekit.families`): ``features`` maps standardised
inputs to a flat feature vector (B, F), and ``decoder`` maps a code (B, L) back to the input's
shape. This module adds the linear code layer (two of them, mean and log-variance, for a
variational model) and the output mapping: standardised units undone by the scaler, or logits
of a Bernoulli for data in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from aekit.errors import SettingError
from aekit.models.architecture import OUTPUTS, Architecture
from aekit.models.scaling import Standardizer

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


class AutoencoderModule(nn.Module):
    """An autoencoder: a family's ``features`` and ``decoder`` with aekit's parts around them.

    Parameters
    ----------
    architecture : Architecture
        What the model is (family, sample shape, code size, variational, output).
    features, decoder : nn.Module
        The family's two parts, as its factory made them.
    mean, std : per-feature (tables) or per-channel (images) statistics in raw units
    low, high : the same features' minimum and maximum (for corruption noise), optional
    """

    features: nn.Module
    decoder: nn.Module
    score_scale: torch.Tensor
    feature_weight: torch.Tensor
    code_mean: torch.Tensor
    code_precision: torch.Tensor

    def __init__(
        self,
        architecture: Architecture,
        features: nn.Module,
        decoder: nn.Module,
        mean: np.ndarray,
        std: np.ndarray,
        *,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if architecture.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}; got {architecture.output!r}")
        self.architecture = architecture
        self.sample_shape = architecture.sample_shape
        self.latent_dim = architecture.latent_dim
        self.variational = architecture.variational
        self.output = architecture.output
        self.scaler = Standardizer(mean, std, low, high)
        self.features = features
        self.decoder = decoder
        width = flat_width(features, self.sample_shape)
        self.to_code = nn.Linear(width, self.latent_dim)
        if self.variational:
            self.to_logvar = nn.Linear(width, self.latent_dim)
        _check_decoder(decoder, self.latent_dim, self.sample_shape)
        # A copy of this model from early in its fit, read by the anomaly score, and the epoch
        # it was taken after (0: none); set together by keep_early only
        self.early: AutoencoderModule | None = None
        self.early_epoch = 0
        # The anomaly score's weights (see aekit.anomaly); set by keep_score_weights only
        self.score_weighted = False

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
        out = self.decoder(z)
        if tuple(out.shape[1:]) == self.sample_shape:
            return out
        # shape[0], not len(z): it stays symbolic when the model is exported with a dynamic batch
        return out.reshape(z.shape[0], *self.sample_shape)

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

    def keep_score_weights(
        self, feature_weight: torch.Tensor, code_mean: torch.Tensor, code_precision: torch.Tensor
    ) -> None:
        """Keep the anomaly score's weights of this model's errors, measured on training data:
        each feature's (F,), and the code's mean (L,) and precision (L, L) (see
        :mod:`aekit.anomaly`). Saved with the weights."""
        device = next(self.parameters()).device
        self.register_buffer("feature_weight", feature_weight.float().to(device))
        self.register_buffer("code_mean", code_mean.float().to(device))
        self.register_buffer("code_precision", code_precision.float().to(device))
        self.score_weighted = True


def mlp(widths: Sequence[int], activation: str, *, last_activation: bool) -> nn.Sequential:
    """Linear layers through ``widths`` with an activation between them (and after the last,
    if asked)."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2 or last_activation:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def flat_width(features: nn.Module, sample_shape: tuple[int, ...]) -> int:
    """F, the width of ``features``' output, found by one forward pass of a zero sample (in
    evaluation mode: a dropout would draw random numbers)."""
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            out = features(_probe(features, (1, *sample_shape)))
    except Exception as exc:
        raise SettingError(
            f"the network's features do not take samples of shape (B, {_dims(sample_shape)}) "
            f"({type(exc).__name__}: {exc}); they get standardised samples as stored (images "
            "channels last: (B, H, W, C))."
        ) from exc
    finally:
        features.train(was_training)
    if out.dim() != 2 or out.shape[0] != 1:
        raise SettingError(
            f"the network's features must return a flat vector per sample, (B, F); they "
            f"returned {tuple(out.shape)} for one sample: end them in nn.Flatten()."
        )
    return int(out.shape[1])


def _check_decoder(decoder: nn.Module, latent_dim: int, sample_shape: tuple[int, ...]) -> None:
    was_training = decoder.training
    decoder.eval()
    try:
        with torch.no_grad():
            out = decoder(_probe(decoder, (1, latent_dim)))
    except Exception as exc:
        raise SettingError(
            f"the network's decoder does not take codes of shape (B, {latent_dim}) "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    finally:
        decoder.train(was_training)
    if out.shape[0] != 1 or out[0].numel() != int(np.prod(sample_shape)):
        raise SettingError(
            f"the network's decoder must return (B, {_dims(sample_shape)}) for codes of "
            f"(B, {latent_dim}); it returned {tuple(out.shape)} for one code."
        )


def _probe(module: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros of ``shape`` on the module's device and in its type (the meta device included)."""
    first = next(module.parameters(), None)
    if first is None:
        return torch.zeros(shape)
    return torch.zeros(shape, device=first.device, dtype=first.dtype)


def _dims(shape: Sequence[int]) -> str:
    return ", ".join(str(s) for s in shape)
