from __future__ import annotations

import numpy as np
import pytest
import zarr

from aekit.data import uncached
from aekit.data.ingest import ingest
from aekit.data.records import id_text
from aekit.data.split import assign_split
from aekit.data.stats import RunningStats
from aekit.data.store import open_store
from aekit.errors import AekitError, DataError


def test_store_is_a_standard_zarr_group_with_everything_the_model_needs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 7)) * 10 + 3
    y = np.repeat(np.array(["cat", "dog"]), 250)
    store = ingest(X, tmp_path / "s.zarr", labels=y, val_fraction=0.2, seed=4, progress=False)

    group = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert group["x"].shape == (500, 7) and group["x"].dtype == np.float32
    np.testing.assert_array_equal(group["x"][:], X.astype(np.float32))
    np.testing.assert_array_equal(group["y"][:], (y == "dog").astype(np.int64))
    # A table's ids are its row numbers, kept as numbers and shown counted from 1
    assert group["ids"].dtype == np.int64 and list(group["ids"][:3]) == [0, 1, 2]
    assert list(id_text(store.ids(np.arange(3)))) == ["row 1", "row 2", "row 3"]
    meta = group.attrs["aekit"]
    assert meta["complete"] and meta["format_version"] == 1
    assert meta["class_names"] == ["cat", "dog"] and meta["sample_shape"] == [7]

    split = group["split"][:]
    np.testing.assert_array_equal(split, assign_split(np.arange(500), 4, 0.2))
    assert 0.12 < split.mean() < 0.28
    train = X[split == 0]
    np.testing.assert_allclose(store.stats["mean"], train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(store.stats["std"], train.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(store.stats["min"], train.min(axis=0).astype(np.float32))
    rows = np.array([499, 0, 250, 17])
    np.testing.assert_array_equal(store.read(rows), X[rows].astype(np.float32))


def test_running_stats_merge_exactly_and_survive_large_offsets():
    rng = np.random.default_rng(1)
    X = 1e8 + rng.normal(size=(10_000, 3))
    stats = RunningStats(3)
    for block in np.array_split(X, 37):
        stats.update(block)
    np.testing.assert_allclose(stats.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, X.std(axis=0), rtol=1e-8)
    # A float32 running sum would lose the unit-scale spread at this offset entirely
    assert np.float32(1e8) + np.float32(1.0) == np.float32(1e8)


def test_split_depends_only_on_seed_and_record():
    records = np.arange(100_000)
    split = assign_split(records, seed=3, val_fraction=0.1)
    assert abs(split.mean() - 0.1) < 0.005
    np.testing.assert_array_equal(split[5000:6000], assign_split(records[5000:6000], 3, 0.1))
    assert not np.array_equal(split, assign_split(records, seed=4, val_fraction=0.1))


def test_a_store_that_exists_is_never_overwritten(tmp_path):
    ingest(np.ones((10, 2)), tmp_path / "s.zarr", progress=False)
    with pytest.raises(DataError, match="already exists; remove it or choose another"):
        ingest(np.zeros((10, 2)), tmp_path / "s.zarr", progress=False)
    assert open_store(tmp_path / "s.zarr").read(np.arange(1))[0, 0] == 1


def test_incomplete_and_foreign_folders_do_not_open_as_stores(tmp_path):
    group = zarr.open_group(tmp_path / "half.zarr", mode="w", zarr_format=3)
    group.attrs["aekit"] = {"format_version": 1}
    with pytest.raises(AekitError, match="not a complete aekit store"):
        open_store(tmp_path / "half.zarr")
    with pytest.raises(AekitError, match=r"no zarr\.json"):
        open_store(tmp_path)


def test_reads_through_zarr_when_chunks_are_compressed(tmp_path):
    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    ingest(X, tmp_path / "s.zarr", progress=False)
    # Another tool rewrites the samples with its default (compressing) codecs
    group = zarr.open_group(tmp_path / "s.zarr", mode="r+")
    del group["x"]
    group.create_array("x", data=X, chunks=(8, 3))
    store = open_store(tmp_path / "s.zarr")
    assert not store._direct
    np.testing.assert_array_equal(store.read(np.array([19, 2, 7])), X[[19, 2, 7]])


@pytest.mark.skipif(not uncached.supported(), reason="O_DIRECT is Linux's")
def test_uncached_reads_return_any_byte_range_up_to_a_files_unaligned_end(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    path = tmp_path / "chunk"
    path.write_bytes(data)
    for offset, size in ((0, 10_000), (4095, 5), (4096, 4096), (9000, 1000), (8191, 1809)):
        out = bytearray(size)
        assert uncached.read_uncached(path, offset, memoryview(out))
        assert bytes(out) == data[offset : offset + size]
    with pytest.raises(OSError, match="shorter than its chunk"):
        uncached.read_uncached(path, 9000, memoryview(bytearray(1001)))


def test_a_split_made_elsewhere_is_kept_row_for_row(tmp_path):
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    store = ingest(X, tmp_path / "s.zarr", validation_rows=[3, 7, 11], progress=False)
    assert store.val_index.tolist() == [3, 7, 11]
    # the statistics are the training split's: the 17 other rows
    assert store.stats["mean"] == pytest.approx(np.delete(X, [3, 7, 11], axis=0).mean(axis=0))
