"""Whole blocks of a store read into memory, many reads in flight on a small thread pool."""

from __future__ import annotations

import mmap
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from aekit.data.order import BlockLayout
from aekit.data.store import Store

# Reads in flight at once: enough to keep a disk's (or a network file system's) queue full,
# while each thread costs little CPU, since it sleeps in the kernel until its block arrives.
IO_THREADS = 6


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch type of a store's samples (uint8, float16 or float32)."""
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


class Window:
    """Blocks being read into a buffer; :meth:`wait` returns once all of them are there."""

    def __init__(
        self,
        blocks: np.ndarray,
        starts: np.ndarray,
        offsets: np.ndarray,
        buffer: np.ndarray,
        layout: BlockLayout,
        reads: list[Future[None]],
        pinned: torch.Tensor | None = None,
        used: int = 0,
    ) -> None:
        self.blocks = blocks
        self.starts = starts
        self.offsets = offsets
        self.buffer = buffer
        self.layout = layout
        self.reads = reads
        self.pinned = pinned  # the buffer as a page-locked tensor, where it is one
        self.used = used  # rows of the buffer read into, from its start

    def wait(self) -> np.ndarray:
        """The buffer, once every block is read (a failed read raises its error here)."""
        for read in self.reads:
            read.result()
        return self.buffer

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Where each of ``rows`` (all in this window's blocks or their halos) lies in the
        buffer. ``starts`` are the first rows of the ranges read, sorted and not overlapping."""
        slot = np.searchsorted(self.starts, rows, side="right") - 1
        return self.offsets[slot] + (rows - self.starts[slot])


def halo_ranges(
    layout: BlockLayout, blocks: np.ndarray, halo: int
) -> tuple[np.ndarray, np.ndarray]:
    """First row and size of each range that reads ``blocks`` (sorted, distinct) and the
    ``halo`` rows after each: the steps a series window that starts in the block runs on into.

    A halo stops where the next block read begins (those rows are read with it) and is cut at
    chunk boundaries, since one read covers one chunk."""
    starts, stops = layout.bounds(blocks)
    if not halo:
        return starts, stops - starts
    ends = np.minimum(stops + halo, layout.n)
    ends[:-1] = np.minimum(ends[:-1], starts[1:])
    first, size = [starts], [stops - starts]
    at = stops.copy()
    while np.any(at < ends):
        # Each round reads the rest of each halo up to its chunk's end
        more = np.flatnonzero(at < ends)
        chunk_end = (at[more] // layout.chunk_rows + 1) * layout.chunk_rows
        stop = np.minimum(ends[more], chunk_end)
        first.append(at[more])
        size.append(stop - at[more])
        at[more] = stop
    order = np.argsort(np.concatenate(first), kind="stable")
    return np.concatenate(first)[order], np.concatenate(size)[order]


def mapped_array(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array in an anonymous memory map of its own, given back to the system
    when the array is freed. A buffer of tens of MB taken from C's heap stays in the process
    once freed when smaller allocations sit above it: each command that read a split after
    training (the threshold's calibration) kept its window buffers, 48 MB, to its end."""
    count = int(np.prod(shape, dtype=np.int64))
    region = mmap.mmap(-1, max(1, count * np.dtype(dtype).itemsize), flags=mmap.MAP_PRIVATE)
    return np.frombuffer(region, dtype, count=count).reshape(shape)


class BlockReader:
    """Reads sets of blocks of ``store`` into two buffers used in turn.

    Two buffers are enough for a stream that serves batches from one window while the next one
    is read; they are allocated once, so each window costs no new memory.

    Parameters
    ----------
    store : Store
    layout : BlockLayout
    capacity : int
        Rows of the largest set of blocks read at once.
    threads : int
        Reads in flight at once.
    uncached : bool
        Read past the page cache (see :meth:`Store.read_into`).
    pinned : bool
        Buffers in page-locked memory, for asynchronous copies to a GPU.
    """

    def __init__(
        self,
        store: Store,
        layout: BlockLayout,
        capacity: int,
        threads: int = IO_THREADS,
        uncached: bool = False,
        pinned: bool = False,
    ) -> None:
        self.store = store
        self.layout = layout
        self.capacity = capacity
        self.uncached = uncached
        # Created by the consumer's thread, so the I/O threads inherit its (normal) priority:
        # a read thread at low priority starves on a busy machine, and these use little CPU.
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="aekit-read")
        self._buffers: list[np.ndarray] = []
        self._pinned: list[torch.Tensor] = []
        self.pinned = pinned
        self._turn = 0

    def read(self, blocks: np.ndarray, halo: int = 0) -> Window:
        """Start reading ``blocks`` (sorted, distinct), each with the ``halo`` rows after it
        (see :func:`halo_ranges`); return at once.

        The buffer of the window returned two calls earlier is reused: be done with it first.
        """
        starts, sizes = halo_ranges(self.layout, blocks, halo)
        if sizes.sum() > self.capacity:
            raise ValueError(f"{sizes.sum()} rows exceed the reader's capacity {self.capacity}")
        if len(self._buffers) < 2:
            self._add_buffer()
        turn = self._turn % len(self._buffers)
        buffer = self._buffers[turn]
        self._turn += 1
        offsets = np.cumsum(sizes) - sizes
        reads = [
            self._pool.submit(
                self.store.read_into, int(s), buffer[o : o + z], uncached=self.uncached
            )
            for s, o, z in zip(starts, offsets, sizes, strict=True)
            if z
        ]
        pinned = self._pinned[turn] if self._pinned else None
        used = int(sizes.sum())
        return Window(blocks, starts, offsets, buffer, self.layout, reads, pinned, used)

    def _add_buffer(self) -> None:
        shape = (self.capacity, *self.store.sample_shape)
        if not self.pinned:
            self._buffers.append(mapped_array(shape, self.store.dtype))
            return
        tensor = torch.empty(shape, dtype=torch_dtype(self.store.dtype), pin_memory=True)
        self._pinned.append(tensor)
        self._buffers.append(tensor.numpy())

    def close(self) -> None:
        """Stop reads not yet started and wait for those under way (they write to the buffers)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
