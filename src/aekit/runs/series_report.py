"""The report's sections for a run fitted on series: each series drawn with its per-step score
under it, PCA's score on the same windows below, flagged stretches and known anomalies shaded,
and the windows the model reconstructs worst beside their reconstructions.

Bounded work: the store's series are scored whole, in their order, until ``MAX_STEPS`` steps
(the last one cut there), and PCA is fitted on at most ``PCA_WINDOWS`` training windows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aekit.analysis.page import Page, figure, paragraph, table
from aekit.apply.series import channel_names, step_anomaly
from aekit.data.series import cut_windows, window_rows
from aekit.data.store import Store
from aekit.errors import AekitError
from aekit.models.scaling import scaled_by, usable_std
from aekit.training.series import per_step

MAX_STEPS = 50_000  # steps scored and drawn
PCA_WINDOWS = 10_000  # training windows PCA is fitted on, at most
PCA_VALUES = 5_000_000  # and at most this many values (windows x steps x channels)
SHOWN = 3  # series drawn: those with the highest scores
CHANNELS = 3  # channels drawn per series: those with the largest shares of its score
WORST = 4  # windows drawn with their reconstructions


@dataclass
class _Scored:
    names: list[str]  # the series scored
    lengths: list[int]  # their steps (the last one's cut at MAX_STEPS)
    steps: np.ndarray  # (steps, C) raw values, series after series
    values: np.ndarray  # (steps, 1 + C): the score and each channel's part
    baseline: np.ndarray  # (steps,): PCA's score
    labels: np.ndarray | None  # (steps,) where the store has labels


def series_sections(page: Page, ae: Any, store: Store, seed: int) -> None:
    """Add the series sections of ``ae``'s report, drawn from ``store`` (a series store of the
    channels it was fitted on)."""
    layout = store.series
    channels = ae.sample_shape_[-1]
    if layout is None or tuple(store.sample_shape) != (channels,):
        raise AekitError(
            f"{store.path} is not a series store of {channels} channel(s), as the run was "
            "trained on; pass one with --store (aekit ingest --series)."
        )
    scored = _score(ae, store, seed)
    if scored is None:
        page.add("Series", paragraph(f"No series of {store.path} is as long as a window."))
        return
    page.add("Scores over time", _summary(ae, scored), *_series_figures(ae, store, scored))
    page.add("Worst windows", _worst_windows(ae, store, scored))


def _score(ae: Any, store: Store, seed: int) -> _Scored | None:
    layout = store.series
    assert layout is not None
    names: list[str] = []
    lengths: list[int] = []
    arrays: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    total = 0
    for name, (first, count) in zip(layout.names, layout.parts("all"), strict=True):
        take = min(count, MAX_STEPS - total)
        if take < ae.window_length_:
            continue
        names.append(name)
        lengths.append(take)
        arrays.append(store.read_span(first, take))
        if store.labels is not None:
            labels.append(np.asarray(store.labels[first : first + take]))
        total += take
        if total >= MAX_STEPS:
            break
    if not arrays:
        return None
    values = step_anomaly(ae, arrays)
    steps = np.concatenate(arrays)
    return _Scored(
        names,
        lengths,
        steps,
        values,
        _pca_steps(ae, store, steps, lengths, seed),
        np.concatenate(labels) if labels else None,
    )


def _pca_steps(
    ae: Any, store: Store, steps: np.ndarray, lengths: list[int], seed: int
) -> np.ndarray:
    """PCA's score of each step: PCA of the code's size fitted on training windows (the model's
    standardised units, flattened), each window's squared error at each of its steps, averaged
    over the windows that cover it as the model's score is."""
    from sklearn.decomposition import PCA

    length, stride = ae.window_length_, ae.window_stride_
    stats = scaled_by(ae.scale, store.stats)
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = usable_std(np.asarray(stats["std"], dtype=np.float32))
    starts = store.series.windows("train", length, stride)  # type: ignore[union-attr]
    cap = max(2, min(PCA_WINDOWS, PCA_VALUES // (length * steps.shape[1])))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(starts, min(cap, len(starts)), replace=False))
    train = (store.read(window_rows(chosen, length).ravel()) - mean) / std
    pca = PCA(min(ae.latent_dim, len(chosen) - 1), random_state=seed)
    pca.fit(train.reshape(len(chosen), -1))

    def errors(x: torch.Tensor) -> torch.Tensor:
        z = ((x.numpy() - mean) / std).reshape(len(x), -1)
        error = (z - pca.inverse_transform(pca.transform(z))) ** 2
        return torch.from_numpy(error.reshape(x.shape).sum(-1, keepdims=True))

    values = steps.astype(np.float32, copy=False)
    out: list[np.ndarray] = []
    first = 0
    for n in lengths:
        read = lambda a, count: values[a : a + count]  # noqa: E731
        out.extend(block[:, 0] for block in per_step(read, first, n, length, stride, errors))
        first += n
    return np.concatenate(out)


def _summary(ae: Any, scored: _Scored) -> str:
    score = scored.values[:, 0]
    flagged = score > ae.threshold_
    rows = [
        ("steps scored", f"{len(score):,} of {len(scored.names)} series"
         + (f" (the first {len(score):,})" if len(score) >= MAX_STEPS else "")),
        ("windows", f"{ae.window_length_} steps, stride {ae.window_stride_}; each step's score "
                    "is the mean over the windows that cover it"),
        ("flagged", f"{int(flagged.sum()):,} steps ({100 * flagged.mean():.2f} %) above "
                    f"{ae.threshold_:.4g}"),
    ]  # fmt: skip
    labels = scored.labels
    if labels is not None and 0 < labels.mean() < 1:
        from sklearn.metrics import average_precision_score, roc_auc_score

        for name, s in (("aekit", score), ("PCA, same windows", scored.baseline)):
            rows.append((
                f"{name}: ROC-AUC / AUC-PR per step",
                f"{roc_auc_score(labels, s):.3f} / {average_precision_score(labels, s):.3f}",
            ))  # fmt: skip
    return table(rows)


def _series_figures(ae: Any, store: Store, scored: _Scored) -> list[str]:
    from aekit.analysis.series_plots import SeriesScoreDisplay

    names = channel_names(store, scored.steps.shape[1])
    bounds = np.concatenate([[0], np.cumsum(scored.lengths)])
    peaks = [scored.values[a:b, 0].max() for a, b in itertools.pairwise(bounds)]
    out: list[str] = []
    for i in np.argsort(peaks)[::-1][:SHOWN]:
        a, b = bounds[i], bounds[i + 1]
        top = np.argsort(scored.values[a:b, 1:].sum(0))[::-1][:CHANNELS]
        display = SeriesScoreDisplay(
            scored.names[i],
            scored.steps[a:b][:, top],
            [names[c] for c in top],
            scored.values[a:b, 0],
            ae.threshold_,
            scored.baseline[a:b],
            None if scored.labels is None else scored.labels[a:b],
        )
        out.append(figure(display, f"series {scored.names[i]}: channels, score and flags"))
    return out


def _worst_windows(ae: Any, store: Store, scored: _Scored) -> str:
    """The ``WORST`` highest-scoring steps, apart by a window at least, each drawn in a window
    centred on it (within its series) against the model's reconstruction."""
    from aekit.analysis.series_plots import WorstWindowsDisplay

    length = ae.window_length_
    bounds = np.concatenate([[0], np.cumsum(scored.lengths)])
    score = scored.values[:, 0].copy()
    starts: list[int] = []
    titles: list[str] = []
    while len(starts) < WORST and np.isfinite(score).any():
        peak = int(np.nanargmax(score))
        i = int(np.searchsorted(bounds, peak, side="right")) - 1
        start = int(np.clip(peak - length // 2, bounds[i], bounds[i + 1] - length))
        starts.append(start)
        titles.append(f"{scored.names[i]}, step {peak - bounds[i]}: score {score[peak]:.3g}")
        score[max(0, peak - length) : peak + length] = -np.inf
    windows = cut_windows(scored.steps, np.asarray(starts), length)
    with torch.no_grad():
        model = ae.model_
        device = next(model.parameters()).device
        rebuilt = model(torch.from_numpy(windows).to(device)).float().cpu().numpy()
    parts = scored.values[:, 1:][window_rows(np.asarray(starts), length).ravel()].sum(0)
    channel = int(np.argmax(parts))
    display = WorstWindowsDisplay(
        windows, rebuilt, titles, channel, channel_names(store, windows.shape[-1])[channel]
    )
    return figure(display, "the worst-reconstructed windows against their reconstructions")
