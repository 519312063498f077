"""Batches from an in-memory array, the simplest batch source."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from aekit.data.order import BLOCK_BYTES, epoch_order


class ArrayBatches:
    """Shuffled mini-batches of the rows ``index`` of an in-memory array.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
        The whole array; only the rows in ``index`` are served.
    index : ndarray of int
        Rows that belong to this source (a train or validation split).
    batch_size : int
    seed : int
        With the epoch number, fixes the order of every epoch.
    shuffle : bool
        Validation sources keep their order.
    window_length : int
        0: a sample is a row. Otherwise ``X`` is series of steps (rows), ``index`` holds the
        first row of each window, and a sample is the ``window_length`` rows from there.
    """

    def __init__(
        self,
        X: np.ndarray,
        index: np.ndarray,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        window_length: int = 0,
    ) -> None:
        self._X = torch.from_numpy(np.ascontiguousarray(X))
        self._steps = torch.arange(window_length) if window_length else None
        self._index = torch.from_numpy(np.asarray(index, dtype=np.int64))
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle

    @property
    def n_samples(self) -> int:
        return len(self._index)

    def __len__(self) -> int:
        return -(-self.n_samples // self.batch_size)

    final_share = None  # one process: every batch counts as it is (see StoreBatches)

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        """The epoch's batches, from batch number ``start`` on.

        Rows are gathered for many batches at once, about ``BLOCK_BYTES`` at a time, and the
        batches are slices of that block: a gather per batch was most of what a small model's
        step spent outside its maths (``bench fit-time``), while a block bounds the extra memory.
        """
        index = self._index
        if self.shuffle:
            index = index[torch.from_numpy(epoch_order(len(index), self.seed, epoch))]
        width = 1 if self._steps is None else len(self._steps)
        batch_bytes = self.batch_size * self._X[:1].nbytes * width
        block = self.batch_size * max(1, BLOCK_BYTES // max(1, batch_bytes))
        for first in range(start * self.batch_size, len(index), block):
            picked = index[first : first + block]
            if self._steps is not None:  # windows: each start with the steps after it
                picked = (picked[:, None] + self._steps).reshape(-1)
            rows = self._X.index_select(0, picked)
            if self._steps is not None:
                rows = rows.view(-1, width, *self._X.shape[1:])
            yield from rows.split(self.batch_size)
