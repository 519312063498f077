"""In-process unit tests of pieces the end-to-end tests reach only through a process: the
parameter table, checkpoint save and restore, the output writers and the .aek packing."""

from __future__ import annotations

import inspect
import io

import numpy as np
import pandas as pd
import pytest
import torch

from aekit.apply import compress
from aekit.apply.outputs import Output
from aekit.config import RunConfig, config_from_params, params_from_config
from aekit.data.store import open_store
from aekit.errors import AekitError
from aekit.estimator import Autoencoder
from aekit.families import BUILT_IN, family_names
from aekit.models import KINDS
from aekit.models.base import ACTIVATIONS
from aekit.params import PARAMS, SETTINGS, check_param
from aekit.training.callbacks import EarlyStopping, TrainingState
from aekit.training.checkpoint import Checkpointer, load_checkpoint, restore

# --- the parameter table -------------------------------------------------------------------


def test_every_default_follows_its_own_rule():
    for key, setting in SETTINGS.items():
        assert setting.problem(setting.default) is None, key
        if setting.param:
            assert setting.problem(setting.param_default) is None or setting.param in (
                "noise",
                "sparsity",
            ), key


def _plain(value):
    """A default as a config writes it: tuples as lists, None as ""."""
    return list(value) if isinstance(value, tuple) else "" if value is None else value


def test_the_estimator_and_the_config_take_their_defaults_from_the_table():
    signature = inspect.signature(Autoencoder.__init__).parameters
    assert set(signature) - {"self"} == set(PARAMS)
    for name, setting in PARAMS.items():
        assert signature[name].default == setting.param_default, name
        if _plain(setting.param_default) != _plain(setting.default):
            assert setting.why, f"{name}: say why the estimator's default differs"
    dumped = RunConfig().model_dump()
    for key, setting in SETTINGS.items():
        if setting.key:
            section, name = key.split(".")
            assert dumped[section][name] == setting.default, key


def test_the_table_lists_what_the_models_build():
    # The kinds are the registered families (the built-in ones registered as a plugin's are)
    # and 'vae', the kind's usual body, variational
    kind = SETTINGS["model.kind"].rule
    assert set(KINDS) == set(BUILT_IN) | {"vae"} and set(family_names()) >= set(BUILT_IN)
    assert all(kind.check(k) for k in KINDS) and not kind.check("pca")
    assert set(SETTINGS["model.activation"].rule.values) == set(ACTIVATIONS)  # type: ignore[attr-defined]


def test_a_bad_value_is_named_with_the_rule_and_the_value():
    with pytest.raises(ValueError, match=r"^The 'kind' parameter of Autoencoder must be one of "):
        check_param("kind", "pca")
    with pytest.raises(ValueError, match=r"must be .auto. or an int >= 0\. Got True instead\.$"):
        check_param("patience", True)  # a bool is not an int
    with pytest.raises(ValueError, match=r"noise is KIND:LEVEL"):
        check_param("noise", "gauss:1")


def test_estimator_parameters_and_config_map_both_ways():
    params = Autoencoder(hidden=(8, 4), noise="mask:0.2", patience=0).get_params()
    config = config_from_params(params)
    assert config.model.hidden == [8, 4] and config.model.noise == "mask:0.2"
    assert config.train.early_stopping_patience == 0
    back = params_from_config(config)
    for name in back:
        if name != "random_state":  # the seed is derived separately
            assert back[name] == params[name], name


def test_aekit_train_offers_a_flag_for_each_flagged_setting(capsys):
    from aekit.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for setting in SETTINGS.values():
        if setting.flag:
            assert setting.flag in text


# --- checkpoints ---------------------------------------------------------------------------


def _state() -> TrainingState:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    return TrainingState(model, optimizer, epochs=5, steps_per_epoch=3)


def test_a_checkpoint_restores_weights_optimizer_callbacks_rng_and_position(tmp_path):
    state = _state()
    stopper = EarlyStopping("val_loss", patience=3)
    checkpointer = Checkpointer(tmp_path, [stopper], {"x": 1}, monitor="val_loss")
    for cb in (stopper, checkpointer):
        cb.on_train_begin(state)
    stopper.on_epoch_end(state, {"val_loss": 0.5})
    state.epoch, state.batch, state.step, state.loss_sum, state.sample_count = 1, 2, 5, 3.0, 16
    state.history = [{"epoch": 1.0, "val_loss": 0.5}]
    path = checkpointer.save(state, epoch=1, batch=2)
    weights = {k: v.clone() for k, v in state.model.state_dict().items()}
    draw = torch.rand(3)  # the next draw after the checkpoint

    fresh = _state()
    with torch.no_grad():
        fresh.model.weight.add_(1.0)
    stopper2 = EarlyStopping("val_loss", patience=3)
    checkpointer2 = Checkpointer(tmp_path, [stopper2], {"x": 1}, monitor="val_loss")
    for cb in (stopper2, checkpointer2):
        cb.on_train_begin(fresh)
    torch.rand(10)  # move the generator on
    restore(fresh, load_checkpoint(path), checkpointer2)

    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    saved_opt = state.optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(fresh.optimizer.state_dict()["state"][0]["exp_avg"], saved_opt)
    assert (fresh.epoch, fresh.batch, fresh.step, fresh.sample_count) == (1, 2, 5, 16)
    assert fresh.history == state.history
    assert stopper2.best == stopper.best and stopper2.wait == stopper.wait
    for k, v in stopper.best_weights.items():  # the best weights travel with the callback
        assert torch.equal(stopper2.best_weights[k], v)
    assert torch.equal(torch.rand(3), draw)


def test_a_damaged_checkpoint_is_refused_with_the_way_out(tmp_path):
    path = tmp_path / "step-000000001.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(AekitError, match="delete it to use the one before"):
        load_checkpoint(path)


# --- output writers ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".zarr"])
def test_outputs_write_rows_in_order_and_publish_only_when_complete(tmp_path, suffix):
    values = np.arange(30, dtype=np.float32).reshape(10, 3)
    labels = np.arange(10) % 2
    out = tmp_path / f"codes{suffix}"
    output = Output(out, 10, (3,), has_labels=True, prefix="z")
    for start in (0, 4):
        rows = slice(start, start + (4 if start == 0 else 6))
        output.write(
            values[rows], labels=labels[rows], ids=np.array([f"r{i}" for i in range(10)])[rows]
        )
        assert not out.exists()  # nothing at the destination until commit
    output.commit()
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(out), values)
        np.testing.assert_array_equal(np.load(tmp_path / "codes.labels.npy"), labels)
    elif suffix == ".parquet":
        table = pd.read_parquet(out)
        np.testing.assert_array_equal(table[["z0", "z1", "z2"]].to_numpy(), values)
    else:
        store = open_store(out)
        np.testing.assert_array_equal(store.read(np.arange(10)), values)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".zarr"])
def test_an_aborted_or_short_output_leaves_nothing(tmp_path, suffix):
    out = tmp_path / f"codes{suffix}"
    output = Output(out, 10, (3,), has_labels=False)
    output.write(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(AekitError, match="wrote 4 of 10 rows; nothing kept"):
        output.commit()
    assert list(tmp_path.iterdir()) == []


def test_parquet_rows_are_gathered_into_row_groups_of_about_32_mb(tmp_path, monkeypatch):
    # A row group per written batch kept each group's metadata until the file was closed
    import pyarrow.parquet as pq

    from aekit.apply import outputs

    monkeypatch.setattr(outputs, "ROW_GROUP_BYTES", 400)
    values = np.arange(300, dtype=np.float32).reshape(100, 3)
    out = tmp_path / "codes.parquet"
    output = Output(out, 100, (3,), has_labels=False, prefix="z")
    for start in range(0, 100, 4):
        output.write(values[start : start + 4], ids=np.arange(start, start + 4))
    output.commit()
    # Gathered, a few batches a group: not one group per batch (25), nor all rows in one
    assert 1 < pq.ParquetFile(out).metadata.num_row_groups < 25
    table = pd.read_parquet(out)
    np.testing.assert_array_equal(table[["z0", "z1", "z2"]].to_numpy(), values)
    assert table["id"].tolist()[-1] == "row 100"


# --- what memory holds ---------------------------------------------------------------------


def test_a_growing_array_keeps_every_row_in_order():
    from aekit.memory import GrowingArray

    rows = GrowingArray(np.float32, (2,))
    expected = []
    for n in (1, 1000, 30, 2000):
        block = np.full((n, 2), len(expected), np.float32)
        rows.append(block)
        expected.append(block)
    assert len(rows) == 3031
    np.testing.assert_array_equal(rows.values(), np.concatenate(expected))


def test_batches_read_in_order_hold_about_a_mib_of_samples():
    from aekit.data.stream import inference_batch

    assert inference_batch((784,)) == 334  # 1 MiB of 784 floats, not 4096 rows (12.8 MB)
    assert inference_batch((10,)) == 4096  # narrow tables: at most 4096 rows
    assert inference_batch((512, 512, 3)) == 1  # at least one sample


def test_the_scale_sample_is_a_seeded_draw_of_distinct_training_rows():
    from aekit.anomaly import SCALE_SAMPLES
    from aekit.training.fitting import scale_rows

    index = np.arange(0, 50_000, 2)
    picked = scale_rows(index, seed=3)
    assert len(picked) == SCALE_SAMPLES == len(np.unique(picked))
    assert np.isin(picked, index).all()
    np.testing.assert_array_equal(picked, scale_rows(index, seed=3))
    assert sorted(scale_rows(index[:100], seed=3)) == index[:100].tolist()  # all, when fewer


# --- the .aek packing ----------------------------------------------------------------------


def test_symbols_pack_and_unpack_exactly_at_the_int16_edges():
    rng = np.random.default_rng(0)
    symbols = rng.integers(-(2**15), 2**15, size=(37, 5)).astype(np.int32)
    symbols[0] = [-(2**15), 2**15 - 1, 0, -1, 1]
    packed = compress._pack(symbols)
    assert len(packed) == symbols.size * 2
    np.testing.assert_array_equal(compress._unpack(packed, 37, 5), symbols)


def test_a_header_with_one_flipped_byte_is_refused():
    model = torch.nn.Linear(2, 2)

    class Fitted:
        model_ = model
        sample_shape_ = (2,)
        latent_dim = 2
        latent_std_ = np.ones(2, dtype=np.float32)

    codec = compress._Codec(Fitted(), 0.05, Fitted.latent_std_, np.float32)  # type: ignore[arg-type]
    buffer = io.BytesIO()
    compress._write_header(buffer, Fitted(), codec, 0.05, 0, 0, "0" * 64)  # type: ignore[arg-type]
    good = buffer.getvalue()
    assert compress.read_header(io.BytesIO(good), "f")["n"] == 0
    bad = bytearray(good)
    bad[len(compress.MAGIC) + 6] ^= 0xFF
    with pytest.raises(AekitError, match="f"):
        compress.read_header(io.BytesIO(bytes(bad)), "f")
