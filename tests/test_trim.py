"""Robust training: a batch's highest-loss samples left out of the update (``trim``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit import Autoencoder
from aekit.config import load_config
from aekit.errors import AekitError
from aekit.objectives import Objective, typical


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
    # What the training curve shows: the mean over every sample, trimmed or not
    assert objective.monitored.item() == losses.mean().item()
    model.eval()  # validation and scores take every sample
    assert objective(model, torch.zeros(10)).item() == losses.mean().item()
    model.train()
    assert Objective()(model, torch.zeros(10)).item() == losses.mean().item()


def test_auto_leaves_out_a_batch_s_outliers_and_nothing_from_a_batch_without_any(monkeypatch):
    rng = np.random.default_rng(0)
    losses = torch.tensor(np.exp(rng.normal(0.0, 0.3, size=64)), dtype=torch.float32)
    assert typical(losses).sum().item() >= 60  # skewed but clean: few, if any, left out
    losses[[3, 40]] = torch.tensor([50.0, 80.0])  # two far above the rest
    weights = typical(losses)
    assert weights[[3, 40]].tolist() == [0.0, 0.0]
    assert typical(torch.full((8,), 2.0)).tolist() == [1.0] * 8  # no spread: every sample
    monkeypatch.setattr(Objective, "per_sample", lambda self, m, x: m.losses)
    model = _Fixed(losses)
    model.train()
    expected = (losses * weights).sum() / weights.sum()
    assert Objective(trim="auto")(model, torch.zeros(64)).item() == pytest.approx(expected.item())
    model.eval()
    assert Objective(trim="auto")(model, torch.zeros(64)).item() == pytest.approx(
        losses.mean().item()
    )


@pytest.mark.parametrize("trim", ["auto", 0.2])
@pytest.mark.parametrize("n", [64, 57])  # a whole global batch, and a padded last one
def test_ranks_leave_out_what_one_process_reading_the_whole_batch_leaves_out(monkeypatch, trim, n):
    rng = np.random.default_rng(1)
    # The ranks' shares unlike each other (odd positions higher), as a batch's halves can be
    logs = rng.normal(0.0, 0.3, size=n) + np.arange(n) % 2
    losses = torch.tensor(np.exp(logs), dtype=torch.float32)
    losses[[2, 50]] = torch.tensor([40.0, 90.0])  # both in the first rank's share
    monkeypatch.setattr(Objective, "per_sample", lambda self, m, x: m.losses)
    one = _Fixed(losses)
    one.train()
    expected = Objective(trim=trim)(one, torch.zeros(n)).item()
    # Two ranks of 32 rows each: rank r reads positions r, r + 2, ...; padding comes last
    world, rows = 2, 32
    shares = [losses[r::world] for r in range(world)]
    padded = [torch.cat([s, torch.full((rows - len(s),), float("nan"))]) for s in shares]
    final_share = None if n == world * rows else world / n
    averaged = 0.0
    for r in range(world):
        objective = Objective(trim=trim)
        objective.gather = lambda own, r=r: torch.cat(  # each rank sees its own values in place
            [own if k == r else padded[k] for k in range(world)]
        )
        model = _Fixed(torch.cat([shares[r], losses[: rows - len(shares[r])]]))  # repeated rows
        model.train()
        share = None if final_share is None else (len(shares[r]), final_share)
        averaged += objective(model, torch.zeros(rows), share).item() / world  # as DDP averages
    assert averaged == pytest.approx(expected, rel=1e-6)
    # Judged apart, each rank's share would set its own median and spread (or quantile)
    alone = sum(Objective(trim=trim)(_Fixed(s).train(), torch.zeros(len(s))).item() for s in shares)
    assert alone / world != pytest.approx(expected, rel=1e-3)


def test_trim_takes_auto_early_or_a_share_in_configs_and_refuses_other_words(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[data]\nstore = "x.zarr"\n[model]\ntrim = "auto"\n')
    assert load_config(config).model.trim == "auto"
    config.write_text('[data]\nstore = "x.zarr"\n[model]\ntrim = "early"\n')
    assert load_config(config).model.trim == "early"
    config.write_text('[data]\nstore = "x.zarr"\n[model]\ntrim = "most"\n')
    with pytest.raises(AekitError, match="trim"):
        load_config(config)
    with pytest.raises(AekitError, match="trim"):
        Autoencoder(trim="most").fit(np.zeros((20, 3), dtype=np.float32))


@pytest.mark.parametrize("trim", [0.1, "auto"])
def test_anomalies_in_the_training_data_pull_a_trimmed_model_less(trim):
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
    for share in (0.0, trim):
        ae = Autoencoder(latent_dim=2, trim=share, random_state=0).fit(X)
        normal_error[share] = ae.reconstruction_error(held_out).mean()
        margin[share] = np.median(ae.reconstruction_error(new_anomalies)) / normal_error[share]
    assert normal_error[trim] < 0.5 * normal_error[0.0], normal_error
    assert margin[trim] > 2 * margin[0.0], margin


def test_the_training_curve_counts_every_sample_while_the_update_leaves_outliers_out():
    # One batch of everything, a step too small to move the weights: the epoch's logged
    # training loss is the model's mean loss over every sample, outliers included, not the
    # trimmed mean its update used (a curve that jumped when trimming stopped)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 6)).astype(np.float32)
    X[:8] += 12.0
    ae = Autoencoder(
        epochs=1, batch_size=256, learning_rate=1e-12, validation_fraction=0.0, trim="auto",
        random_state=0,
    ).fit(X)  # fmt: skip
    every = ae.reconstruction_error(X)
    logged = ae.history_[0]["train_loss"]
    assert logged == pytest.approx(every.mean(), rel=1e-4)
    assert logged > 1.2 * np.mean(every[8:])  # the trimmed mean would be far below
