"""Batches cut on the training device (aekit.data.device), run with device="cpu": the device
path must serve bitwise the host path's batches, from streamed windows and from its cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.config import load_config
from aekit.data.ingest import ingest
from aekit.data.stream import StoreBatches
from aekit.training.fitting import fit, store_sources

SMALL = {"block_bytes": 2560, "shuffle_window": 8}  # blocks of 10 rows, 8 a window


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr("aekit.data.store.CHUNK_BYTES", 64 * 4 * 50)  # chunks of 256 rows
    rng = np.random.default_rng(0)
    X = np.column_stack([np.arange(3001), rng.normal(size=(3001, 63))]).astype(np.float32)
    return ingest(X, tmp_path / "rows.zarr", val_fraction=0.1, progress=False)


@pytest.fixture
def series(tmp_path, monkeypatch):
    monkeypatch.setattr("aekit.data.store.CHUNK_BYTES", 256 * 256)  # chunks of 256 steps
    t = np.arange(2_000)[:, None]
    X = np.sin(2 * np.pi * t / (17 + np.arange(64))).astype(np.float32)
    return ingest([X[:1_200], X[1_200:]], tmp_path / "s.zarr", series=True, progress=False), X


def epochs(stream: StoreBatches, count: int = 3, start: int = 0) -> list[np.ndarray]:
    """Each epoch's batches, joined (each batch's length is checked against the host's too)."""
    out = []
    for epoch in range(count):
        batches = list(stream.batches(epoch, start=start if epoch == count - 1 else 0))
        out.append([b.numpy() for b in batches])
    return out


def same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        assert [len(x) for x in epoch_a] == [len(x) for x in epoch_b]
        np.testing.assert_array_equal(np.concatenate(epoch_a), np.concatenate(epoch_b))


@pytest.mark.parametrize("cache", [False, True], ids=["streamed", "cached"])
@pytest.mark.parametrize("order", ["block", "global"])
@pytest.mark.parametrize("world", [(0, 1), (1, 2)], ids=["one-rank", "rank-1-of-2"])
def test_device_batches_are_bitwise_the_host_batches(store, order, cache, world):
    rank, world_size = world
    common = dict(order=order, rank=rank, world_size=world_size, **SMALL)
    host = StoreBatches(store, store.train_index, 97, seed=3, **common)
    device = StoreBatches(
        store, store.train_index, 97, seed=3, device="cpu", device_cache=cache, **common
    )
    # the last epoch is resumed from its 5th batch: the rest of the same epoch
    same(epochs(device, start=5), epochs(host, start=5))
    assert ("stays on cpu" in device.order_choice) == cache


@pytest.mark.parametrize("cache", [False, True], ids=["streamed", "cached"])
@pytest.mark.parametrize("order", ["block", "global"])
def test_device_windows_of_a_series_are_bitwise_the_host_windows(series, order, cache):
    store, X = series
    starts = store.series.windows("train", 80, 1)  # halos past the next block of 43 steps
    common = dict(order=order, shuffle_window=4, block_bytes=40 * 256, window_length=80)
    host = StoreBatches(store, starts, 32, seed=5, **common)
    device = StoreBatches(store, starts, 32, seed=5, device="cpu", device_cache=cache, **common)
    got = epochs(device, start=7)
    same(got, epochs(host, start=7))
    served = device.rows(0).reshape(-1, 1) if order == "block" else device.rows(0)
    # a gathered batch reads its windows sorted by start (each chunk's part in one pass)
    if order == "global":
        served = np.concatenate([np.sort(served[i : i + 32]) for i in range(0, len(served), 32)])
    expected = np.stack([X[s : s + 80] for s in served.ravel()])
    np.testing.assert_array_equal(np.concatenate(got[0]), expected)


def test_a_cached_split_is_not_read_from_the_store_after_its_first_epoch(store, monkeypatch):
    stream = StoreBatches(
        store, store.train_index, 128, seed=1, order="block", device="cpu", device_cache=True,
        **SMALL,
    )  # fmt: skip
    first = list(stream.batches(0))
    assert stream._cache is not None and stream._cache.complete

    def refuse(*args, **kwargs):
        raise AssertionError("the store was read after the split was cached")

    monkeypatch.setattr(type(store), "read_into", refuse)
    monkeypatch.setattr(type(store), "read", refuse)
    later = np.concatenate([b.numpy() for b in stream.batches(1)])
    assert sorted(later[:, 0].tolist()) == sorted(np.concatenate(first)[:, 0].tolist())


def test_a_cache_not_filled_by_a_whole_epoch_is_filled_in_order(store):
    """A run resumed mid-epoch serves only part of it: the cache is first read in order."""
    host = StoreBatches(store, store.train_index, 64, seed=2, order="global")
    device = StoreBatches(
        store, store.train_index, 64, seed=2, order="global", device="cpu", device_cache=True
    )
    rest = np.concatenate([b.numpy() for b in device.batches(4, start=3)])
    assert device._cache is not None and device._cache.complete
    np.testing.assert_array_equal(rest, np.concatenate([b.numpy() for b in host.batches(4, 3)]))


def test_a_fit_from_device_batches_ends_with_the_host_fit_weights(store):
    config = load_config(None, overrides={"train.epochs": 3, "data.shuffle": "block"})
    results = []
    for device in (None, torch.device("cpu")):
        sources = store_sources(store, 128, seed=0, order="block", device=device)
        assert sources.train.device == device
        results.append(fit(config, sources, seed=0, device=torch.device("cpu")))
    for a, b in zip(*(r.model.state_dict().values() for r in results), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_float16_store_trains_bitwise_as_its_float32_twin(tmp_path):
    """Pixels k/16 are exact in float16: the half-size store must train to the same weights
    (the model casts each batch to float32 on the device)."""
    from sklearn.datasets import load_digits

    X = (load_digits().data[:600] / 16).astype(np.float32)
    config = load_config(None, overrides={"train.epochs": 2})
    results, stores = [], []
    for dtype in ("float32", "float16"):
        stores.append(ingest(X, tmp_path / f"{dtype}.zarr", dtype=dtype, progress=False))
        results.append(fit(config, store_sources(stores[-1], 64, seed=0), seed=0,
                           device=torch.device("cpu")))  # fmt: skip
    assert stores[1].dtype == np.float16 and stores[1].nbytes * 2 == stores[0].nbytes
    assert stores[1].stats["mean"].tolist() == stores[0].stats["mean"].tolist()
    for a, b in zip(*(r.model.state_dict().values() for r in results), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_samples_read_into_a_given_array_are_the_samples_read(store, series):
    rows = np.array([5, 2999, 17, 256, 255])
    out = np.empty((5, 64), dtype=np.float32)
    assert store.read(rows, out) is out
    np.testing.assert_array_equal(out, store.read(rows))
    with pytest.raises(IndexError, match="outside"):
        store.read(np.array([3001]), out[:1])
    windows, X = series
    stream = StoreBatches(windows, np.array([3, 900, 40]), 2, seed=0, window_length=80)
    into = np.empty((3, 80, 64), dtype=np.float32)
    stream._read(np.array([3, 900, 40]), into)
    np.testing.assert_array_equal(into, np.stack([X[s : s + 80] for s in (3, 900, 40)]))


def test_an_ordered_map_keeps_the_order_raises_at_its_item_and_stops_with_its_consumer():
    import threading
    import time

    from aekit.data.prefetch import ordered_map

    def slow_square(i):
        time.sleep(0.001 * (i % 3))  # later items often finish first
        return i * i

    assert list(ordered_map(slow_square, range(50), 4, 6)) == [i * i for i in range(50)]

    def fail_at_7(i):
        if i == 7:
            raise ValueError("item 7")
        return i

    got = []
    with pytest.raises(ValueError, match="item 7"):
        for value in ordered_map(fail_at_7, range(20), 3, 4):
            got.append(value)
    assert got == list(range(7))
    started = []
    mapped = ordered_map(lambda i: started.append(i) or i, range(10_000), 2, 4)
    assert next(mapped) == 0
    mapped.close()
    assert len(started) <= 8 and not any(t.name.startswith("aekit-gather") and t.is_alive()
                                         for t in threading.enumerate())  # fmt: skip
