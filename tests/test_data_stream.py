from __future__ import annotations

import ctypes
import errno
import mmap
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pytest
import torch

from aekit.data.ingest import ingest
from aekit.data.prefetch import prefetch
from aekit.data.quality import class_mix_distance, random_batch_distance
from aekit.data.store import open_store
from aekit.data.stream import StoreBatches, in_order, rank_share
from aekit.errors import AekitError

# Blocks of 10 rows (2560 bytes) read 8 at a time: an epoch spans many windows
SMALL_BLOCKS = {"block_bytes": 2560, "shuffle_window": 8}
ORDERS = ["global", "block"]


def ids(batch: torch.Tensor) -> np.ndarray:
    """The store rows of a batch of the sorted store (column 1 holds each row's number)."""
    return batch[:, 1].numpy().astype(int)


@pytest.fixture
def sorted_store(tmp_path, monkeypatch):
    """10 classes stored sorted by class, with small chunks so batches span many chunk files
    (256 rows: the fewest that fill a whole number of 64 KiB)."""
    monkeypatch.setattr("aekit.data.store.CHUNK_BYTES", 64 * 4 * 50)  # 50 rows per chunk
    y = np.repeat(np.arange(10), 400)
    X = np.column_stack([y, np.arange(4000), np.zeros((4000, 62))]).astype(np.float32)
    return ingest(X, tmp_path / "sorted.zarr", labels=y, val_fraction=0.1, progress=False)


@pytest.mark.parametrize("batch_size", [1, 97, 4096])
def test_a_pass_in_order_serves_every_row_once_in_order_across_chunks_and_runs(
    sorted_store, batch_size
):
    # Blocks of 10 rows, runs of 6 blocks: batches of 97 straddle blocks, runs and chunks
    batches = list(in_order(sorted_store, batch_size, block_bytes=2560))
    np.testing.assert_array_equal(np.concatenate([ids(b) for b in batches]), np.arange(4000))
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)


def test_ids_of_rows_within_one_chunk_or_across_chunks_are_the_records(sorted_store):
    for rows in (
        np.arange(40, 50),
        np.arange(40, 60),
        np.array([49, 3, 12]),
        np.arange(3990, 4000),
    ):
        np.testing.assert_array_equal(sorted_store.ids(rows), rows)


@pytest.mark.parametrize("order", ORDERS)
def test_each_epoch_reads_every_training_row_once_in_a_seeded_order(sorted_store, order):
    def stream():
        index = sorted_store.train_index
        return StoreBatches(sorted_store, index, 256, seed=5, order=order, **SMALL_BLOCKS)

    epoch0 = np.concatenate([ids(b) for b in stream().batches(0)])
    assert sorted(epoch0) == sorted(sorted_store.train_index)
    np.testing.assert_array_equal(epoch0, np.concatenate([ids(b) for b in stream().batches(0)]))
    epoch1 = np.concatenate([ids(b) for b in stream().batches(1)])
    assert not np.array_equal(epoch0, epoch1)
    assert len(list(stream().batches(0))) == len(stream()) == -(-len(epoch0) // 256)


def test_batches_of_a_class_sorted_store_mix_classes_like_the_whole_store(sorted_store):
    index = sorted_store.train_index
    freq = np.bincount(sorted_store.labels[index]) / len(index)

    def distance(**kwargs):
        stream = StoreBatches(sorted_store, index, 64, seed=0, **kwargs)
        return class_mix_distance((ids(b) // 400 for b in stream.batches(0)), 10)

    # A random batch of 64 strays from the mix by 0.15 on average; in block order the window's
    # own mix adds its spread (0.24 with 40 single-class blocks a window). The measures came
    # within 10 % of both over seeds 0-2; 20 % of slack.
    assert distance(order="global") < 1.2 * random_batch_distance(freq, 64)
    windowed = {"block_bytes": 2560, "shuffle_window": 40}
    expected = random_batch_distance(freq, 64, window_blocks=40)
    assert distance(order="block", **windowed) < 1.2 * expected
    # Negative control: stored order gives one or two classes per batch
    assert distance(shuffle=False) > 3 * expected


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


@pytest.mark.parametrize("order", ORDERS)
def test_global_batches_are_the_same_for_any_world_size(sorted_store, order):
    # 3,593 rows: divisible by neither 2 nor 3, nor by the batch of 60 (the last holds 53)
    index = sorted_store.train_index[:-7]

    def rank_batches(world):
        streams = [
            StoreBatches(
                sorted_store,
                index,
                60 // world,
                2,
                order=order,
                rank=r,
                world_size=world,
                **SMALL_BLOCKS,
            )
            for r in range(world)
        ]
        assert len({len(s) for s in streams}) == 1
        batches = [[ids(b) for b in s.batches(3)] for s in streams]
        return batches, streams[0].rows(3), [s.final_share for s in streams]

    (single,), order_rows, (no_share,) = rank_batches(1)
    assert no_share is None
    for world in (2, 3):
        per_rank, _, shares = rank_batches(world)
        assert len({len(r) for r in per_rank}) == 1 and len(per_rank[0]) == len(single)
        for k, whole in enumerate(single):
            union = Counter(np.concatenate([r[k] for r in per_rank]).tolist())
            # The last global batch also holds the padding: the epoch's first rows again
            padding = -len(order_rows) % world if k == len(single) - 1 else 0
            assert padding > 0 or k < len(single) - 1
            assert union == Counter([*whole.tolist(), *order_rows[:padding].tolist()])
        # Its real rows are each rank's first `rows`, weighed so that DDP's average over the
        # ranks of (sum x scale) is the mean one process takes over the same batch
        last = [(r[-1], rows, scale) for r, (rows, scale) in zip(per_rank, shares, strict=True)]
        real = np.concatenate([batch[:rows] for batch, rows, _ in last])
        assert Counter(real.tolist()) == Counter(single[-1].tolist())
        assert {scale for _, scale in shares} == {world / len(single[-1])}
        weighed = sum(batch[:rows].sum() * scale for batch, rows, scale in last)
        assert weighed / world == pytest.approx(single[-1].mean())


@pytest.mark.parametrize("order", [*ORDERS, "unshuffled"])
def test_resuming_mid_epoch_serves_exactly_the_remaining_batches(sorted_store, order):
    kwargs = {"shuffle": False} if order == "unshuffled" else {"order": order}
    stream = StoreBatches(sorted_store, sorted_store.train_index, 100, 7, **kwargs, **SMALL_BLOCKS)
    whole = list(stream.batches(1))
    for start in (0, 1, 13, len(whole) - 1, len(whole)):
        resumed = list(stream.batches(1, start=start))
        assert len(resumed) == len(whole) - start
        assert all(torch.equal(a, b) for a, b in zip(resumed, whole[start:], strict=True))


def test_a_resumed_block_epoch_reads_no_window_it_skips(sorted_store, monkeypatch):
    stream = StoreBatches(sorted_store, sorted_store.train_index, 100, 7, order="block")
    stream.window = 2  # windows of 2 blocks of 256 rows: the last batch needs 1 or 2 windows
    read = []
    real = sorted_store.read_into
    monkeypatch.setattr(
        sorted_store, "read_into", lambda start, out, **kw: (read.append(start), real(start, out))
    )
    last = list(stream.batches(0, start=len(stream) - 1))
    assert len(read) <= 4
    assert set(stream.layout.block_of(ids(last[0]))) <= set(stream.layout.block_of(read))


def test_unshuffled_rows_are_read_in_whole_blocks_in_their_order(sorted_store, monkeypatch):
    val = sorted_store.val_index
    expected = sorted_store.read(val)
    monkeypatch.setattr(sorted_store, "read", None)  # no row-by-row gather
    for rank in range(2):
        stream = StoreBatches(
            sorted_store, val, 32, 0, shuffle=False, rank=rank, world_size=2, **SMALL_BLOCKS
        )
        got = np.concatenate([b.numpy() for b in stream.batches(0)])
        np.testing.assert_array_equal(got, expected[rank::2])
        assert stream.order_mode == "sequential" and stream.order_choice


def test_a_consumer_that_stops_early_stops_the_block_reader(sorted_store):
    stream = StoreBatches(
        sorted_store, sorted_store.train_index, 32, 0, order="block", **SMALL_BLOCKS
    )
    batches = stream.batches(0)
    next(batches)
    batches.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("aekit-read")]


@pytest.mark.parametrize("order", ORDERS)
def test_the_reader_completes_beside_a_busy_process_on_every_core(sorted_store, order):
    if shutil.which("yes") is None:
        pytest.skip("needs the 'yes' command to load the cores")
    hogs = []
    try:
        for _ in range(os.cpu_count() or 1):
            hogs.append(subprocess.Popen(["yes"], stdout=subprocess.DEVNULL))
        index = sorted_store.train_index
        stream = StoreBatches(sorted_store, index, 64, 4, order=order, **SMALL_BLOCKS)
        rows = stream.rows(0)
        for k, batch in enumerate(stream.batches(0)):
            np.testing.assert_array_equal(np.sort(ids(batch)), np.sort(rows[k * 64 : k * 64 + 64]))
        assert k == len(stream) - 1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def test_order_choice_says_which_order_and_why(sorted_store):
    auto = StoreBatches(sorted_store, sorted_store.train_index, 64, 0)
    assert auto.order_mode == "global" and "available memory" in auto.order_choice
    block = StoreBatches(sorted_store, sorted_store.train_index, 64, 0, order="block")
    assert block.order_choice.startswith("block shuffle") and "windows of" in block.order_choice
    with pytest.raises(AekitError, match="'order' parameter of StoreBatches"):
        StoreBatches(sorted_store, sorted_store.train_index, 64, 0, order="random")


def resident_pages(paths) -> int:
    """Pages of ``paths`` in the page cache (mincore(2) over a private map of each)."""
    libc = ctypes.CDLL(None, use_errno=True)
    total = 0
    for path in paths:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as m:
            pages = -(-len(m) // mmap.PAGESIZE)
            vec = (ctypes.c_ubyte * pages)()
            address = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(m)))
            assert libc.mincore(address, ctypes.c_size_t(len(m)), vec) == 0
            total += sum(v & 1 for v in vec)
            del address
    return total


def drop_from_page_cache(paths) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)  # written pages are only dropped once clean
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
@pytest.mark.parametrize("shuffle", [True, False])
def test_reads_past_the_page_cache_give_the_same_batches_and_leave_no_pages(sorted_store, shuffle):
    index = sorted_store.train_index if shuffle else sorted_store.val_index
    paths = sorted_store.chunk_paths()

    def epoch(page_cache: bool) -> np.ndarray:
        drop_from_page_cache(paths)
        stream = StoreBatches(
            sorted_store,
            index,
            64,
            3,
            shuffle=shuffle,
            order="block",
            page_cache=page_cache,
            **SMALL_BLOCKS,
        )
        assert stream.uncached == (not page_cache)
        return np.concatenate([b.numpy() for b in stream.batches(1)])

    uncached = epoch(page_cache=False)
    assert resident_pages(paths) == 0
    np.testing.assert_array_equal(uncached, epoch(page_cache=True))
    assert resident_pages(paths) > 0


def test_a_store_larger_than_the_available_memory_is_read_past_the_page_cache(
    sorted_store, monkeypatch
):
    for available, expected in ((sorted_store.nbytes - 1, True), (sorted_store.nbytes, False)):
        monkeypatch.setattr("aekit.data.stream.available_memory", lambda a=available: a)
        stream = StoreBatches(sorted_store, sorted_store.train_index, 64, 0, order="block")
        assert stream.uncached == expected
        assert ("read past the page cache" in stream.order_choice) == expected


def test_a_file_system_that_refuses_direct_reads_is_read_through_the_cache(
    sorted_store, monkeypatch
):
    expected = [
        b.numpy()
        for b in StoreBatches(
            sorted_store, sorted_store.train_index, 64, 0, order="block", **SMALL_BLOCKS
        ).batches(0)
    ]
    real_open = os.open

    def refusing_open(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("aekit.data.uncached.os.open", refusing_open)
    stream = StoreBatches(
        sorted_store,
        sorted_store.train_index,
        64,
        0,
        order="block",
        page_cache=False,
        **SMALL_BLOCKS,
    )
    got = [b.numpy() for b in stream.batches(0)]
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    assert not sorted_store.uncached_reads


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
