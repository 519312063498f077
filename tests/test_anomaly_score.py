"""The anomaly score: the final model's and an early copy's errors, each over its median."""

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


def _own_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith("early.") and k != "score_scale"
    }


def test_the_early_copy_is_the_model_after_its_epoch_trained_without_the_batches_outliers():
    ae = Autoencoder(epochs=40, random_state=0).fit(X)
    assert ae.model_.early_epoch == early_epoch(40) == 10
    # A fit of 10 epochs that leaves out each batch's outliers throughout, without early
    # stopping, ends where the long fit's copy was taken
    short = Autoencoder(epochs=10, patience=0, trim="auto", random_state=0).fit(X)
    copy, then = ae.model_.early.state_dict(), _own_weights(short.model_)
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


def test_the_score_averages_both_errors_each_over_its_median_on_training_data():
    # No validation split: the training data are all of X (fewer than SCALE_SAMPLES rows)
    ae = Autoencoder(epochs=40, validation_fraction=0.0, random_state=0).fit(X)
    final = ae.reconstruction_error(X)
    with torch.no_grad():
        early = Objective().per_sample(ae.model_.early, torch.from_numpy(X)).numpy()
    scale = ae.model_.score_scale.numpy()
    np.testing.assert_allclose(scale, [np.median(final), np.median(early)], rtol=1e-5)
    np.testing.assert_allclose(
        ae.anomaly_score(X), 0.5 * (final / scale[0] + early / scale[1]), rtol=1e-5
    )
    np.testing.assert_array_equal(ae.score_samples(X), -ae.anomaly_score(X))
    assert np.mean(ae.anomaly_score(X) > ae.threshold_) <= ae.contamination


class _StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, state, logs):
        state.stop = True


def test_a_fit_stopped_before_the_copy_scores_with_its_own_error_and_saves_without_one(tmp_path):
    ae = Autoencoder(epochs=40, random_state=0).fit(X, callbacks=[_StopAfterFirstEpoch()])
    assert ae.n_iter_ == 1 and ae.model_.early is None
    np.testing.assert_array_equal(ae.anomaly_score(X), ae.reconstruction_error(X))
    assert ae.threshold_info_["score"] == "reconstruction error"
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
