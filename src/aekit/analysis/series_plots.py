"""Plots of series, as Display objects (see :mod:`aekit.analysis.plots`): a series with its
scores under it, and the windows the model reconstructs worst."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aekit.analysis.plots import _new_figure


def _stretches(mask: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """The runs of True in ``mask`` as (first, last + 1) pairs, runs fewer than ``gap`` steps
    apart joined (a long series' scattered flags would otherwise be thousands of shapes, none
    visible at its width)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    runs: list[tuple[int, int]] = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if runs and a - runs[-1][1] < gap:
            runs[-1] = (runs[-1][0], int(b))
        else:
            runs.append((int(a), int(b)))
    return runs


def _shade(ax: Any, mask: np.ndarray, color: str, label: str) -> None:
    for i, (a, b) in enumerate(_stretches(mask, max(1, len(mask) // 1000))):
        ax.axvspan(a, b, color=color, alpha=0.25, lw=0, label=label if i == 0 else None)


@dataclass
class SeriesScoreDisplay:
    """A series' channels over time, the anomaly score of each step under them with the
    threshold and the flagged stretches shaded, the baseline's score below, and the known
    anomalous steps shaded where there are labels."""

    name: str
    values: np.ndarray  # (steps, k): the channels drawn, raw units
    channel_names: Sequence[str]
    score: np.ndarray  # (steps,)
    threshold: float
    baseline: np.ndarray | None = None  # (steps,): PCA's score, mapped to steps the same way
    labels: np.ndarray | None = None  # (steps,): 1 on known anomalous steps

    def plot(self) -> Any:
        rows = 3 if self.baseline is not None else 2
        fig = _new_figure(10, 1.8 * rows + 0.6)
        axes = fig.subplots(rows, 1, sharex=True)
        flagged = self.score > self.threshold
        for i, channel in enumerate(self.channel_names):
            axes[0].plot(self.values[:, i], lw=0.7, label=str(channel))
        axes[0].set_ylabel("value")
        axes[0].set_title(f"{self.name}: channels, anomaly score and flags")
        axes[1].plot(self.score, lw=0.7, color="black")
        axes[1].axhline(self.threshold, color="tab:red", linestyle="--", lw=0.8, label="threshold")
        axes[1].set_ylabel("score")
        for ax in axes:
            _shade(ax, flagged, "tab:orange", "flagged")
            if self.labels is not None:
                _shade(ax, self.labels.astype(bool), "tab:red", "labelled anomalous")
        if self.baseline is not None:
            axes[2].plot(self.baseline, lw=0.7, color="tab:grey")
            axes[2].set_ylabel("PCA score")
        axes[-1].set_xlabel("step")
        axes[0].legend(loc="upper right", fontsize="small")
        axes[1].legend(loc="upper right", fontsize="small")
        self.figure_ = fig
        return self


@dataclass
class WorstWindowsDisplay:
    """The windows with the highest scores, each channel drawn against its reconstruction."""

    windows: np.ndarray  # (k, W, C) raw units
    reconstructions: np.ndarray  # (k, W, C)
    titles: Sequence[str]
    channel: int  # the channel drawn: the one with the largest share of these windows' error
    channel_name: str

    def plot(self) -> Any:
        k = len(self.windows)
        fig = _new_figure(3 * k, 2.6)
        axes = np.atleast_1d(fig.subplots(1, k, sharey=True))
        for ax, x, r, title in zip(axes, self.windows, self.reconstructions, self.titles,
                                   strict=True):  # fmt: skip
            ax.plot(x[:, self.channel], lw=0.9, label="original")
            ax.plot(r[:, self.channel], lw=0.9, linestyle="--", label="reconstruction")
            ax.set_title(title, fontsize="small")
            ax.set_xlabel("step in window")
        axes[0].set_ylabel(f"channel {self.channel_name}")
        axes[0].legend(fontsize="small")
        self.figure_ = fig
        return self
