"""The anomaly score: how far a sample lies from what the model learnt, read from two models.

A fit keeps a copy of its model from early in training, by default trained without each
batch's outliers (see :mod:`aekit.training.snapshot`). An early model has learnt the bulk of
the data and not yet the rare samples, so anomalies that sit in the training data stand out
more in its errors; the final model reconstructs finer structure. The score is the mean of the
two models' per-sample losses (the training objective without corruption), each divided by its
median on training data: a typical training sample scores about 1, whatever the loss's units.

On the ODDS sets, fit on data with their anomalies in them, this raised the mean ROC-AUC from
0.737 to 0.770 (the dev protocol of ``bench odds``) without costing the ``anomaly`` bench, whose
training data are clean; training the copy without the outliers took it to 0.810, for 0.010 of
the ``anomaly`` bench. A model without an early copy (its fit stopped before the copy was
taken) scores with its own loss alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from aekit.models import AutoencoderModule
from aekit.objectives import Objective

# Training samples whose losses set each model's median: enough for a steady median, and a
# bounded cost whatever the size of the data
SCALE_SAMPLES = 10_000


def score_terms(
    objective: Objective, model: AutoencoderModule, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each feature's part of the score's reconstruction term, (B, F), and the score, (B,).
    The parts sum to the score (to its reconstruction term for a variational model)."""
    parts, kl, mu = objective.terms(model, x)
    total = objective.combine(model, parts, kl, mu)
    early = model.early
    if early is None:
        return parts, total
    early_parts, early_kl, early_mu = objective.terms(early, x)
    early_total = objective.combine(early, early_parts, early_kl, early_mu)
    final_scale, early_scale = model.score_scale[0], model.score_scale[1]
    return (
        0.5 * (parts / final_scale + early_parts / early_scale),
        0.5 * (total / final_scale + early_total / early_scale),
    )


def anomaly_score(objective: Objective, model: AutoencoderModule, x: torch.Tensor) -> torch.Tensor:
    """The anomaly score of each sample of ``x`` (raw units), higher for more anomalous. (B,)"""
    return score_terms(objective, model, x)[1]


def median_losses(
    objective: Objective, models: Iterable[AutoencoderModule], batches: Iterable[torch.Tensor]
) -> torch.Tensor:
    """Each model's median per-sample loss over the first ``SCALE_SAMPLES`` samples of
    ``batches`` (a random sample of the training data on the models' device): the scale of its
    part of the score."""
    models = list(models)
    losses: list[list[torch.Tensor]] = [[] for _ in models]
    seen = 0
    with torch.no_grad():
        for x in batches:
            for kept, model in zip(losses, models, strict=True):
                kept.append(objective.per_sample(model, x).float().cpu())
            seen += len(x)
            if seen >= SCALE_SAMPLES:
                break
    medians = [float(np.median(torch.cat(kept).numpy())) for kept in losses]
    # A median of zero (a model that reconstructs most samples exactly) would divide by zero
    return torch.tensor([max(m, 1e-12) for m in medians], dtype=torch.float32)
