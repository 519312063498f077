"""Sample order for each epoch, as a pure function of (seed, epoch)."""

from __future__ import annotations

import numpy as np


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """Permutation of ``range(n)`` for one epoch.

    Seeding with the pair (seed, epoch) makes every epoch's order reproducible on its own, so a
    run resumed at epoch k shuffles exactly as the uninterrupted run did, without replaying the
    random draws of epochs 0..k-1.
    """
    return np.random.default_rng([seed, epoch]).permutation(n)
