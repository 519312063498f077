"""The anomaly score: the final model's and an early copy's weighted errors and code distances,
each over its median."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from aekit import Autoencoder, load
from aekit.objectives import Objective
from aekit.runs.model import save_model
from aekit.training import Callback
from aekit.training.callbacks import TrainingState
from aekit.training.snapshot import RobustWarmup, early_epoch

X = load_wine().data.astype(np.float32)


SCORE_BUFFERS = ("score_scale", "feature_weight", "code_mean", "code_precision")


def _own_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's weights: neither the early copy nor what the score measured on data."""
    return {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith("early.") and k not in SCORE_BUFFERS
    }


def test_the_early_copy_is_the_model_after_its_epoch_trained_without_the_batches_outliers():
    ae = Autoencoder(epochs=40, random_state=0).fit(X)
    assert ae.model_.early_epoch == early_epoch(40) == 10
    # A fit of 10 epochs that leaves out each batch's outliers throughout, without early
    # stopping, ends where the long fit's copy was taken
    short = Autoencoder(epochs=10, patience=0, trim="auto", random_state=0).fit(X)
    copy, then = _own_weights(ae.model_.early), _own_weights(short.model_)
    assert copy.keys() == then.keys()
    assert all(torch.equal(copy[k], then[k]) for k in copy)
    assert not torch.equal(copy["decoder.0.weight"], ae.model_.state_dict()["decoder.0.weight"])


def test_the_epochs_after_the_copy_train_on_every_sample():
    objective = Objective(trim="early")
    warmup = RobustWarmup(objective, epoch=3)
    state = TrainingState(torch.nn.Linear(2, 2), torch.optim.SGD([torch.zeros(1)], lr=0.1))
    seen = []
    # Epochs in any order, as a resumed fit starts at its checkpoint's
    for epoch in (0, 2, 3, 7, 1):
        state.epoch = epoch
        warmup.on_epoch_begin(state)
        seen.append(objective.trim)
    assert seen == ["auto", "auto", "early", "early", "auto"]
    warmup.on_train_end(state)
    assert objective.trim == "early"
    # 'early' trains on every sample: the whole batch's mean
    model = torch.nn.Module()
    model.train()
    losses = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 50.0])
    objective.per_sample = lambda model, x: losses
    assert objective(model, losses).item() == pytest.approx(losses.mean().item())
    # After its copy a default fit trains as trim=0 does, from the copy's weights on: it ends
    # neither where a fit trimmed throughout does nor where one never trimmed does
    fits = {
        trim: Autoencoder(epochs=20, patience=0, trim=trim, random_state=0).fit(X).model_
        for trim in ("early", "auto", 0.0)
    }
    early = fits["early"].early.decoder[0].weight
    assert torch.equal(early, fits["auto"].early.decoder[0].weight)
    assert not torch.equal(early, fits[0.0].early.decoder[0].weight)
    final = fits["early"].decoder[0].weight
    assert not torch.equal(final, fits["auto"].decoder[0].weight)
    assert not torch.equal(final, fits[0.0].decoder[0].weight)


def _model_score(model, x: np.ndarray) -> np.ndarray:
    """One model's score, from its saved weights and measurements: each feature's squared
    residual (standardised units) times its weight, plus the code's squared Mahalanobis
    distance."""
    with torch.no_grad():
        t = torch.from_numpy(x)
        residual = ((model(t) - t) / model.scaler.std).pow(2).numpy()
        code = model.encode(t).numpy()
    centred = code - model.code_mean.numpy()
    distance = np.einsum("bi,ij,bj->b", centred, model.code_precision.numpy(), centred)
    return residual @ model.feature_weight.numpy() + distance


def test_the_score_averages_both_models_weighted_scores_each_over_its_median_on_training_data():
    # No validation split: the training data are all of X (fewer than SCALE_SAMPLES rows)
    ae = Autoencoder(epochs=40, validation_fraction=0.0, random_state=0).fit(X)
    final, early = _model_score(ae.model_, X), _model_score(ae.model_.early, X)
    scale = ae.model_.score_scale.numpy()
    np.testing.assert_allclose(scale, [np.median(final), np.median(early)], rtol=1e-4)
    np.testing.assert_allclose(
        ae.anomaly_score(X), 0.5 * (final / scale[0] + early / scale[1]), rtol=1e-4
    )
    np.testing.assert_array_equal(ae.score_samples(X), -ae.anomaly_score(X))
    assert np.mean(ae.anomaly_score(X) > ae.threshold_) <= ae.contamination
    # Each feature's weight is one over its mean squared residual on the training samples
    # (the typical ones: each batch's outliers left out, so the product is near 1, not 1)
    with torch.no_grad():
        t = torch.from_numpy(X)
        residual = ((ae.model_(t) - t) / ae.model_.scaler.std).pow(2).numpy()
    product = ae.model_.feature_weight.numpy() * residual.mean(0)
    assert np.all((product > 0.8) & (product < 2.0)), product
    # and the code's precision inverts the training codes' covariance
    codes = ae.transform(X)
    inverse = np.linalg.inv(np.cov(codes.T, bias=True))
    np.testing.assert_allclose(ae.model_.code_precision.numpy(), inverse, rtol=0.35)


def test_a_deviation_where_normal_samples_hardly_vary_outranks_a_loose_features_noise():
    # Feature 0 is noise the code cannot hold (every sample reconstructs it loosely); features
    # 1-4 follow two factors, feature 5 copies feature 1 up to a little noise. An anomaly that
    # breaks the copy by 1.5 of its units deviates by less than the noise feature's typical
    # error, yet is scored above every normal sample: its feature weighs by its own spread.
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(2000, 2))
    X_ = np.column_stack(
        [
            rng.normal(size=2000) * 3,
            factors[:, 0],
            factors[:, 1],
            factors.sum(1),
            factors[:, 0] - factors[:, 1],
            factors[:, 0] + 0.05 * rng.normal(size=2000),
        ]
    ).astype(np.float32)
    ae = Autoencoder(random_state=0).fit(X_[:1800])
    test = X_[1800:].copy()
    test[:10, 5] += 1.5
    score = ae.anomaly_score(test)
    assert score[:10].min() > np.quantile(score[10:], 0.95)


def test_a_table_in_0_1_is_scored_by_its_residual_not_by_how_grey_its_values_are():
    # A table scaled to [0, 1] trains with cross-entropy (loss 'auto'). Normal samples hold
    # values near 0.5, the anomalies values near 0 and 1 off their structure: the
    # cross-entropy, largest for grey values, ranked them below the normal samples.
    rng = np.random.default_rng(1)
    factor = rng.uniform(0.3, 0.7, size=(1200, 1))
    X_ = np.clip(factor + 0.02 * rng.normal(size=(1200, 6)), 0, 1).astype(np.float32)
    anomalies = rng.choice([0.02, 0.98], size=(20, 6)).astype(np.float32)
    ae = Autoencoder(random_state=0).fit(X_[:1000])
    assert ae.loss_ == "bce"
    score = ae.anomaly_score(np.vstack([X_[1000:], anomalies]))
    assert score[200:].min() > score[:200].max()


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, state, logs):
        state.stop = True


def test_a_fit_stopped_before_the_copy_scores_with_its_own_error_and_saves_without_one(tmp_path):
    ae = Autoencoder(epochs=40, random_state=0).fit(X, callbacks=[_StopAfterFirstEpoch()])
    assert ae.n_iter_ == 1 and ae.model_.early is None
    np.testing.assert_allclose(ae.anomaly_score(X), _model_score(ae.model_, X), rtol=1e-4)
    assert ae.threshold_info_["score"] == (
        "squared residual weighted per feature, plus the code's Mahalanobis distance"
    )
    save_model(ae, tmp_path)
    assert json.loads((tmp_path / "model.json").read_text())["early_epoch"] == 0
    loaded = load(tmp_path)
    assert loaded.model_.early is None
    np.testing.assert_array_equal(loaded.anomaly_score(X), ae.anomaly_score(X))


def test_a_saved_model_loads_with_its_early_copy_and_scores_the_same(tmp_path):
    ae = Autoencoder(epochs=12, random_state=0).fit(X)
    assert ae.model_.early_epoch == 3
    save_model(ae, tmp_path)
    loaded = load(tmp_path, device="cpu")
    assert loaded.model_.early_epoch == 3
    np.testing.assert_array_equal(loaded.anomaly_score(X), ae.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), ae.predict(X))
