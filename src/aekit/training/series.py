"""Series on the training side: the windows a fit reads, and values per time point.

A fit on series trains on windows (see :mod:`aekit.data.series`); what a user reads is per time
point. :func:`per_step` runs a function over the windows of a stretch of steps, in order and in
bounded memory, and gives back each step's mean over the windows that cover it, stretch by
stretch as the steps are complete. The anomaly score of a step is the score of its windows
spread over their steps: a window's step gets its share of the window's reconstruction error
(summed over channels, times the window length, so that a window's steps average to its
score) plus an equal share of anything else in the score (a variational model's KL term).

Each channel's part of a step's error is weighted by :func:`channel_weights`: one over the
channel's mean error on the training steps. Telemetry mixes channels the model reconstructs
closely (a smooth sensor) with channels it cannot (sparse on/off flags, standardised into rare
spikes of tens of units): unweighted, the flags' routine spikes drown a deviation of a few units
in a smooth channel. Weighted, each channel counts by how unusual its error is for that channel,
a diagonal whitening of the residual. The mean is floored at a tenth of the channels' average,
so that a channel reconstructed almost exactly does not weigh without bound (the rule by which
a table's features are weighed, :func:`aekit.anomaly.inverse_mean`). On the made-up
anomalies of ``bench smap --dev`` (fitted on the first three quarters of each train series,
test series untouched; 14 entities) it raised the defaults' mean AUC-PR from 0.212 to 0.226.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from aekit.anomaly import inverse_mean, score_terms
from aekit.data.series import (
    SeriesLayout,
    StepMeans,
    auto_stride,
    auto_window_length,
    cut_windows,
    window_starts,
)
from aekit.errors import SettingError
from aekit.models import AutoencoderModule
from aekit.objectives import Objective

Read = Callable[[int, int], np.ndarray]
"""``read(first, count)``: rows ``first:first + count`` of the stored steps, (count, C)."""

PIECE_WINDOWS = 4096
"""Windows computed at once by :func:`per_step` (in batches): its memory is this many windows'
steps, whatever the series' length."""


@dataclass
class Windows:
    """The windows a fit on series reads: their length and stride, why, and where they lie."""

    length: int
    stride: int
    layout: SeriesLayout
    read: Read
    notes: list[str] = field(default_factory=list)

    def starts(self, part: str) -> np.ndarray:
        return self.layout.windows(part, self.length, self.stride)


def resolve_windows(
    length: int | str, stride: int | str, layout: SeriesLayout, read: Read
) -> Windows:
    """The windows of ``length`` and ``stride`` ('auto': chosen from the training parts)."""
    notes = []
    if length == "auto":
        parts = [read(first, min(steps, 20_000)) for first, steps in layout.parts("train")[:64]]
        length, why = auto_window_length(parts)
        notes.append(f"window length {why}")
    length = int(length)
    layout.check_length(length)
    if stride == "auto":
        stride, why = auto_stride(layout, length)
        notes.append(f"window stride {why}")
    if int(stride) > length:
        raise SettingError(
            f"window_stride ({stride}) is longer than window_length ({length}): steps between "
            "windows would never be trained on; choose a stride of at most the length."
        )
    return Windows(length, int(stride), layout, read, notes)


def check_series(X: Any, channels: int | None = None) -> tuple[np.ndarray, list[int]]:
    """``X`` (one array (T,) or (T, C), or a list of them) as its steps back to back, float32
    (steps, C), and each series' length; refused, naming the series, unless every one is 1-d
    or 2-d with ``channels`` channels (those of the first when None) and finite."""
    arrays = list(X) if isinstance(X, (list, tuple)) else [X]
    if not arrays:
        raise ValueError("no series given; give a (T,) or (T, C) array, or a list of them.")
    checked = []
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float32)
        a = a[:, None] if a.ndim == 1 else a
        channels = a.shape[-1] if channels is None and a.ndim == 2 else channels
        if a.ndim != 2 or a.shape[1] != channels or not len(a):
            wanted = (
                "each series as a (T,) or (T, C) array"
                if channels is None
                else f"series of {channels} channel(s) as (T, {channels}) arrays"
                + (" or (T,)" if channels == 1 else "")
            )
            raise ValueError(
                f"series {i + 1} has shape {np.shape(arrays[i])}; give {wanted}, T >= 1."
            )
        if not np.isfinite(a).all():
            raise ValueError(f"series {i + 1} holds NaN or infinite values; fill the gaps first.")
        checked.append(a)
    return np.concatenate(checked), [len(a) for a in checked]


def per_step(
    read: Read,
    first: int,
    steps: int,
    length: int,
    stride: int,
    fn: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 256,
) -> Iterator[np.ndarray]:
    """``fn`` over the windows of rows ``first:first + steps`` (each (B, length, C) -> (B,
    length, K)), brought back to the steps: blocks of (n, K), in order, n adding up to
    ``steps``, each step the mean over the windows that cover it."""
    starts = window_starts(steps, length, stride)
    if not len(starts):
        raise SettingError(
            f"a series of {steps} steps is shorter than the window ({length} steps); give "
            "longer series or a model with a shorter window_length."
        )
    done = ready = 0  # steps given back so far, the last of them in the piece before
    means = StepMeans(0)
    for a in range(0, len(starts), PIECE_WINDOWS):
        piece = starts[a : a + PIECE_WINDOWS]  # its windows start at ``done`` or after
        high = int(piece[-1]) + length
        x = read(first + done, high - done)
        # The steps from ``done`` on: what the piece before left incomplete, then this one's
        means = means.rest(ready, high - done)
        for b in range(0, len(piece), batch_size):
            local = piece[b : b + batch_size] - done
            means.add(local, np.asarray(fn(torch.from_numpy(cut_windows(x, local, length)))))
        # Steps before the next piece's first window are complete
        ready = (
            int(starts[a + PIECE_WINDOWS]) if a + PIECE_WINDOWS < len(starts) else steps
        ) - done
        yield means.result(ready)
        done += ready


def step_scores(
    model: AutoencoderModule, beta: float, x: torch.Tensor, weights: np.ndarray | None = None
) -> torch.Tensor:
    """Each window step's anomaly score and its channels' parts, (B, W, 1 + C), for windows
    ``x`` (B, W, C) in raw units, each channel's part times its weight (see the module's
    docstring; ``None``: unweighted)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        parts, total = score_terms(Objective(beta=beta), model, x.to(device))
    b, w = x.shape[:2]
    rest = (total - parts.sum(1))[:, None, None]  # the KL term, spread evenly
    channels = parts.view(b, w, -1) * w
    if weights is not None:
        channels = channels * torch.as_tensor(weights, dtype=channels.dtype, device=device)
    score = channels.sum(-1, keepdim=True) + rest
    return torch.cat([score, channels], dim=-1).float().cpu()


def _step_blocks(
    model: AutoencoderModule,
    beta: float,
    windows: Windows,
    part: str,
    weights: np.ndarray | None,
    parts: bool,
) -> Iterator[np.ndarray]:
    """Each series' ``part``, stretch by stretch: its steps' scores, (n, 1), and with ``parts``
    the channels' parts after them, (n, 1 + C)."""
    width = None if parts else 1
    for first, steps in windows.layout.parts(part):
        if steps >= windows.length:
            yield from per_step(
                windows.read, first, steps, windows.length, windows.stride,
                lambda x: step_scores(model, beta, x, weights)[..., :width],
            )  # fmt: skip


def series_step_scores(
    model: AutoencoderModule,
    beta: float,
    windows: Windows,
    part: str,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """The anomaly score of every step of each series' ``part``, (steps,), series after
    series. Memory: 4 bytes a step, and :func:`per_step`'s."""
    blocks = [b[:, 0] for b in _step_blocks(model, beta, windows, part, weights, parts=False)]
    return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)


def channel_weights(model: AutoencoderModule, beta: float, windows: Windows) -> np.ndarray:
    """Each channel's weight in the score: one over its mean error on the training steps,
    floored (see the module's docstring). (C,) Memory: :func:`per_step`'s, whatever the number
    of steps."""
    total, count = 0.0, 0
    for block in _step_blocks(model, beta, windows, "train", None, parts=True):
        total = total + block[:, 1:].sum(0, dtype=np.float64)
        count += len(block)
    return inverse_mean(np.asarray(total) / max(count, 1))
