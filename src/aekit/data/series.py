"""Series: long recordings stored once, step by step, and read as windows cut at batch time.

A series store holds each time step once, as a row of its channels (``sample_shape == (C,)``),
one series (an entity: a machine, a sensor, a spacecraft channel) after another. The
:class:`SeriesLayout` says where each series starts and how many of its last steps are held out
for validation: the split is by time, so validation never sees the steps around the ones
trained on. A window is named by its first row; it covers ``length`` consecutive steps of one
series and of one part of it, never crossing a boundary. Values computed per window (an error
for each of its steps) come back to the time points by :class:`StepMeans`: each step gets the
mean over the windows that cover it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aekit.errors import DataError

MIN_WINDOW, MAX_WINDOW = 16, 256
"""Bounds of the window length chosen from the data: a window shorter than 16 steps holds too
little shape to learn, and one longer than 256 makes a small series hold few windows."""

FALLBACK_WINDOW = 64
"""The window length when the training part shows no period between the bounds."""

EPOCH_WINDOWS = 100_000
"""The automatic stride keeps an epoch near this many windows (stride 1 below it): a series of
50M steps is then read in about 200k windows of its epoch, not 50M."""

_ACF_STEPS = 20_000  # steps of each series read to find the period
_ACF_TOTAL = 200_000  # and of all series together
_PEAK = 0.2  # an autocorrelation peak lower than this is noise, not a period


@dataclass(frozen=True)
class SeriesLayout:
    """Where each series of a store (or of arrays held together) lies, and its time split.

    Parameters
    ----------
    names : list of str
        One name per series (a file's name; ``series 1``... for arrays).
    lengths : ndarray of int
        Steps in each series, in the order they are stored.
    held_out : ndarray of int
        Steps at the end of each series held out for validation.
    """

    names: list[str]
    lengths: np.ndarray
    held_out: np.ndarray

    @classmethod
    def split(cls, names: Sequence[str], lengths: Sequence[int], fraction: float) -> SeriesLayout:
        """The last ``fraction`` of each series held out (none where that leaves no step)."""
        lengths_ = np.asarray(lengths, dtype=np.int64)
        held = np.minimum(np.round(lengths_ * fraction).astype(np.int64), lengths_ - 1)
        return cls(list(names), lengths_, np.maximum(held, 0))

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> SeriesLayout:
        return cls(
            [str(n) for n in meta["names"]],
            np.asarray(meta["lengths"], dtype=np.int64),
            np.asarray(meta["held_out"], dtype=np.int64),
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "lengths": self.lengths.tolist(),
            "held_out": self.held_out.tolist(),
        }

    @property
    def starts(self) -> np.ndarray:
        """The first row of each series."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    def parts(self, part: str) -> list[tuple[int, int]]:
        """``(first row, steps)`` of each series' ``part``: 'train', 'validation' or 'all'."""
        out = []
        for start, length, held in zip(self.starts, self.lengths, self.held_out, strict=True):
            first, steps = {
                "train": (start, length - held),
                "validation": (start + length - held, held),
                "all": (start, length),
            }[part]
            out.append((int(first), int(steps)))
        return out

    def split_of(self, rows: np.ndarray) -> np.ndarray:
        """0 (train) or 1 (validation) for each of ``rows``."""
        series = np.searchsorted(np.cumsum(self.lengths), rows, side="right")
        ends = self.starts[series] + self.lengths[series]
        return (rows >= ends - self.held_out[series]).astype(np.uint8)

    def windows(self, part: str, length: int, stride: int) -> np.ndarray:
        """The first row of every window of ``length`` steps, ``stride`` apart, in each series'
        ``part``; each part's last window ends at its last step, so every step is covered."""
        starts = [
            first + window_starts(steps, length, stride)
            for first, steps in self.parts(part)
            if steps >= length
        ]
        return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)

    def check_length(self, length: int, what: str = "window_length") -> None:
        """Refuse a window longer than every series' training part."""
        longest = max((steps for _, steps in self.parts("train")), default=0)
        if length > longest:
            raise DataError(
                f"{what} is {length} steps, but the longest training part of a series has "
                f"{longest}; choose a {what} of at most {longest}, or give longer series."
            )


def window_starts(steps: int, length: int, stride: int) -> np.ndarray:
    """Starts of windows of ``length`` in ``steps`` steps, ``stride`` apart, the last one ending
    at the last step (so that no step goes uncovered)."""
    if steps < length:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, steps - length + 1, stride, dtype=np.int64)
    if starts[-1] != steps - length:
        starts = np.append(starts, steps - length)
    return starts


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Mean autocorrelation over the channels of ``x`` (T, C) that vary, at lags 0..max_lag."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    std = x.std(axis=0)
    x = x[:, std > 1e-12] / std[std > 1e-12]
    if x.shape[1] == 0 or len(x) < 2 * max_lag:
        return np.zeros(max_lag + 1)
    size = 1 << (2 * len(x) - 1).bit_length()
    spectrum = np.fft.rfft(x, size, axis=0)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=0)[: max_lag + 1]
    acf /= np.arange(len(x), len(x) - max_lag - 1, -1)[:, None]  # unbiased at every lag
    return acf.mean(axis=1) / max(acf[0].mean(), 1e-12)


def auto_window_length(parts: Sequence[np.ndarray]) -> tuple[int, str]:
    """A window length from the training parts ``parts`` (each (T, C)), and why.

    The dominant period: the first of the highest peaks (within 90 % of the highest) of the
    channels' mean autocorrelation after it first falls below zero, between
    :data:`MIN_WINDOW` and :data:`MAX_WINDOW` lags. A window of one period holds one whole
    cycle of the signal's shape. Without such a peak (no period, or one longer than the
    bound), :data:`FALLBACK_WINDOW`.
    """
    acfs, read = [], 0
    for x in parts:
        take = min(len(x), _ACF_STEPS, _ACF_TOTAL - read)
        if take >= 2 * MAX_WINDOW:
            acfs.append((take, autocorrelation(x[:take], MAX_WINDOW)))
            read += take
    bounds = f"between {MIN_WINDOW} and {MAX_WINDOW} steps"
    if not acfs:
        return FALLBACK_WINDOW, (
            f"the default {FALLBACK_WINDOW}: the training parts are too short "
            f"(< {2 * MAX_WINDOW} steps) to read a period from"
        )
    weights = np.array([w for w, _ in acfs], dtype=np.float64)
    acf = np.average(np.stack([a for _, a in acfs]), axis=0, weights=weights)
    below = np.flatnonzero(acf < 0)
    if len(below):
        lags = np.arange(max(MIN_WINDOW, int(below[0])), MAX_WINDOW + 1)
        peaks = lags[
            (acf[lags] >= acf[lags - 1]) & (acf[lags] >= acf[np.minimum(lags + 1, MAX_WINDOW)])
        ]
        if len(peaks) and acf[peaks].max() >= _PEAK:
            # The first of the highest peaks: a period's multiples peak about as high
            lag = int(peaks[np.flatnonzero(acf[peaks] >= 0.9 * acf[peaks].max())[0]])
            return lag, (
                f"{lag} steps: the dominant period of the training data (autocorrelation "
                f"{acf[lag]:.2f} at lag {lag}, {bounds})"
            )
    return FALLBACK_WINDOW, (
        f"the default {FALLBACK_WINDOW} steps: the training data show no period {bounds} "
        f"(no autocorrelation peak of at least {_PEAK})"
    )


def auto_stride(layout: SeriesLayout, length: int) -> tuple[int, str]:
    """The stride that keeps an epoch near :data:`EPOCH_WINDOWS` windows (1 below it, at most
    the window length, so that every step is trained on), and why."""
    positions = sum(max(0, steps - length + 1) for _, steps in layout.parts("train"))
    stride = min(length, max(1, math.ceil(positions / EPOCH_WINDOWS)))
    if stride == 1:
        return 1, f"1: every window of the training part ({positions:,}) each epoch"
    return stride, (
        f"{stride}: about {positions // stride:,} of the {positions:,} windows of the training "
        f"part each epoch (at most {EPOCH_WINDOWS:,})"
    )


def window_rows(starts: np.ndarray, length: int) -> np.ndarray:
    """The rows of each window: (n, length), window ``i`` being ``starts[i]`` and the
    ``length - 1`` rows after it."""
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)


def cut_windows(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The windows of ``length`` rows of ``x`` starting at ``starts``: (n, length, ...)."""
    return x[window_rows(starts, length)]


class StepMeans:
    """Per-window values, ``(n, length[, K])``, brought back to the ``steps`` time points they
    cover: each step gets the mean over its windows. Fed batch by batch; memory ``steps * K``
    (K is that of the first values added)."""

    def __init__(self, steps: int) -> None:
        self.sums: np.ndarray | None = None
        self.counts = np.zeros(steps)

    def add(self, starts: np.ndarray, values: np.ndarray) -> None:
        """``values[i]`` covers the steps ``starts[i]:starts[i] + length``."""
        values = np.asarray(values, dtype=np.float64)
        n, length = values.shape[:2]
        values = values.reshape(n * length, -1)
        if self.sums is None:
            self.sums = np.zeros((len(self.counts), values.shape[1]))
        at = window_rows(starts, length).ravel()
        steps = len(self.counts)
        self.counts += np.bincount(at, minlength=steps)
        for k in range(values.shape[1]):
            self.sums[:, k] += np.bincount(at, weights=values[:, k], minlength=steps)

    def result(self, steps: int | None = None) -> np.ndarray:
        """(steps, K): the mean of each of the first ``steps`` steps' windows (all by default;
        NaN where no window covers a step)."""
        assert self.sums is not None, "no values were added"
        steps = len(self.counts) if steps is None else steps
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums[:steps] / self.counts[:steps, None]

    def rest(self, done: int, steps: int) -> StepMeans:
        """An accumulator of ``steps`` steps that begins with what this one holds from step
        ``done`` on: the next stretch of a series read piece by piece."""
        following = StepMeans(steps)
        kept = len(self.counts) - done
        following.counts[:kept] = self.counts[done:]
        if self.sums is not None:
            following.sums = np.zeros((steps, self.sums.shape[1]))
            following.sums[:kept] = self.sums[done:]
        return following
