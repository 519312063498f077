"""Sample order for each epoch, as a pure function of (seed, epoch)."""

from __future__ import annotations

import numpy as np


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
