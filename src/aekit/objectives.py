"""Loss terms as pure functions of tensors, and the objective that combines them.

Denoising and sparsity are settings of the objective, not model classes: any kind can be
trained on corrupted inputs against clean targets, or with a penalty on its code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

NOISE_KINDS = ("gaussian", "mask", "saltpepper")
SPARSITY_KINDS = ("l1", "kl")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions. -> (B,)"""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def kl_sparsity(code: torch.Tensor, target: float) -> torch.Tensor:
    """Sum over code units of KL(target || mean activation), activations squashed to (0, 1)."""
    rho = torch.sigmoid(code).mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (L,)
    return (
        target * torch.log(target / rho) + (1 - target) * torch.log((1 - target) / (1 - rho))
    ).sum()


@dataclass(frozen=True)
class Noise:
    """Input corruption for denoising: ``gaussian:S`` adds noise of standard deviation S times
    each feature's range; ``mask:P`` replaces a share P of values by the feature's mean;
    ``saltpepper:P`` sets a share P to the feature's minimum or maximum."""

    kind: str
    level: float

    @classmethod
    def parse(cls, spec: str) -> Noise:
        kind, _, level = spec.partition(":")
        try:
            value = float(level)
        except ValueError:
            value = -1.0
        if kind not in NOISE_KINDS or value < 0 or (kind != "gaussian" and value > 1):
            raise ValueError(f"noise is KIND:LEVEL with KIND one of {', '.join(NOISE_KINDS)}")
        return cls(kind, value)

    def apply(
        self, x_std: torch.Tensor, scaler: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Corrupt standardised inputs; the scaler says where min, max and range lie, and the
        noise is drawn from ``generator`` (torch's global one when None)."""
        if self.kind == "gaussian":
            sigma = self.level * (scaler.high - scaler.low) / scaler.std
            return x_std + _draw(torch.randn, x_std, generator) * sigma
        hit = _draw(torch.rand, x_std, generator) < self.level
        if self.kind == "mask":
            return x_std.masked_fill(hit, 0.0)
        low, high = scaler(scaler.low), scaler(scaler.high)
        salt = _draw(torch.rand, x_std, generator) < 0.5
        return torch.where(hit, torch.where(salt, high, low), x_std)


def _draw(sample: Any, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``torch.randn``/``torch.rand`` of ``like``'s shape, dtype and device, from ``generator``."""
    return sample(like.shape, generator=generator, dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class Sparsity:
    """A penalty on the code: ``l1:W`` adds W times the mean absolute activation; ``kl:R:W``
    adds W times the KL divergence of the units' mean (sigmoid) activation from target R."""

    kind: str
    weight: float
    target: float = 0.05

    @classmethod
    def parse(cls, spec: str) -> Sparsity:
        parts = spec.split(":")
        try:
            numbers = [float(p) for p in parts[1:]]
        except ValueError:
            numbers = []
        if parts[0] == "l1" and len(numbers) == 1 and numbers[0] >= 0:
            return cls("l1", numbers[0])
        if parts[0] == "kl" and len(numbers) == 2 and 0 < numbers[0] < 1 and numbers[1] >= 0:
            return cls("kl", numbers[1], numbers[0])
        raise ValueError("sparsity is l1:WEIGHT or kl:TARGET:WEIGHT")

    def penalty(self, code: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return self.weight * code.abs().mean()
        return self.weight * kl_sparsity(code, self.target)


# 'auto' trim: a loss is an outlier of its batch when its logarithm lies more than this many
# robust deviations above the batch's median (chosen on the ODDS dev protocol: bench odds --dev)
OUTLIER_DEVIATIONS = 2.0


def typical(loss: torch.Tensor, pool: torch.Tensor | None = None) -> torch.Tensor:
    """Weights of a batch's per-sample losses, (B,): 0 for its outliers, 1 for the rest.

    The logarithm makes the skewed losses of normal data near symmetric: on clean data about
    2 % are left out (a normal's share above 2 deviations), which costs some accuracy. The
    spread is the median absolute deviation (times 1.4826, a normal deviation's), which the
    outliers themselves do not inflate. Without spread (all losses alike) every sample counts.
    ``pool``: the losses that set the median and spread, NaN where a row is padding (the
    batch's own by default; under several processes, every rank's). A NaN loss weighs 0.
    Tensor operations only: no synchronisation with a GPU.
    """
    log = loss.detach().clamp_min(1e-12).log()
    pooled = log if pool is None else pool.clamp_min(1e-12).log()
    median = pooled.nanmedian()
    spread = 1.4826 * (pooled - median).abs().nanmedian()
    inlier = ((log <= median + OUTLIER_DEVIATIONS * spread) | (spread == 0)) & ~log.isnan()
    return inlier.to(loss.dtype)


# Every rank's detached per-sample losses of one step, concatenated in rank order (each rank's
# as many, NaN where a row is padding): see Objective.gather
Gather = Callable[[torch.Tensor], torch.Tensor]


class Objective:
    """The training loss of a model: reconstruction, plus KL for a variational model, plus the
    sparsity penalty; inputs corrupted while training when a noise is set.

    Plain autoencoders: mean over features of the squared error (standardised units) or of the
    binary cross-entropy. Variational ones: the negative ELBO per sample, reconstruction summed
    over features (Gaussian with unit variance in standardised units, or Bernoulli) plus
    ``beta * kl_weight`` times the KL term; ``kl_weight`` ramps up during warm-up and is 1 when
    evaluating. Corruption noise and the VAE's code samples come from ``generator``, seeded
    by the fit so that the same seed gives the same model (torch's global one when None).
    ``trim``: while training, the share of each batch's highest per-sample losses left out of
    the mean, so that rare samples unlike the rest (anomalies in the training data) pull the
    weights less; ``'auto'`` leaves out the batch's outliers (:func:`typical`); ``'early'``
    leaves out none here (a fit's :class:`aekit.training.snapshot.RobustWarmup` sets
    ``'auto'`` for its first epochs). Evaluation and scores always take every sample.
    ``gather``: set under several processes, so that the samples left out are those of the
    global batch, as one process reading it whole would leave out (ranks judging their own
    shares alone left out others: two processes then trained another model than one).
    """

    def __init__(
        self,
        noise: Noise | None = None,
        sparsity: Sparsity | None = None,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
        trim: float | str = 0.0,
    ) -> None:
        self.noise = noise
        self.sparsity = sparsity
        self.beta = beta
        self.generator = generator
        self.trim = trim
        self.gather: Gather | None = None
        self.kl_weight = 1.0
        # The last training batch's loss over every sample (detached) when a trim left some
        # out of the update: what the training curve shows, one quantity over the whole fit
        self.monitored: torch.Tensor | None = None

    def terms(
        self, model: Any, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Each feature's part of the reconstruction term, (B, F); the KL term, (B,) (None for a
        plain autoencoder); the code's mean, (B, L). The parts sum to the reconstruction term."""
        x_std = model.scaler(x)
        target = x.to(x_std.dtype) if model.output == "bernoulli" else x_std
        inputs = x_std
        if self.noise is not None and model.training:
            inputs = self.noise.apply(x_std, model.scaler, self.generator)
        mu, logvar = model.encode_distribution(inputs)
        code = mu
        if model.variational and model.training:  # reparameterisation
            code = mu + _draw(torch.randn, mu, self.generator) * (0.5 * logvar).exp()
        out = model.decode_normalized(code)
        if model.output == "bernoulli":
            error = F.binary_cross_entropy_with_logits(out, target, reduction="none").flatten(1)
        else:
            error = (out - target).pow(2).flatten(1)
        if not model.variational:
            return error / error.shape[1], None, mu  # parts of the mean
        parts = error if model.output == "bernoulli" else 0.5 * error
        return parts, kl_divergence(mu, logvar), mu

    def combine(
        self, model: Any, parts: torch.Tensor, kl: torch.Tensor | None, mu: torch.Tensor
    ) -> torch.Tensor:
        """The per-sample loss from :meth:`terms`' output. (B,)"""
        loss = parts.sum(1)
        if kl is not None:
            weight = self.kl_weight if model.training else 1.0
            loss = loss + self.beta * weight * kl
        if self.sparsity is not None:
            loss = loss + self.sparsity.penalty(mu)
        return loss

    def per_sample(self, model: Any, x: torch.Tensor) -> torch.Tensor:
        return self.combine(model, *self.terms(model, x))

    def __call__(
        self, model: Any, x: torch.Tensor, share: tuple[int, float] | None = None
    ) -> torch.Tensor:
        """The batch's mean loss; with ``share`` ``(rows, scale)``, the sum of the first
        ``rows`` samples' losses times ``scale`` (a distributed epoch's last batch, padded:
        see :attr:`aekit.data.stream.StoreBatches.final_share`). While training with a trim,
        the samples left out count in neither the sum nor the number of samples; the mean
        over every sample is kept in :attr:`monitored`."""
        loss = self.per_sample(model, x)
        real = loss if share is None else loss[: share[0]]
        every = real.mean() if share is None else real.sum() * share[1]
        trimmed = self._kept(real, len(loss), share) if model.training else None
        self.monitored = None
        if trimmed is None:
            return every
        self.monitored = every.detach()
        weight, count, world = trimmed
        # Each rank's kept sum over the global count, times the world size: DDP's average of
        # the ranks' gradients is then the global batch's trimmed mean (one process: kept / count)
        return (real * weight).sum() * (world / count)

    def _kept(
        self, real: torch.Tensor, rows: int, share: tuple[int, float] | None
    ) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """Which of this rank's real losses count (0/1 weights), how many count over every
        rank, and how many ranks there are; None when every sample counts."""
        if self.trim == "early" or not self.trim:  # 'early': 'auto' is set for its epochs
            return None
        # A share (a padded last batch) comes only with several processes, where gather is set
        assert share is None or self.gather is not None, "a trimmed share needs every rank's"
        own = real.detach()
        pool, world, real_rows = own, 1, len(own)
        if self.gather is not None:
            padded = torch.full((rows,), float("nan"), dtype=own.dtype, device=own.device)
            padded[: len(own)] = own
            pool = self.gather(padded)
            world = len(pool) // rows
            # Every rank's real rows: all, or those of the last batch (its scale: world over them)
            real_rows = world * rows if share is None else round(world / share[1])
        if self.trim == "auto":
            weight = typical(own, pool)
            return weight, (weight if pool is own else typical(pool, pool)).sum(), world
        # A fixed share: the losses up to the global batch's quantile count
        keep = max(1, round((1 - float(self.trim)) * real_rows))
        bound = pool.nan_to_num(nan=float("inf")).kthvalue(keep).values
        return (own <= bound).to(own.dtype), (pool <= bound).sum(), world
