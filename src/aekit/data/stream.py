"""Shuffled batches streamed from a store with bounded memory."""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from aekit.data.blockread import IO_THREADS, BlockReader, Window, torch_dtype
from aekit.data.device import DeviceCache, DeviceWindows, cache_decision, sample_rows
from aekit.data.order import (
    BLOCK_BYTES,
    BlockLayout,
    block_order,
    choose_order,
    epoch_order,
    index_dtype,
    sorted_windows,
)
from aekit.data.prefetch import ordered_map, prefetch
from aekit.data.series import window_rows
from aekit.data.store import Store
from aekit.memory import available_memory
from aekit.params import ORDERS, Choice, Int, require

# Window buffers of a block-shuffled stream: two windows (the one served, the one being read)
BUFFER_BYTES = 256 << 20

# Threads gathering batches of rows for a device in global order: a gather from the page cache
# releases the GIL, and one thread's memory copies fell short of a GPU's appetite (0.52 of the
# on-device rate for dense 784-128-784 on an H200)
GATHER_THREADS = 4

INFERENCE_BYTES = 1 << 20
"""Float32 bytes of samples per batch when a whole split or store is read in order
(calibration, inference): about a typical training batch (256 rows of 784 floats), enough to
keep a model busy. Batches of 4096 such rows (12.8 MB, and as much again for each of the model's
temporaries) left holes in C's heap that later batches did not fit: the process grew with the
rows read, by hundreds of MB over a million rows."""

INFERENCE_BATCH = 4096
"""The most rows per batch read in order, however narrow the samples."""


def inference_batch(sample_shape: tuple[int, ...]) -> int:
    """Rows per batch read in order for samples of ``sample_shape``: about
    :data:`INFERENCE_BYTES` of float32 values, at most :data:`INFERENCE_BATCH` rows."""
    row_bytes = 4 * int(np.prod(sample_shape, dtype=np.int64))
    return max(1, min(INFERENCE_BATCH, INFERENCE_BYTES // max(1, row_bytes)))


def rank_share(order: np.ndarray, rank: int, world_size: int, *, pad: bool) -> np.ndarray:
    """The part of an epoch's order that ``rank`` reads: every ``world_size``-th record.

    With ``pad`` the order is first extended by wrapping around to a multiple of the world size,
    so every rank gets the same number of records (and so of batches: no rank waits at the end
    of an epoch for another). Without it (validation) no record is read twice.
    """
    if world_size == 1:
        return order
    if pad:
        order = np.resize(order, -(-len(order) // world_size) * world_size)
    return order[rank::world_size]


def warm_page_cache(paths: list[Path], stop: threading.Event) -> None:
    """Ask the kernel to read ``paths`` into the page cache, file after file, until ``stop``.

    A global shuffle of a store not yet in the page cache would fault its rows in one by one, at
    random offsets; read ahead sequentially, the same bytes arrive at the disk's streaming
    speed, and a fault finds its page cached or already on its way. Pages already cached cost
    nothing, so this is harmless on a warm store.
    """
    for path in paths:
        if stop.is_set():
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)


def read_past_cache(store: Store, page_cache: bool | None) -> bool:
    """Whether to read ``store`` past the page cache: when asked (``page_cache=False``), or by
    default when it is larger than the available memory, where caching it would only evict
    what other processes need, and where the store allows it."""
    if not store.uncached_reads or page_cache:
        return False
    if page_cache is None:
        available = available_memory()
        return available is not None and store.nbytes > available
    return True


def joined(parts: list[np.ndarray]) -> torch.Tensor:
    """One batch of the row arrays ``parts`` (not copied again when there is one)."""
    return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))


def in_order(
    store: Store, batch_size: int, page_cache: bool | None = None, block_bytes: int = BLOCK_BYTES
) -> Iterator[torch.Tensor]:
    """Every row of ``store`` in order, ``batch_size`` at a time (inference over a whole store).

    Runs of consecutive blocks are read whole, the next run while this one is served, with no
    array of one entry per row: the general ordered stream's row and window numbers cost 300 MB
    on 8M narrow rows. Memory: two runs of blocks (2 x 6 x 4 MiB) and a batch.
    """
    row_bytes = store.nbytes // max(1, store.n)
    layout = BlockLayout.for_rows(store.n, store.chunk_rows, row_bytes, block_bytes)
    run = IO_THREADS
    reader = BlockReader(
        store, layout, run * layout.block_rows, uncached=read_past_cache(store, page_cache)
    )

    def read(first: int) -> Window:
        return reader.read(np.arange(first, min(first + run, layout.n_blocks)))

    try:
        upcoming = read(0)
        parts: list[np.ndarray] = []
        filled = 0
        for first in range(0, layout.n_blocks, run):
            window = upcoming
            if first + run < layout.n_blocks:
                upcoming = read(first + run)  # into the buffer of the run before this one
            start, stop = layout.bounds(window.blocks[[0, -1]])
            rows = window.wait()[: stop[1] - start[0]]  # consecutive blocks: consecutive rows
            while len(rows):
                take = min(batch_size - filled, len(rows))
                # A copy: this buffer is read into again once the next run is being served
                parts.append(rows[:take].copy())
                rows, filled = rows[take:], filled + take
                if filled == batch_size:
                    yield joined(parts)
                    parts, filled = [], 0
        if parts:
            yield joined(parts)
    finally:
        reader.close()


class StoreBatches:
    """Batches of the rows ``index`` of a store, in an order fixed by (seed, epoch).

    Parameters
    ----------
    store : Store
    index : ndarray of int
        Rows to serve, e.g. ``store.train_index``.
    batch_size : int
        Samples per batch on this rank.
    seed : int
    shuffle : bool
        Shuffle each epoch (training) or serve ``index`` in its order (validation; a whole
        store in order is :func:`in_order`'s).
    order : {'auto', 'global', 'block'}
        How to shuffle. ``'global'``: a fresh permutation of all of ``index``, so even a store
        sorted by class yields batches whose class mix matches the whole store; each batch
        gathers scattered rows, fast only while the store is in the page cache. ``'block'``:
        blocks of about 4 MiB of contiguous rows are shuffled and read whole, ``shuffle_window``
        at a time, and rows are shuffled within each window (see
        :func:`aekit.data.order.block_order`): a store larger than memory is read at the disk's
        sequential speed. ``'auto'``: global when the store fits in half of the available
        memory, else block (:func:`aekit.data.order.choose_order`). :attr:`order_choice` says
        which and why.
    shuffle_window : int
        Blocks per window in block order; 0 chooses the most that fit ``buffer_bytes``.
    buffer_bytes : int
        Memory for the two window buffers of block order when ``shuffle_window`` is 0.
    rank, world_size : int
        This process's share of every epoch (see :func:`rank_share`). The global batches (the
        union of the ranks' k-th batches) do not depend on the world size. Every rank reads the
        whole of each window it serves from, so the ranks of one machine read each block at
        about the same time and share it through the page cache.
    prefetch_depth : int
        Batches prepared ahead in a background thread when rows are gathered (global order, or
        rows in no order); 0 gathers them in the consumer's thread.
    pin_memory : bool
        Put batches in page-locked memory, for asynchronous copies to a GPU.
    block_bytes : int
        Target size of a block (blocks never cross a chunk file).
    warm : bool
        In global order, ask the kernel to read the store's files into the page cache, in
        order, at the start of each epoch (see :func:`warm_page_cache`).
    page_cache : bool or None
        Whether whole blocks are read through the page cache. None: not when the store is
        larger than the available memory, which it could not stay in (see
        :mod:`aekit.data.uncached`); the file system may still refuse, and then they are.
    window_length : int
        0: a sample is a row. Otherwise the store holds series (see :mod:`aekit.data.series`),
        ``index`` holds the first row of each window, and a sample is the ``window_length``
        rows from there, cut at batch time (the store holds each step once): gathered in
        global order or in order, and in block order cut from whole blocks, each read with
        the ``window_length - 1`` rows after it.
    device : torch.device, optional
        Serve training batches on this device (see :mod:`aekit.data.device`): in block order
        each window of blocks is copied there whole and batches are cut there; in global order
        batches are gathered on the host, as without it. Bitwise the batches of the host path.
        Not used by streams in order (validation), which the loop copies batch by batch.
    device_cache : bool or None
        With ``device``, keep the training split there after the first epoch, later epochs
        cutting their batches from it without reading the host. None: where it fits in
        :data:`~aekit.data.device.DEVICE_CACHE_SHARE` of a GPU's free memory.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import ingest
    >>> X = np.random.default_rng(0).normal(size=(1000, 8))
    >>> store = ingest(X, "batches.zarr", val_fraction=0.2, progress=False)
    >>> stream = StoreBatches(store, store.train_index, 128, seed=0, order="block")
    >>> [tuple(batch.shape) for batch in stream.batches(epoch=0)][-2:]  # 793 training rows
    [(128, 8), (25, 8)]
    >>> stream.order_choice
    "block shuffle, as asked (order='block'); windows of 32 blocks of 4 MiB"
    >>> same = StoreBatches(store, store.train_index, 128, seed=0, order="block", device="cpu")
    >>> all(np.array_equal(a, b) for a, b in zip(stream.batches(1), same.batches(1)))
    True

    Notes
    -----
    Memory, whatever the store's size, with ``B = batch_size * row_bytes``: in global order at
    most ``(prefetch_depth + 2) * B``, the store itself being read through memory maps of its
    chunk files (page cache, not process memory). In block order at most
    ``2 * shuffle_window * block_rows * row_bytes + 3 * B`` (about ``buffer_bytes + 3 * B``);
    for sorted unshuffled rows the same with windows of 6 blocks (about 48 MiB). Series windows
    in block order add ``window_length - 1`` rows to each block's share of the buffers. Reads
    past the page cache add one block per reading thread (6 x 4 MiB). Both also hold the epoch's
    order, 4 bytes per row (8 beyond 2**31 rows) and 8 per row of window numbers in block order.
    """

    def __init__(
        self,
        store: Store,
        index: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        shuffle: bool = True,
        order: str = "auto",
        shuffle_window: int = 0,
        buffer_bytes: int = BUFFER_BYTES,
        rank: int = 0,
        world_size: int = 1,
        prefetch_depth: int = 4,
        pin_memory: bool = False,
        block_bytes: int = BLOCK_BYTES,
        warm: bool = True,
        page_cache: bool | None = None,
        window_length: int = 0,
        device: torch.device | str | None = None,
        device_cache: bool | None = None,
    ) -> None:
        require(Choice(ORDERS, auto=True), "order", order, "StoreBatches")
        require(Int(0), "shuffle_window", shuffle_window, "StoreBatches")
        require(Int(1), "buffer_bytes", buffer_bytes, "StoreBatches")
        self.store = store
        self.index = np.asarray(index, dtype=index_dtype(store.n))
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.prefetch_depth = prefetch_depth
        self.pin_memory = pin_memory
        self.warm = warm
        self.window_length = window_length
        row_bytes = store.nbytes // max(1, store.n)
        self.layout = BlockLayout.for_rows(store.n, store.chunk_rows, row_bytes, block_bytes)
        block_size = self.layout.block_rows * row_bytes
        self.window = shuffle_window or max(1, buffer_bytes // (2 * block_size))
        if not shuffle and not shuffle_window:
            # Rows in order need no mixing: a window only has to keep the reader's threads busy.
            # Validation and calibration streams then hold 2 x 6 blocks, not 256 MiB.
            self.window = min(self.window, IO_THREADS)
        self.order_mode, self.order_choice = self._choose(order)
        if self.order_mode == "block":
            self.order_choice += (
                f"; windows of {self.window} blocks of {block_size / 2**20:.3g} MiB"
            )
        self.uncached = read_past_cache(store, page_cache)
        if self.uncached and self.order_mode != "global":
            self.order_choice += "; read past the page cache"
        self.device = torch.device(device) if device is not None and shuffle else None
        self._cached: np.ndarray | None = None  # the rows a device cache is to hold
        self._cache: DeviceCache | None = None
        if self.device is not None:
            self._plan_cache(self.device, device_cache, row_bytes)

    def _plan_cache(self, device: torch.device, wanted: bool | None, row_bytes: int) -> None:
        """Decide whether the training split stays on the device, and say so."""
        if not len(self.index):
            return
        if self.window_length:  # a window's steps: every row from the first to the last step
            lo, hi = int(self.index.min()), int(self.index.max()) + self.window_length
            rows = np.arange(lo, hi, dtype=self.index.dtype)
        else:
            rows = np.unique(self.index)
        if wanted is None:
            wanted, why = cache_decision(len(rows) * row_bytes, device)
        elif wanted:
            why = f"the training split stays on {device} after the first epoch, as asked"
        else:
            why = f"streamed to {device} each epoch (device_cache=False)"
        self.order_choice += f"; {why}"
        self._cached = rows if wanted else None

    def _choose(self, order: str) -> tuple[str, str]:
        if not self.shuffle:
            return "sequential", "no shuffle: rows served in order, read in whole blocks"
        if order == "auto" and self.store.remote is not None:
            mode = "block"
            why = (
                "block shuffle: the store is on object storage, where whole blocks are read by "
                "range requests and single rows would cost a round trip each"
            )
        elif order == "auto":
            mode, why = choose_order(self.store.nbytes, available_memory())
        else:
            mode, why = order, f"{order} shuffle, as asked (order={order!r})"
        if self.window_length and mode == "global":
            why += (
                f"; windows of {self.window_length} steps, each gathered from the store's mapped "
                "chunks (the store holds each step once)"
            )
        elif self.window_length:
            why += (
                f"; windows of {self.window_length} steps cut from whole blocks, each block read "
                f"with the {self.window_length - 1} steps after it"
            )
        return mode, why

    @property
    def n_samples(self) -> int:
        n = len(self.index)
        if self.world_size == 1:
            return n
        if self.shuffle:
            return -(-n // self.world_size)
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        return -(-self.n_samples // self.batch_size)

    @property
    def final_share(self) -> tuple[int, float] | None:
        """How the last batch of an epoch counts, where padding made it unlike one process's.

        When the rows do not divide among the ranks, :func:`rank_share` pads the order with
        rows from its start, and the global last batch has fewer real rows than its ranks
        read. Its loss must then be that of its real rows only, and weigh them as one process
        would: ``(rows, scale)`` says that this rank's first ``rows`` samples are real and that
        the sum of their losses times ``scale`` (world size over the global batch's real rows)
        is this rank's loss, DDP's average over ranks then being the global batch's mean.
        None when every batch is already what one process would read.
        """
        n, world = len(self.index), self.world_size
        if not self.shuffle or world == 1 or n % world == 0 or n == 0:
            return None
        last = (len(self) - 1) * self.batch_size  # first share position of the last batch
        return max(0, self._real_rows() - last), world / (n - last * world)

    def _real_rows(self) -> int:
        """How many of this rank's rows in an epoch are not padding (they come first)."""
        if not self.shuffle or self.world_size == 1:
            return self.n_samples
        # Position i of this rank's share is position i * world + rank of the padded order
        return max(0, -(-(len(self.index) - self.rank) // self.world_size))

    def rows(self, epoch: int) -> np.ndarray:
        """The store rows this rank reads in ``epoch``, in reading order."""
        return self._plan(epoch)[0]

    def _plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """This rank's rows in reading order, and the window of each (None: gather by row)."""
        if self.order_mode == "global":
            order = self.index[epoch_order(len(self.index), self.seed, epoch)]
            return rank_share(order, self.rank, self.world_size, pad=True), None
        if self.order_mode == "block":
            order, ends = block_order(self.index, self.layout, self.window, self.seed, epoch)
            # Share positions, not rows, to know the window of each (padding wraps to window 0)
            share = rank_share(np.arange(len(order)), self.rank, self.world_size, pad=True)
            return order[share], np.searchsorted(ends, share, side="right")
        rows = rank_share(self.index, self.rank, self.world_size, pad=False)
        # Windows are gathered, as are rows in no particular order (a block each is waste)
        if self.window_length or np.any(rows[1:] < rows[:-1]):
            return rows, None
        return rows, sorted_windows(rows, self.layout, self.window)

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """The epoch's batches, from batch number ``start`` on (earlier ones are not read)."""
        rows, windows = self._plan(epoch)
        skip = start * self.batch_size
        rows, real = rows[skip:], self._real_rows() - skip
        windows = None if windows is None else windows[skip:]
        if self.device is not None:
            return self._on_device(rows, windows, real, whole=start == 0)
        if windows is None:
            return self._gathered(rows, real)
        return self._from_windows(rows, windows)

    def _batch_rows(
        self, rows: np.ndarray, real: int, windows: np.ndarray | None
    ) -> Iterator[np.ndarray]:
        """The rows of each batch, in the order the batch holds them. Gathered batches read
        their rows sorted, each chunk's part in one pass (the batch's order does not matter),
        except that padding (rows from ``real`` on) stays last (see final_share)."""
        for start in range(0, len(rows), self.batch_size):
            if windows is not None:
                yield rows[start : start + self.batch_size]
                continue
            cut = min(max(real, start), start + self.batch_size)
            yield np.concatenate([np.sort(rows[start:cut]), rows[cut : start + self.batch_size]])

    def _on_device(
        self, rows: np.ndarray, windows: np.ndarray | None, real: int, whole: bool
    ) -> Iterator[torch.Tensor]:
        """Batches on :attr:`device`: from its cache once complete; else streamed (and kept
        in the cache as they pass, when this epoch serves every row of the split)."""
        cache = self._device_cache()
        if cache is not None and not cache.complete and not (whole and self.world_size == 1):
            self._fill_in_order(cache)
        sample_rows_of = functools.partial(sample_rows, window_length=self.window_length)
        if cache is not None and cache.complete:
            return (cache.take(sample_rows_of(b)) for b in self._batch_rows(rows, real, windows))
        if windows is not None:
            served = self._from_windows(rows, windows)
        else:
            served = (b.to(self.device, non_blocking=True) for b in self._gathered(rows, real))
        if cache is None:
            return served
        return cache.filled_by(served, map(sample_rows_of, self._batch_rows(rows, real, windows)))

    def _device_cache(self) -> DeviceCache | None:
        if self._cached is not None and self._cache is None and self.device is not None:
            try:
                self._cache = DeviceCache(
                    self._cached, self.store.sample_shape, self.store.dtype, self.device
                )
            except torch.OutOfMemoryError:
                warnings.warn(
                    f"the training split did not fit on {self.device} after all; every epoch "
                    "streams from the host",
                    stacklevel=2,
                )
                self._cached = None
        return self._cache

    def _fill_in_order(self, cache: DeviceCache) -> None:
        """Read the cache's rows in order, whole blocks at a time, onto the device."""
        source = StoreBatches(
            self.store,
            cache.rows,
            inference_batch(self.store.sample_shape),
            0,
            shuffle=False,
            pin_memory=self.pin_memory,
            page_cache=not self.uncached,
        )
        at = 0
        for batch in source.batches(0):
            cache.x[at : at + len(batch)] = batch.to(self.device, non_blocking=True)
            at += len(batch)
        cache.complete = True

    def _gathered(self, rows: np.ndarray, real: int) -> Iterator[torch.Tensor]:
        stop = threading.Event()
        local = self.store.remote is None
        if self.warm and local and self.order_mode == "global" and hasattr(os, "posix_fadvise"):
            paths = self.store.chunk_paths()
            threading.Thread(target=warm_page_cache, args=(paths, stop), daemon=True).start()
        try:
            each = self._batch_rows(rows, real, None)
            if self.device is not None and local:
                # Feeding a device: several threads gather, each into page-locked memory (a
                # store on object storage keeps one: its row reads are many requests already)
                depth = max(self.prefetch_depth, GATHER_THREADS)
                yield from ordered_map(self._gather_one, each, GATHER_THREADS, depth)
                return
            batches = map(self._gather_one, each)
            yield from prefetch(batches, self.prefetch_depth) if self.prefetch_depth else batches
        finally:
            stop.set()

    def _gather_one(self, rows: np.ndarray) -> torch.Tensor:
        """The batch of ``rows``, read straight into page-locked memory where it is to be."""
        if not self.pin_memory:
            return joined([self._read(rows)])
        shape = (len(rows), self.window_length) if self.window_length else (len(rows),)
        out = torch.empty((*shape, *self.store.sample_shape), dtype=torch_dtype(self.store.dtype),
                          pin_memory=True)  # fmt: skip
        self._read(rows, out.numpy())
        return out

    def _read(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The samples at ``rows``: rows, or the windows that start there (into ``out``)."""
        if not self.window_length:
            return self.store.read(rows, out)
        steps = window_rows(rows, self.window_length).reshape(-1)
        flat = None if out is None else out.reshape(len(steps), *self.store.sample_shape)
        return self.store.read(steps, flat).reshape(len(rows), self.window_length, -1)

    def _cut(self, buffer: np.ndarray, window: Window, rows: np.ndarray) -> np.ndarray:
        """The samples at ``rows`` from a window's buffer: rows, or the windows starting there."""
        if not self.window_length:
            return np.take(buffer, window.positions(rows), axis=0)
        # A window's steps lie back to back in the buffer: the ranges read are sorted, and the
        # block a window starts in is read with its halo, or with the next block right after it
        steps = window_rows(window.positions(rows), self.window_length).reshape(-1)
        return np.take(buffer, steps, axis=0).reshape(len(rows), self.window_length, -1)

    def _batch(self, parts: list[np.ndarray]) -> torch.Tensor:
        batch = joined(parts)
        return batch.pin_memory() if self.pin_memory else batch

    def _from_windows(self, rows: np.ndarray, windows: np.ndarray) -> Iterator[torch.Tensor]:
        """Batches of ``rows``, gathered from whole blocks read one window ahead.

        Batches are gathered here, in the consumer's thread: from memory this is a copy of a
        few hundred KiB, cheaper than a hand-over to another thread, and it cannot starve on a
        busy machine the way a low-priority thread does. The disk work is in the reader's
        threads, which sleep while their reads are under way. With :attr:`device`, each window
        is copied there whole and its batches are cut there.
        """
        cuts = np.flatnonzero(np.diff(windows)) + 1
        spans = list(zip([0, *cuts.tolist()], [*cuts.tolist(), len(rows)], strict=True))
        # A series window starting in a block runs on for length - 1 steps: its halo
        halo = max(0, self.window_length - 1)
        capacity = self.window * (self.layout.block_rows + halo)
        pinned = self.device is not None and self.device.type == "cuda"
        reader = BlockReader(
            self.store, self.layout, capacity, uncached=self.uncached, pinned=pinned
        )
        shape, dtype = self.store.sample_shape, self.store.dtype
        device = None if self.device is None else DeviceWindows(self.device, capacity, shape, dtype)

        def read(k: int) -> Window:
            a, b = spans[k]
            return reader.read(np.unique(self.layout.block_of(rows[a:b])), halo)

        try:
            upcoming = read(0)
            parts: list = []
            filled, turn = 0, -1
            for k, (a, b) in enumerate(spans):
                window, turn = upcoming, turn + 1
                # Read the next window while this one is served, into the buffer of the one
                # before (on a GPU, once that one's copy to the device is done)
                if k + 1 < len(spans):
                    if device is not None and turn > 0:
                        device.copied((turn - 1) % 2)
                    upcoming = read(k + 1)
                cut = self._cutter(window, rows[a:b], device, turn % 2)
                at = 0
                while at < b - a:
                    take = min(self.batch_size - filled, b - a - at)
                    parts.append(cut(at, at + take))
                    at += take
                    filled += take
                    if filled == self.batch_size:
                        yield self._joined(parts)
                        parts, filled = [], 0
                if device is not None:
                    device.release(turn % 2)
            if parts:
                yield self._joined(parts)
        finally:
            reader.close()

    def _cutter(
        self, window: Window, starts: np.ndarray, device: DeviceWindows | None, turn: int
    ) -> Callable[[int, int], np.ndarray | torch.Tensor]:
        """A function of ``(i, j)`` giving the samples at ``starts[i:j]`` from ``window``
        (waited for): cut on the host, or copied whole to the device buffer of ``turn`` and
        cut there."""
        buffer = window.wait()
        if device is None:
            return lambda i, j: self._cut(buffer, window, starts[i:j])
        on_device = device.put(window, window.used, turn)
        at = torch.from_numpy(window.positions(starts)).to(self.device, non_blocking=True)
        if self.window_length:  # a window's steps lie back to back (see _cut)
            at = at[:, None] + torch.arange(self.window_length, device=self.device)
        return lambda i, j: on_device[at[i:j]]

    def _joined(self, parts: list) -> torch.Tensor:
        if isinstance(parts[0], torch.Tensor):
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        return self._batch(parts)
