"""The train/validation split, fixed per record by a seed."""

from __future__ import annotations

import numpy as np

TRAIN, VALIDATION = 0, 1

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each element (Steele et al.'s SplitMix64 finaliser)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return x ^ (x >> np.uint64(31))


def assign_split(record_index: np.ndarray, seed: int, val_fraction: float) -> np.ndarray:
    """Split of each record (0 train, 1 validation) as a pure function of (seed, record index).

    Hashing the record's position in its source, rather than drawing from a stream, gives every
    record the same split however the source is read in batches and whichever records are
    skipped; the validation share is ``val_fraction`` in expectation.
    """
    keys = _splitmix64(
        np.asarray(record_index, dtype=np.uint64) ^ _splitmix64(np.array(seed, dtype=np.uint64))
    )
    uniform = (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return (uniform < val_fraction).astype(np.uint8)
