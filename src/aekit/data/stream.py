"""Shuffled batches streamed from a store with bounded memory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from aekit.data.order import epoch_order, index_dtype
from aekit.data.prefetch import prefetch
from aekit.data.store import Store

INFERENCE_BATCH = 4096
"""Rows per batch when a whole split or store is read in order (validation, inference,
calibration): large enough to keep the model busy, small enough to bound memory."""


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
        Global shuffle: each epoch is a fresh permutation of all of ``index``, so even a store
        sorted by class yields batches whose class mix matches the whole store.
    rank, world_size : int
        This process's share of every epoch (see :func:`rank_share`).
    prefetch_depth : int
        Batches prepared ahead in a background thread.
    pin_memory : bool
        Put batches in page-locked memory, for asynchronous copies to a GPU.

    Memory: at most ``prefetch_depth + 2`` batches are alive at once, whatever the store's size;
    the store itself is read through memory maps of its chunk files (page cache, not process
    memory).
    """

    def __init__(
        self,
        store: Store,
        index: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        prefetch_depth: int = 4,
        pin_memory: bool = False,
    ) -> None:
        self.store = store
        self.index = np.asarray(index, dtype=index_dtype(store.n))
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.prefetch_depth = prefetch_depth
        self.pin_memory = pin_memory

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

    def rows(self, epoch: int) -> np.ndarray:
        """The store rows this rank reads in ``epoch``, in reading order."""
        order = self.index
        if self.shuffle:
            order = order[epoch_order(len(order), self.seed, epoch)]
        return rank_share(order, self.rank, self.world_size, pad=self.shuffle)

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """The epoch's batches, from batch number ``start`` on (earlier ones are not read)."""
        rows = self.rows(epoch)[start * self.batch_size :]
        return prefetch(self._read(rows), self.prefetch_depth)

    def _read(self, rows: np.ndarray) -> Iterator[torch.Tensor]:
        for start in range(0, len(rows), self.batch_size):
            # Sorted rows read each chunk's part in one pass; the batch's order does not matter
            batch = torch.from_numpy(
                self.store.read(np.sort(rows[start : start + self.batch_size]))
            )
            yield batch.pin_memory() if self.pin_memory else batch
