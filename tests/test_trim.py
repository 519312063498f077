"""Robust training: a batch's highest-loss samples left out of the update (``trim``)."""

from __future__ import annotations

import numpy as np
import torch

from aekit import Autoencoder
from aekit.objectives import Objective


class _Fixed(torch.nn.Module):
    """A stand-in model whose per-sample losses are given (the objective only reads them)."""

    def __init__(self, losses: torch.Tensor) -> None:
        super().__init__()
        self.losses = losses


def test_the_trimmed_mean_leaves_out_the_highest_losses_while_training_only(monkeypatch):
    losses = torch.tensor([1.0, 9.0, 2.0, 3.0, 100.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    model = _Fixed(losses)
    objective = Objective(trim=0.2)
    monkeypatch.setattr(Objective, "per_sample", lambda self, m, x: m.losses)
    model.train()
    assert objective(model, torch.zeros(10)).item() == np.mean([1, 2, 3, 4, 5, 6, 7, 8])
    model.eval()  # validation and scores take every sample
    assert objective(model, torch.zeros(10)).item() == losses.mean().item()
    model.train()
    assert Objective()(model, torch.zeros(10)).item() == losses.mean().item()


def test_anomalies_in_the_training_data_pull_a_trimmed_model_less():
    # Normal samples lie near a curved 2-d sheet in 12-d; 6 % of the training rows are gross
    # anomalies. Fitting them costs a plain autoencoder accuracy on normal data; a trimmed one
    # leaves them out of its updates, reconstructs new normal samples better and so separates
    # anomalies by a wider margin.
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 12))
    normal = np.tanh(rng.normal(size=(1400, 2)) @ basis) + 0.05 * rng.normal(size=(1400, 12))
    X = np.vstack([normal[:940], 2 * rng.normal(size=(60, 12))]).astype(np.float32)
    held_out = normal[940:].astype(np.float32)
    new_anomalies = (2 * rng.normal(size=(30, 12))).astype(np.float32)
    normal_error, margin = {}, {}
    for trim in (0.0, 0.1):
        ae = Autoencoder(latent_dim=2, trim=trim, random_state=0).fit(X)
        normal_error[trim] = ae.reconstruction_error(held_out).mean()
        margin[trim] = np.median(ae.reconstruction_error(new_anomalies)) / normal_error[trim]
    assert normal_error[0.1] < 0.5 * normal_error[0.0], normal_error
    assert margin[0.1] > 2 * margin[0.0], margin
