"""How well an epoch's order mixes classes: each batch's class mix against the whole store's."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def class_mix_distance(batch_labels: Iterable[np.ndarray], n_classes: int) -> float:
    """Mean total-variation distance between each batch's class frequencies and the epoch's.

    Parameters
    ----------
    batch_labels : iterable of ndarray of int
        The labels of each batch's samples, in serving order. Batches smaller than the largest
        (an epoch's remainder) are left out: a smaller batch strays further by chance alone.
    n_classes : int

    Returns
    -------
    float
        0 when every batch has exactly the classes' overall shares; 1 when every batch holds
        only classes absent from the rest. Compare with :func:`random_batch_distance`.
    """
    batches = [np.asarray(b) for b in batch_labels]
    size = max(len(b) for b in batches)
    counts = np.array([np.bincount(b, minlength=n_classes) for b in batches if len(b) == size])
    overall = np.sum([np.bincount(b, minlength=n_classes) for b in batches], axis=0)
    freq = overall / overall.sum()
    return float(np.mean(0.5 * np.abs(counts / size - freq).sum(axis=1)))


def random_batch_distance(
    freq: np.ndarray, batch_size: int, window_blocks: int | None = None
) -> float:
    """Expected :func:`class_mix_distance` of batches drawn at random (normal approximation).

    Each class's share of a random batch of ``b`` samples spreads with variance
    ``p (1 - p) / b`` around its share ``p``, and the mean absolute deviation of a normal is
    ``sqrt(2 / pi)`` times its standard deviation. With ``window_blocks``, batches come from
    windows of that many blocks drawn at random, each holding a single class (a store sorted by
    class, block order): the window's own mix adds ``p (1 - p) / window_blocks``.
    """
    p = np.asarray(freq, dtype=np.float64)
    variance = p * (1 - p) / batch_size
    if window_blocks:
        variance = variance + p * (1 - p) / window_blocks
    return float(0.5 * np.sum(np.sqrt(2 / np.pi * variance)))
