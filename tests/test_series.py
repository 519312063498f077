"""Series: ingested as steps with their boundaries and a split by time, trained on as windows
cut at batch time, scored per time step (aekit.data.series, aekit.training.series)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from aekit import Autoencoder, ingest, load
from aekit.data.series import SeriesLayout, StepMeans, auto_window_length, window_starts
from aekit.data.store import open_store
from aekit.data.stream import StoreBatches
from aekit.errors import AekitError, DataError
from aekit.runs import save_model
from aekit.training import series as training_series
from aekit.training.checkpoint import latest_checkpoint, load_checkpoint
from aekit.training.series import per_step


def cycle(steps: int, period: int = 40, seed: int = 0, channels: int = 2) -> np.ndarray:
    t = np.arange(steps)
    phases = np.arange(channels)[None, :]
    clean = np.sin(2 * np.pi * t[:, None] / period + phases)
    return (clean + 0.05 * np.random.default_rng(seed).normal(size=clean.shape)).astype(np.float32)


def test_a_folder_of_series_keeps_its_boundaries_and_holds_out_each_ones_end(tmp_path):
    folder = tmp_path / "machines"
    folder.mkdir()
    np.save(folder / "a.npy", cycle(1000))
    np.save(folder / "b.npy", cycle(500, seed=1))
    store = ingest(folder, tmp_path / "s.zarr", series=True, progress=False)
    layout = store.series
    assert layout.names == ["a", "b"] and layout.lengths.tolist() == [1000, 500]
    assert layout.held_out.tolist() == [100, 50]
    # validation is the last tenth of each series, by time
    expected = np.r_[np.zeros(900), np.ones(100), np.zeros(450), np.ones(50)]
    np.testing.assert_array_equal(store.split, expected)
    train = np.concatenate([cycle(1000)[:900], cycle(500, seed=1)[:450]])
    np.testing.assert_allclose(store.stats["mean"], train.mean(0), atol=1e-6)
    np.testing.assert_array_equal(store.read(np.arange(1000, 1500)), cycle(500, seed=1))


def test_a_table_series_keeps_its_time_stamps_and_step_labels(tmp_path):
    path = tmp_path / "plant.csv"
    lines = ["when,temp,flow,fault"] + [
        f"t{k},{np.sin(k / 5):.4f},{k % 7},{int(50 <= k < 55)}" for k in range(200)
    ]
    path.write_text("\n".join(lines) + "\n")
    store = ingest(path, tmp_path / "p.zarr", series=True, time_column="when",
                   label_column="fault", progress=False)  # fmt: skip
    assert store.sample_shape == (2,)
    assert store.meta["source"]["feature_names"] == ["temp", "flow"]
    assert list(store.ids(np.array([0, 199]))) == ["t0", "t199"]
    assert store.labels[50:55].tolist() == [1] * 5 and store.labels.sum() == 5


def test_a_series_with_a_gap_or_unequal_channels_is_refused_naming_it(tmp_path):
    gappy = cycle(300)
    gappy[120, 1] = np.nan
    with pytest.raises(DataError, match="step 121 holds a missing"):
        ingest(gappy, tmp_path / "g.zarr", series=True, progress=False)
    with pytest.raises(DataError, match="cannot apply to a series"):
        ingest(cycle(300), tmp_path / "k.zarr", series=True, on_error="skip", progress=False)
    with pytest.raises(DataError, match="share their channels"):
        ingest([cycle(300), cycle(300, channels=3)], tmp_path / "c.zarr", series=True,
               progress=False)  # fmt: skip
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_windows_never_cross_a_series_or_its_split_and_cover_every_step():
    layout = SeriesLayout.split(["a", "b", "c"], [100, 37, 10], 0.2)
    for part in ("train", "validation", "all"):
        starts = layout.windows(part, 16, 5)
        covered = np.zeros(layout.n_steps, dtype=bool)
        for s in starts:
            rows = np.arange(s, s + 16)
            assert len(set(np.searchsorted(np.cumsum(layout.lengths), rows, "right"))) == 1
            if part != "all":
                assert len(set(layout.split_of(rows))) == 1
            covered[rows] = True
        # every step of every part long enough to hold a window is covered
        for first, steps in layout.parts(part):
            assert covered[first : first + steps].all() == (steps >= 16)
    assert window_starts(20, 8, 5).tolist() == [0, 5, 10, 12]


def test_the_store_streams_the_same_windows_as_the_array_holds(tmp_path):
    X = cycle(700)
    store = ingest([X[:400], X[400:]], tmp_path / "w.zarr", series=True, progress=False)
    starts = store.series.windows("train", 24, 3)
    stream = StoreBatches(store, starts, 64, seed=3, window_length=24)
    seen = []
    for batch in stream.batches(0):
        assert batch.shape[1:] == (24, 2)
        seen.append(batch.numpy())
    windows = np.concatenate(seen)
    # each training window exactly once, bitwise as cut from the series
    expected = np.stack([X[s : s + 24] for s in starts])
    order = np.lexsort(windows.reshape(len(windows), -1).T)
    ref = np.lexsort(expected.reshape(len(expected), -1).T)
    np.testing.assert_array_equal(windows[order], expected[ref])
    again = np.concatenate([b.numpy() for b in stream.batches(0)])
    np.testing.assert_array_equal(again, windows)  # the order is a function of (seed, epoch)


@pytest.mark.parametrize("page_cache", [None, False], ids=["cached", "past-the-cache"])
@pytest.mark.parametrize("length", [24, 80])  # within a block's halo; past the next block
def test_block_order_cuts_every_window_from_blocks_and_their_halos(
    tmp_path, monkeypatch, length, page_cache
):
    """In block order (a store larger than memory, or on object storage) a window starting near
    a block's end is completed from the rows read after it, across chunk boundaries too: each
    training window exactly once per epoch, bitwise as cut from the series, and an epoch read
    from a batch on (a resumed run) is the rest of the same epoch."""
    # 64 channels of float32: chunks of 256 steps (the fewest that fill whole 64 KiB pages)
    monkeypatch.setattr("aekit.data.store.CHUNK_BYTES", 256 * 256)
    X = cycle(2_000, channels=64)
    store = ingest([X[:1_200], X[1_200:]], tmp_path / "w.zarr", series=True, progress=False)
    assert store.chunk_rows == 256
    starts = store.series.windows("train", length, 1)
    # Blocks of 43 steps, four of them per buffer: halos reach into the next block and chunk
    stream = StoreBatches(
        store, starts, 32, seed=5, order="block", shuffle_window=4, block_bytes=40 * 256,
        window_length=length, page_cache=page_cache,
    )  # fmt: skip
    # Past the cache (a store larger than memory), halos of any length are read unaligned
    assert stream.uncached == (page_cache is False and store.uncached_reads)
    assert stream.order_mode == "block" and stream.layout.block_rows == 43
    assert "read with the" in stream.order_choice
    for epoch in (0, 1):
        batches = [b.numpy() for b in stream.batches(epoch)]
        windows = np.concatenate(batches)
        served = stream.rows(epoch)
        expected = np.stack([X[s : s + length] for s in served])
        np.testing.assert_array_equal(windows, expected)
        assert sorted(served.tolist()) == sorted(starts.tolist())
        rest = np.concatenate([b.numpy() for b in stream.batches(epoch, start=7)])
        np.testing.assert_array_equal(rest, windows[7 * 32 :])
    assert not np.array_equal(stream.rows(0), stream.rows(1))


def test_per_step_values_are_the_mean_of_the_windows_that_cover_each_step(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(301, 3)).astype(np.float32)

    def fn(windows):  # a value that depends on the step's place in its window
        return np.asarray(windows) * (1 + np.arange(windows.shape[1]))[None, :, None]

    brute = StepMeans(301)
    starts = window_starts(301, 20, 7)
    brute.add(starts, np.stack([fn(X[None, s : s + 20])[0] for s in starts]))
    monkeypatch.setattr(training_series, "PIECE_WINDOWS", 5)  # many pieces, each completed
    blocks = list(per_step(lambda a, n: X[a : a + n], 0, 301, 20, 7, fn, batch_size=4))
    assert len(blocks) > 1
    np.testing.assert_allclose(np.concatenate(blocks), brute.result(), rtol=1e-6)


def test_the_window_length_is_the_period_of_the_training_data():
    length, why = auto_window_length([cycle(5000, period=40)])
    assert length == 40 and "period" in why
    noise = np.random.default_rng(0).normal(size=(5000, 2))
    assert auto_window_length([noise])[0] == 64  # no period: the stated default


@pytest.mark.parametrize("kind,variational", [("dense", False), ("conv", False), ("dense", True)])
def test_the_estimator_scores_every_step_and_finds_a_planted_fault(kind, variational):
    train, test = cycle(3000), cycle(1500, seed=1)
    fault = np.zeros(1500, dtype=bool)
    fault[700:730] = True
    test[fault, 0] += 1.5
    ae = Autoencoder(window_length="auto", kind=kind, variational=variational, epochs=6,
                     random_state=0).fit(train)  # fmt: skip
    assert (ae.window_length_, ae.window_stride_, ae.sample_shape_) == (40, 1, (40, 2))
    scores = ae.anomaly_score(test)
    assert scores.shape == (1500,) and np.isfinite(scores).all()
    assert roc_auc_score(fault, scores) > 0.95
    assert ae.predict(test).shape == (1500,)
    assert ae.reconstruct(test).shape == (1500, 2)
    assert ae.transform(test).shape == (1500 - 40 + 1, 2)  # one code per window at the stride
    assert ae.inverse_transform(ae.transform(test[:50])).shape == (11, 40, 2)
    # the threshold is set on time steps of the held-out end of the series
    assert ae.threshold_info_["unit"] == "time steps" and ae.threshold_info_["samples"] == 300


def test_a_series_model_refuses_series_of_other_channels_and_rows_stay_rows():
    ae = Autoencoder(window_length=16, epochs=1, random_state=0).fit(cycle(400))
    with pytest.raises(ValueError, match="2 channel"):
        ae.anomaly_score(cycle(400, channels=3))
    with pytest.raises(AekitError, match="shorter than the window"):
        ae.anomaly_score(cycle(10))
    rows = Autoencoder(epochs=1, random_state=0).fit(cycle(400))
    assert not hasattr(rows, "window_length_") and rows.anomaly_score(cycle(400)).shape == (400,)


def test_a_run_on_rows_loads_as_an_estimator_that_reads_rows(tmp_path):
    """A config's window_length ('auto' unless set) means nothing for a store of rows: the run's
    estimator keeps None, so fitting it again (or a clone of it) reads a table as rows."""
    from sklearn.base import clone

    from aekit.cli import main

    X = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    ingest(X, tmp_path / "rows.zarr", progress=False)
    assert main(["train", str(tmp_path / "rows.zarr"), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--quiet"]) == 0  # fmt: skip
    loaded = load(tmp_path / "run")
    assert loaded.get_params()["window_length"] is None
    again = clone(loaded).fit(X)
    assert again.transform(X).shape == (300, 2) and not hasattr(again, "window_length_")
    with pytest.raises(ValueError, match=r"give each series as a \(T,\) or \(T, C\) array"):
        Autoencoder(window_length=8, epochs=1).fit([np.zeros((40, 2, 2))])


def test_a_series_run_writes_one_row_per_step_and_loads_as_fitted(tmp_path):
    folder = tmp_path / "machines"
    folder.mkdir()
    np.save(folder / "m1.npy", cycle(800))
    np.save(folder / "m2.npy", cycle(600, seed=2))
    aekit = [sys.executable, "-m", "aekit"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*aekit, *args], capture_output=True, text=True, cwd=tmp_path)

    assert cli("ingest", "machines", "m.zarr", "--series").returncode == 0
    done = cli("train", "m.zarr", "--out", "run", "--epochs", "2", "--window-length", "32",
               "--kind", "conv")  # fmt: skip
    assert done.returncode == 0, done.stderr
    windows = json.loads((tmp_path / "run" / "model.json").read_text())["windows"]
    assert (windows["length"], windows["stride"], len(windows["channel_weights"])) == (32, 1, 2)
    done = cli("score", "run", "m.zarr", "--out", "scores.parquet")
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "scores.parquet").to_pandas()
    assert list(table.columns) == ["time", "series", "score", "anomaly", "share_0", "share_1"]
    assert table["series"].value_counts().to_dict() == {"m1": 800, "m2": 600}
    assert table["time"].iloc[[0, 799, 800]].tolist() == [0, 799, 0]
    np.testing.assert_allclose(table[["share_0", "share_1"]].sum(axis=1), 1, atol=1e-5)
    ae = load(tmp_path / "run")
    np.testing.assert_allclose(
        ae.anomaly_score(open_store(tmp_path / "m.zarr")), table["score"], rtol=1e-5
    )
    done = cli("encode", "run", "m.zarr", "--out", "codes.parquet")
    assert done.returncode == 0, done.stderr
    codes = pq.read_table(tmp_path / "codes.parquet").to_pandas()
    assert list(codes.columns) == ["series", "start", "end", "z0", "z1"]
    assert codes["series"].value_counts().to_dict() == {"m1": 800 - 31, "m2": 600 - 31}
    assert codes[["start", "end"]].iloc[[0, 800 - 32, 800 - 31]].values.tolist() == [
        [0, 31], [768, 799], [0, 31],
    ]  # fmt: skip
    np.testing.assert_allclose(
        codes[["z0", "z1"]], ae.transform(open_store(tmp_path / "m.zarr")), rtol=1e-5
    )
    refused = cli("reconstruct", "run", "m.zarr", "--out", "x.npy")
    assert refused.returncode == 2 and "aekit score" in refused.stderr
    refused = cli("train", "m.zarr", "--out", "run2", "--window-length", "2000")
    assert refused.returncode == 2 and "window_length is 2000" in refused.stderr


def test_an_edited_series_layout_is_refused(tmp_path):
    store = ingest(cycle(300), tmp_path / "e.zarr", series=True, progress=False)
    meta_path = Path(store.path) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["aekit"]["series"]["lengths"] = [299]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(AekitError, match=r"series\.lengths add up to 299"):
        open_store(tmp_path / "e.zarr")


def test_a_deviation_in_a_smooth_channel_outranks_a_sparse_channels_routine_spikes(tmp_path):
    # a smooth sensor beside an on/off flag that is on a tenth of the time, at random, in
    # training as in test
    rng = np.random.default_rng(0)

    def telemetry(steps: int) -> np.ndarray:
        x = cycle(steps, channels=1)
        flag = (rng.random(steps) < 0.1).astype(np.float32)
        return np.concatenate([x, flag[:, None]], axis=1)

    train, test = telemetry(4000), telemetry(2000)
    fault = np.zeros(2000, dtype=bool)
    fault[1000:1040] = True
    test[fault, 0] += 0.6
    ae = Autoencoder(window_length=40, epochs=6, random_state=0).fit(train)
    # the flag, standardised, spikes to 3 units at random: it weighs less than the sensor
    assert ae.channel_weights_[0] > 3 * ae.channel_weights_[1]
    scores = ae.anomaly_score(test)
    assert roc_auc_score(fault, scores) > 0.95
    weights = ae.channel_weights_
    ae.channel_weights_ = None  # unweighted, the flag's spikes rank above more fault steps
    assert average_precision_score(fault, scores) > 0.7
    assert average_precision_score(fault, ae.anomaly_score(test)) < 0.3
    ae.channel_weights_ = weights
    # saved with the run and read back; an edited weight is refused, naming the field
    save_model(ae, tmp_path / "run")
    np.testing.assert_allclose(load(tmp_path / "run").anomaly_score(test), scores, rtol=1e-5)
    path = tmp_path / "run" / "model.json"
    description = json.loads(path.read_text())
    description["windows"]["channel_weights"] = [1.0, -1.0]
    path.write_text(json.dumps(description))
    with pytest.raises(AekitError, match=r"windows\.channel_weights"):
        load(tmp_path / "run")


def test_a_series_run_killed_mid_epoch_resumes_to_bitwise_the_same_weights(tmp_path):
    """Windows are cut at batch time from a position the checkpoint holds: a run killed without
    warning in its second epoch and resumed ends with the weights and curves of one that ran
    through."""
    folder = tmp_path / "machines"
    folder.mkdir()
    np.save(folder / "m1.npy", cycle(12_000, channels=3))
    np.save(folder / "m2.npy", cycle(8_000, seed=2, channels=3))
    aekit = [sys.executable, "-m", "aekit"]
    subprocess.run([*aekit, "ingest", str(folder), str(tmp_path / "m.zarr"), "--series"],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    batch = 64
    starts = open_store(tmp_path / "m.zarr").series.windows("train", 32, 1)
    steps_per_epoch = -(-len(starts) // batch)

    def train(out: Path) -> list[str]:
        return [*aekit, "train", str(tmp_path / "m.zarr"), "--out", str(out), "--epochs", "3",
                "--window-length", "32", "--window-stride", "1", "--batch-size", str(batch),
                "--schedule", "cosine", "--quiet",
                "--set", "checkpoint.every_steps=10"]  # fmt: skip

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(train(whole), check=True, timeout=600)
    with subprocess.Popen(train(killed)) as proc:
        deadline = time.time() + 300
        while time.time() < deadline:
            saved = killed / "checkpoints"
            last = latest_checkpoint(saved) if saved.exists() else None
            if last is not None and int(last.stem.split("-")[1]) >= steps_per_epoch * 1.3:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    position = load_checkpoint(latest_checkpoint(killed / "checkpoints"))["position"]
    assert position["epoch"] == 1 and 0 < position["batch"] < steps_per_epoch, position
    assert not (killed / "model.safetensors").exists()
    subprocess.run([*aekit, "train", "--out", str(killed), "--resume", "--quiet"],
                   check=True, timeout=600)  # fmt: skip
    assert (killed / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    curves = [
        [(r["epoch"], r["train_loss"], r["val_loss"], r["lr"]) for r in csv.DictReader(lines)]
        for lines in ((run / "metrics.csv").read_text().splitlines() for run in (whole, killed))
    ]
    assert curves[0] == curves[1] and len(curves[0]) == 3
    scores = [load(run).anomaly_score(open_store(tmp_path / "m.zarr")) for run in (whole, killed)]
    np.testing.assert_array_equal(*scores)
