from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from aekit.data.arrays import ArrayBatches
from aekit.data.order import epoch_order
from aekit.errors import AekitError
from aekit.models import DenseAutoencoder
from aekit.training import Callback, EarlyStopping, evaluate, train


def _setup(lr: float = 0.05):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    torch.manual_seed(0)
    model = DenseAutoencoder((5,), 2, (8,), "relu", X.mean(0), X.std(0))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    train_data = ArrayBatches(X, np.arange(150), 16, seed=0)
    val_data = ArrayBatches(X, np.arange(150, 200), 64, seed=0, shuffle=False)
    return model, opt, train_data, val_data


def _loss(model, x):
    return torch.mean(
        (model.decode_normalized(model.encode_normalized(model.scaler(x))) - model.scaler(x)) ** 2
    )


class _Snapshots(Callback):
    def on_train_begin(self, state):
        self.weights = []

    def on_epoch_end(self, state, logs):
        self.weights.append(copy.deepcopy(state.model.state_dict()))


def test_early_stopping_restores_the_weights_of_the_best_epoch():
    # A learning rate this large makes the validation loss bounce, so the last epoch is not best
    model, opt, train_data, val_data = _setup(lr=0.5)
    snaps = _Snapshots()
    state = train(
        model,
        opt,
        _loss,
        train_data,
        val_data,
        epochs=60,
        device=torch.device("cpu"),
        callbacks=[snaps, EarlyStopping(patience=4)],
    )
    val = [h["val_loss"] for h in state.history]
    best = int(np.argmin(val))
    assert state.stop and best < len(val) - 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, snaps.weights[best][key])
    assert evaluate(model, val_data, _loss, torch.device("cpu")) == pytest.approx(val[best])


def test_missing_metric_names_the_available_ones():
    model, opt, train_data, _ = _setup()
    with pytest.raises(
        AekitError, match="choose one of: epoch, lr, samples_per_s, seconds, train_loss"
    ):
        train(
            model,
            opt,
            _loss,
            train_data,
            None,
            epochs=2,
            device=torch.device("cpu"),
            callbacks=[EarlyStopping(monitor="val_loss")],
        )


def test_logs_hold_the_per_epoch_record():
    model, opt, train_data, val_data = _setup()
    state = train(model, opt, _loss, train_data, val_data, epochs=3, device=torch.device("cpu"))
    assert [h["epoch"] for h in state.history] == [1.0, 2.0, 3.0]
    assert set(state.history[0]) == {
        "epoch",
        "train_loss",
        "val_loss",
        "lr",
        "seconds",
        "samples_per_s",
    }
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]
    assert state.stop_reason == "completed all epochs"


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    a = epoch_order(1000, seed=3, epoch=7)
    assert np.array_equal(a, epoch_order(1000, seed=3, epoch=7))
    assert sorted(a) == list(range(1000))
    assert not np.array_equal(a, epoch_order(1000, seed=3, epoch=8))
    assert not np.array_equal(a, epoch_order(1000, seed=4, epoch=7))


def test_array_batches_cover_every_row_once_per_epoch():
    X = np.arange(100, dtype=np.float32).reshape(50, 2)
    batches = ArrayBatches(X, np.arange(10, 50), batch_size=16, seed=0)
    seen = torch.cat(list(batches.batches(0)))[:, 0].numpy() / 2
    assert len(batches) == 3
    assert sorted(seen.astype(int)) == list(range(10, 50))
