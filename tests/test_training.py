from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest
import torch

from aekit.data.arrays import ArrayBatches
from aekit.data.order import epoch_order
from aekit.errors import AekitError, DivergenceError
from aekit.models import Architecture, build_model
from aekit.training import Callback, EarlyStopping, evaluate, train
from aekit.training.guard import CHECK_EVERY


def _setup(lr: float = 0.05):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(
        Architecture("dense", (5,), 2, hidden=(8,), activation="relu"), X.mean(0), X.std(0)
    )
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


def test_array_batches_gathered_in_blocks_are_the_epochs_batches_in_order(monkeypatch):
    # Blocks of 3 batches of 16 rows: batches 0-2 come from one gather, 3-5 from the next
    import aekit.data.arrays as arrays

    monkeypatch.setattr(arrays, "BLOCK_BYTES", 3 * 16 * 2 * 4)
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    rows = np.arange(5, 95)
    batches = ArrayBatches(X, rows, batch_size=16, seed=1)
    order = rows[epoch_order(len(rows), 1, 4)]
    expected = [X[order[i : i + 16]] for i in range(0, len(rows), 16)]
    got = [b.numpy() for b in batches.batches(4)]
    assert [len(b) for b in got] == [16, 16, 16, 16, 16, 10]
    assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True))
    # A resumed epoch starts inside a block and serves the same batches from there
    resumed = [b.numpy() for b in batches.batches(4, start=4)]
    assert all(np.array_equal(g, e) for g, e in zip(resumed, expected[4:], strict=True))


class _HostReads(torch.overrides.TorchFunctionMode):
    """Counts reads of tensor values on the host (each one a wait for the device on a GPU) made
    by aekit's code; torch's own (AdamW reads its CPU step counters) are not aekit's to avoid."""

    READS = frozenset({"item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"})

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        caller = sys._getframe(1).f_code.co_filename
        if name in self.READS and f"{os.sep}torch{os.sep}" not in caller:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_training_reads_the_loss_on_the_host_once_per_window_not_once_per_step():
    model, _, train_data, val_data = _setup()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    X = np.random.default_rng(1).normal(size=(3000, 5)).astype(np.float32)
    train_data = ArrayBatches(X, np.arange(3000), 16, seed=0)
    epochs, steps = 2, len(train_data)
    with _HostReads() as reads:
        train(model, opt, _loss, train_data, val_data, epochs=epochs, device=torch.device("cpu"))
    # A check per CHECK_EVERY steps and at the epoch's end, and one for each validation pass
    windows = epochs * (-(-steps // CHECK_EVERY) + 1)
    assert steps * epochs >= 300
    assert 0 < reads.count <= windows


@pytest.mark.parametrize("bad_step", [1, 5, CHECK_EVERY, CHECK_EVERY + 3])
def test_a_non_finite_loss_stops_training_with_the_weights_of_before_it(bad_step):
    model, opt, train_data, _ = _setup()
    weights = []

    class Record(Callback):
        def on_train_begin(self, state):
            weights.append(copy.deepcopy(model.state_dict()))

        def on_batch_end(self, state):
            weights.append(copy.deepcopy(model.state_dict()))

    def poisoned(model, x):
        loss = _loss(model, x)
        poisoned.calls += 1
        return loss * float("nan") if poisoned.calls == bad_step else loss

    poisoned.calls = 0
    with pytest.raises(DivergenceError, match=f"the loss became nan at step {bad_step} "):
        train(
            model,
            opt,
            poisoned,
            train_data,
            None,
            epochs=9,
            device=torch.device("cpu"),
            callbacks=[Record()],
        )
    # The bad step's update and any after it are undone; the steps before it may be undone too,
    # back to the last check, but the weights are all finite and ones training had.
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())
    assert any(all(torch.equal(model.state_dict()[k], w[k]) for k in w) for w in weights[:bad_step])
