"""Batch size, epochs and patience chosen from the data: one rule for the estimator and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from aekit import Autoencoder
from aekit.cli import main
from aekit.config import load_config
from aekit.params import PARAMS, SETTINGS
from aekit.training.budget import (
    MAX_BATCH,
    MAX_EPOCHS,
    STEP_BUDGET,
    auto_batch_size,
    auto_epochs,
    auto_patience,
    resolve_budget,
)


def test_estimator_and_cli_share_one_set_of_defaults():
    for key in ("data.batch_size", "train.epochs", "train.early_stopping_patience"):
        setting = SETTINGS[key]
        assert setting.default == "auto" and setting.param_default == "auto", key
    params = Autoencoder().get_params()
    assert (params["batch_size"], params["epochs"], params["patience"]) == ("auto",) * 3


@pytest.mark.parametrize(
    ("n_train", "batch", "epochs"),
    [
        (135, 32, MAX_EPOCHS),  # 150 rows less the validation tenth: 5 steps an epoch
        (1_617, 32, 118),  # digits: 51 steps an epoch
        (9_000, 128, 85),
        (54_000, MAX_BATCH, 57),  # MNIST's training split
        (11_500_000, MAX_BATCH, 5),  # a large store: the floor of epochs, not the step budget
    ],
)
def test_the_rule_at_sizes_from_a_small_table_to_a_large_store(n_train, batch, epochs):
    assert auto_batch_size(n_train) == batch
    steps = -(-n_train // batch)
    assert auto_epochs(steps) == epochs
    if MAX_EPOCHS > epochs > 5:
        assert abs(epochs * steps - STEP_BUDGET) <= steps  # the budget, to within an epoch
    assert 5 <= auto_patience(epochs) <= min(30, max(5, epochs))


def test_the_batch_divides_among_processes():
    assert auto_batch_size(9_000, world_size=3) % 3 == 0
    assert auto_batch_size(9_000, world_size=3) >= auto_batch_size(9_000)


def test_numbers_given_are_kept_and_auto_ones_resolved():
    config = load_config(overrides={"train.epochs": 7})
    resolved = resolve_budget(config, 64, 10)
    assert resolved.data.batch_size == 64
    assert resolved.train.epochs == 7
    assert resolved.train.early_stopping_patience == auto_patience(7)
    assert config.train.epochs == 7 and config.data.batch_size == "auto"  # not changed in place


def test_a_small_fit_uses_the_rule_and_says_so(capsys):
    X = np.random.default_rng(0).normal(size=(150, 4)).astype(np.float32)
    ae = Autoencoder(random_state=0, verbose=1, patience=0).fit(X)
    assert ae.n_iter_ == MAX_EPOCHS  # 135 training rows at batch 32: 5 steps an epoch
    out = capsys.readouterr().out
    assert "schedule: batch 32 (auto), 5 steps an epoch, at most 300 (auto) epochs" in out
    assert "no early stopping" in out


def test_a_given_batch_size_changes_the_epochs_auto_picks():
    X = np.random.default_rng(0).normal(size=(1_000, 4)).astype(np.float32)
    ae = Autoencoder(random_state=0, batch_size=900, patience=0).fit(X)
    assert ae.n_iter_ == MAX_EPOCHS  # one step an epoch: the budget asks for more than allowed
    ae = Autoencoder(random_state=0, batch_size=9, patience=0, epochs=2).fit(X)
    assert ae.n_iter_ == 2


@pytest.mark.parametrize("name", ["batch_size", "epochs", "patience"])
def test_bad_values_name_auto_in_the_message(name):
    X = np.zeros((20, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=rf"'{name}' parameter .* must be 'auto' or an int"):
        Autoencoder(**{name: "fast"}).fit(X)
    assert PARAMS[name].rule.check("auto")


def test_cli_flags_and_config_files_take_auto(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = "auto"\nearly_stopping_patience = 3\n')
    assert main(["validate", str(path), "--set", "data.batch_size=auto"]) == 0
    path.write_text('[train]\nepochs = "soon"\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'train.epochs'" in err and "auto" in err
