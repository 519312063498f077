from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from aekit.data.ingest import ingest
from aekit.data.prefetch import prefetch
from aekit.data.store import open_store
from aekit.data.stream import StoreBatches, rank_share
from aekit.errors import AekitError


@pytest.fixture
def sorted_store(tmp_path, monkeypatch):
    """10 classes stored sorted by class, with small chunks so batches span many chunk files."""
    monkeypatch.setattr("aekit.data.store.CHUNK_BYTES", 64 * 4 * 50)  # 50 rows per chunk
    y = np.repeat(np.arange(10), 400)
    X = np.column_stack([y, np.arange(4000), np.zeros((4000, 62))]).astype(np.float32)
    return ingest(X, tmp_path / "sorted.zarr", labels=y, val_fraction=0.1, progress=False)


def test_each_epoch_reads_every_training_row_once_in_a_seeded_order(sorted_store):
    stream = StoreBatches(sorted_store, sorted_store.train_index, 256, seed=5)
    epoch0 = torch.cat(list(stream.batches(0)))[:, 1].numpy().astype(int)
    assert sorted(epoch0) == sorted(sorted_store.train_index)
    again = (
        torch.cat(
            list(StoreBatches(sorted_store, sorted_store.train_index, 256, seed=5).batches(0))
        )[:, 1]
        .numpy()
        .astype(int)
    )
    np.testing.assert_array_equal(epoch0, again)
    epoch1 = torch.cat(list(stream.batches(1)))[:, 1].numpy().astype(int)
    assert not np.array_equal(epoch0, epoch1)
    assert len(stream) == -(-len(sorted_store.train_index) // 256)


def test_batches_of_a_class_sorted_store_mix_classes_like_the_whole_store(sorted_store):
    stream = StoreBatches(sorted_store, sorted_store.train_index, 256, seed=0)
    overall = np.bincount(sorted_store.labels[sorted_store.train_index], minlength=10)
    overall = overall / overall.sum()
    for batch in list(stream.batches(0))[:-1]:  # the last batch is a remainder
        share = np.bincount(batch[:, 0].numpy().astype(int), minlength=10) / len(batch)
        # Binomial spread of a 10 % class in 256 draws is 1.9 %; 4 sd of slack
        assert np.abs(share - overall).max() < 0.075
    # Reading in stored order instead would give one or two classes per batch
    first = sorted_store.read(np.sort(sorted_store.train_index)[:256])
    assert len(np.unique(first[:, 0])) <= 2


def test_ranks_get_equal_batch_counts_and_cover_the_epoch(sorted_store):
    index = sorted_store.train_index
    streams = [
        StoreBatches(sorted_store, index, 64, seed=1, rank=r, world_size=3) for r in range(3)
    ]
    rows = [s.rows(0) for s in streams]
    assert len({len(r) for r in rows}) == 1 and len({len(s) for s in streams}) == 1
    assert set(np.concatenate(rows)) == set(index)
    val = [rank_share(sorted_store.val_index, r, 3, pad=False) for r in range(3)]
    merged = np.concatenate(val)
    assert len(merged) == len(sorted_store.val_index) == len(set(merged))


def test_prefetch_hands_on_errors_and_stops_with_its_consumer():
    def failing():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(failing(), depth=2):
            got.append(item)
    assert got == [1]

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for item in prefetch(endless(), depth=3):
        if item == 5:
            break
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert count == len(produced) and count <= 5 + 3 + 2


def test_estimator_trains_from_a_store(sorted_store):
    from aekit import Autoencoder

    ae = Autoencoder(latent_dim=2, hidden=(16,), epochs=4, batch_size=128, random_state=0)
    ae.fit(sorted_store)
    losses = [h["train_loss"] for h in ae.history_]
    assert losses[-1] < losses[0] and "val_loss" in ae.history_[0]
    assert ae.n_features_in_ == 64
    assert ae.transform(np.zeros((3, 64), dtype=np.float32)).shape == (3, 2)


_KILL_SCRIPT = """
import sys, numpy as np
from aekit.data.ingest import ingest
import aekit.data.store as store_module
store_module.CHUNK_BYTES = 4096
X = np.random.default_rng(0).normal(size=(200_000, 16)).astype(np.float32)
print("ready", flush=True)
ingest(X, sys.argv[1], progress=False)
"""


def test_an_ingest_killed_midway_leaves_nothing_that_opens_and_can_run_again(tmp_path):
    dest = tmp_path / "killed.zarr"
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(dest)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # Wait until chunk files are being written, then kill without warning
        deadline = time.time() + 60
        while time.time() < deadline and not list(tmp_path.glob(".killed.zarr.partial-*/x/c/1*")):
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = list(tmp_path.glob(".killed.zarr.partial-*"))
    assert partial, "the kill came after the ingest finished; make the data larger"
    assert not dest.exists()
    with pytest.raises(AekitError, match="not a complete aekit store"):
        open_store(partial[0])
    store = ingest(np.ones((10, 16)), dest, progress=False)
    assert store.n == 10
