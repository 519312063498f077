"""Sample order for each epoch, as a pure function of (seed, epoch).

Two orders are served. The global order is a permutation of every row: ideal mixing, but each
batch reads rows scattered over the whole store, which is fast only while the store is in the
page cache. The block order reads the store in blocks of a few MiB of contiguous rows: blocks
are shuffled, a window of consecutive blocks is read whole, and rows are shuffled within the
window. A cold store is then read at the disk's sequential speed, at the cost of batches that
mix rows from ``window`` places of the store instead of from everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Blocks this large are read at close to a disk's sequential bandwidth (a seek or a network
# round trip costs about as much as reading tens of KiB) while a window of tens of them stays
# small next to a training process's memory.
BLOCK_BYTES = 4 << 20


def index_dtype(n: int) -> type[np.signedinteger]:
    """The smallest integer type that indexes ``n`` rows: 4 bytes per row below 2**31 rows."""
    return np.int32 if n < 2**31 else np.int64


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """Permutation of ``range(n)`` for one epoch.

    Seeding with the pair (seed, epoch) makes every epoch's order reproducible on its own, so a
    run resumed at epoch k shuffles exactly as the uninterrupted run did, without replaying the
    random draws of epochs 0..k-1. The order costs 4 bytes per row (8 beyond 2**31 rows), the
    only memory of the stream that grows with the data.
    """
    order = np.arange(n, dtype=index_dtype(n))
    np.random.default_rng([seed, epoch]).shuffle(order)
    return order


@dataclass(frozen=True)
class BlockLayout:
    """A store's rows cut into blocks of ``block_rows`` contiguous rows.

    Blocks never cross a chunk boundary, so each block is one contiguous byte range of one
    chunk file; the last block of a chunk (and of the store) may be shorter.

    Parameters
    ----------
    n : int
        Rows in the store.
    chunk_rows : int
        Rows per chunk file.
    block_rows : int
        Rows per block, at most ``chunk_rows``.
    """

    n: int
    chunk_rows: int
    block_rows: int

    @classmethod
    def for_rows(
        cls, n: int, chunk_rows: int, row_bytes: int, block_bytes: int = BLOCK_BYTES
    ) -> BlockLayout:
        """Blocks of about ``block_bytes``: each chunk is cut into equal parts of that size."""
        parts = max(1, round(chunk_rows * row_bytes / block_bytes))
        return cls(n, chunk_rows, -(-chunk_rows // parts))

    @property
    def per_chunk(self) -> int:
        return -(-self.chunk_rows // self.block_rows)

    @property
    def n_blocks(self) -> int:
        full, rest = divmod(self.n, self.chunk_rows)
        return full * self.per_chunk + -(-rest // self.block_rows)

    def block_of(self, rows: np.ndarray) -> np.ndarray:
        """The block holding each of ``rows``."""
        chunk, within = np.divmod(np.asarray(rows, dtype=np.int64), self.chunk_rows)
        return chunk * self.per_chunk + within // self.block_rows

    def bounds(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First row and end row (exclusive) of each of ``blocks``."""
        chunk, part = np.divmod(np.asarray(blocks, dtype=np.int64), self.per_chunk)
        start = chunk * self.chunk_rows + part * self.block_rows
        stop = np.minimum(
            start + self.block_rows, np.minimum((chunk + 1) * self.chunk_rows, self.n)
        )
        return start, stop


def block_order(
    index: np.ndarray, layout: BlockLayout, window: int, seed: int, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``index`` in block-shuffled order for one epoch, and where each window ends.

    The blocks that hold rows of ``index`` are permuted, consecutive groups of ``window`` of
    them form a window, and the rows of each window are permuted together. Like
    :func:`epoch_order` this is a pure function of (seed, epoch), so a resumed run reads
    exactly the order the uninterrupted run read.

    Parameters
    ----------
    index : ndarray of int
        Rows served, in any order (e.g. the training split, interleaved with validation rows).
    layout : BlockLayout
    window : int
        Blocks per window, >= 1.
    seed, epoch : int

    Returns
    -------
    order : ndarray of int, shape (len(index),)
        The rows of ``index``, each once, in reading order.
    ends : ndarray of int64, shape (n_windows,)
        Position in ``order`` where each window ends (exclusive): window ``w`` is
        ``order[ends[w - 1]:ends[w]]`` and reads only its own blocks.
    """
    rows = np.sort(np.asarray(index))
    blocks = layout.block_of(rows)
    # Rows of one block are consecutive in ``rows``: first position and count of each block
    first = np.flatnonzero(np.diff(blocks, prepend=-1))
    counts = np.diff(first, append=len(rows))
    rng = np.random.default_rng([seed, epoch])
    picked = rng.permutation(len(first))
    # Concatenate each picked block's rows: position i of block k is first[k] + (i - its start)
    sizes = counts[picked]
    starts = np.cumsum(sizes) - sizes
    order = rows[np.repeat(first[picked] - starts, sizes) + np.arange(len(rows))]
    ends = np.cumsum(sizes)[window - 1 :: window]
    if len(ends) == 0 or ends[-1] != len(rows):
        ends = np.append(ends, len(rows))
    for a, b in zip(np.concatenate([[0], ends[:-1]]), ends, strict=True):
        rng.shuffle(order[a:b])
    return order, ends.astype(np.int64)


def sorted_windows(rows: np.ndarray, layout: BlockLayout, window: int) -> np.ndarray:
    """Window number of each of ``rows`` (sorted): every ``window`` consecutive blocks in use.

    Reading sorted rows (a validation split) window by window reads each block once, whole.
    """
    blocks = layout.block_of(rows)
    # In place and in 4 bytes a row where it can be: inference over 8M rows held 5 arrays of
    # 8 bytes a row here at once
    starts = np.empty(len(blocks), dtype=bool)
    starts[:1] = True
    np.not_equal(blocks[1:], blocks[:-1], out=starts[1:])
    del blocks
    run = np.cumsum(starts, dtype=index_dtype(len(rows)))
    run -= 1
    run //= window
    return run


def choose_order(store_bytes: int, available_bytes: int | None) -> tuple[str, str]:
    """``("global", reason)`` when the store fits comfortably in memory, else ``("block", ...)``.

    A store at most half of the available memory stays in the page cache beside the training
    process once read, so scattered reads of a global shuffle are served from memory and the
    shuffle costs nothing. A larger store would be read from disk row by row, hundreds of times
    slower than in blocks.
    """
    gib = 2**30
    if available_bytes is None:
        return "block", (
            f"block shuffle: the store is {store_bytes / gib:.3g} GiB and the available memory "
            "is unknown, so it is read in blocks"
        )
    fits = store_bytes <= available_bytes // 2
    verdict = "at most" if fits else "more than"
    return ("global" if fits else "block"), (
        f"{'global' if fits else 'block'} shuffle: the store ({store_bytes / gib:.3g} GiB) is "
        f"{verdict} half of the available memory ({available_bytes / gib:.3g} GiB)"
    )
