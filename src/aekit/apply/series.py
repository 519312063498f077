"""A model fitted on series applied to series: windows in, values per window or per time step.

What a series is here: one array (T,) or (T, C), a list of them, or a series store (each of its
series whole, both parts). Per-window methods (codes) read the windows at the fitted stride,
each series' last window ending at its last step; per-step methods (scores, reconstructions)
give each step the mean over the windows that cover it (see :mod:`aekit.training.series`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.apply.batching import as_store
from aekit.atomic import partial_name
from aekit.data.series import SeriesLayout, cut_windows, window_starts
from aekit.data.store import Store
from aekit.data.stream import inference_batch
from aekit.training.series import Read, check_series, per_step, step_scores


@dataclass
class SeriesInput:
    """Series to apply a model to: where each lies and how to read its steps."""

    layout: SeriesLayout
    read: Read
    store: Store | None = None

    def parts(self) -> list[tuple[int, int]]:
        return self.layout.parts("all")


def as_series(X: Any, channels: int) -> SeriesInput:
    """``X`` (an array (T,) or (T, C), a list of them, or a series store or its path) as
    series of ``channels`` channels; anything else is refused, naming what it is."""
    store = as_store(X)
    if store is not None:
        layout = store.series
        if layout is None:
            raise ValueError(
                f"{store.path} is a store of rows; the model was fitted on series: ingest them "
                "with series=True (aekit ingest --series)."
            )
        if store.sample_shape != (channels,):
            raise ValueError(
                f"{store.path} holds series of {store.sample_shape[0]} channel(s); the model "
                f"was fitted on {channels}."
            )
        return SeriesInput(layout, store.read_span, store)
    steps, lengths = check_series(X, channels)
    names = [f"series {i + 1}" for i in range(len(lengths))]
    return SeriesInput(SeriesLayout.split(names, lengths, 0.0), lambda a, n: steps[a : a + n])


def window_batches(estimator: Any, X: Any) -> Iterator[torch.Tensor]:
    """The windows of ``X``'s series at the fitted stride, in order, in batches."""
    length, stride = estimator.window_length_, estimator.window_stride_
    series = as_series(X, estimator.sample_shape_[-1])
    batch = inference_batch(estimator.sample_shape_)
    for first, steps in series.parts():
        starts = window_starts(steps, length, stride)
        for a in range(0, len(starts), batch):
            local = starts[a : a + batch]
            x = series.read(first + int(local[0]), int(local[-1]) - int(local[0]) + length)
            yield torch.from_numpy(cut_windows(x, local - local[0], length))


def over_steps(estimator: Any, X: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """``fn`` over the windows of ``X``'s series ((B, W, C) -> (B, W, K)), brought back to
    every step: (steps, K), the series one after another."""
    length, stride = estimator.window_length_, estimator.window_stride_
    series = as_series(X, estimator.sample_shape_[-1])
    out: list[np.ndarray] = []
    for first, steps in series.parts():
        out.extend(per_step(series.read, first, steps, length, stride, fn))
    return np.concatenate(out).astype(np.float32)


def step_anomaly(estimator: Any, X: Any) -> np.ndarray:
    """Each step's anomaly score and its channels' parts: (steps, 1 + C)."""
    weights = getattr(estimator, "channel_weights_", None)
    return over_steps(
        estimator, X, lambda x: step_scores(estimator.model_, estimator.beta, x, weights)
    )


def step_reconstruction(estimator: Any, X: Any) -> np.ndarray:
    """Each step's reconstruction in raw units, the mean over its windows: (steps, C)."""
    model = estimator.model_
    device = next(model.parameters()).device

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x.to(device)).float().cpu()

    return over_steps(estimator, X, reconstruct)


def write_window_codes(estimator: Any, X: Any, out: Path) -> dict[str, Any]:
    """One row per window of ``X``'s series, at the fitted stride, to ``out`` (.parquet, or
    .csv): ``series``, ``start`` and ``end`` (the times of its first and last step, as
    :func:`write_step_scores` gives them) and ``z0`` ... (its code; the mean code of a
    variational model). Written under a temporary name and renamed when complete. Memory: the
    codes and each step's time."""
    import pyarrow as pa

    series = as_series(X, estimator.sample_shape_[-1])
    length, stride = estimator.window_length_, estimator.window_stride_
    codes = estimator.transform(X if series.store is None else series.store)
    times = _times(series)
    names, first, last = [], [], []
    for name, (begin, steps) in zip(series.layout.names, series.parts(), strict=True):
        starts = begin + window_starts(steps, length, stride)
        names.extend([name] * len(starts))
        first.append(times[starts])
        last.append(times[starts + length - 1])
    columns: dict[str, Any] = {
        "series": np.asarray(names, dtype=object),
        "start": np.concatenate(first),
        "end": np.concatenate(last),
    }
    columns.update({f"z{i}": codes[:, i] for i in range(codes.shape[1])})
    _write_table(pa.table(columns), out)
    return {"rows": len(codes), "out": str(out)}


def write_step_scores(estimator: Any, X: Any, out: Path) -> dict[str, Any]:
    """One row per time step of ``X``'s series to ``out`` (.parquet, or .csv): ``time`` (the
    stored time stamp, else the step's number in its series from 0), ``series`` (its name),
    ``score``, ``anomaly`` (above ``threshold_``) and ``share_<channel>``, each channel's
    share of the step's reconstruction error; ``label`` where the store has labels. Written
    under a temporary name and renamed when complete. Memory: the series' steps' scores."""
    import pyarrow as pa

    series = as_series(X, estimator.sample_shape_[-1])
    values = step_anomaly(estimator, X)
    score, parts = values[:, 0], values[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.nan_to_num(parts / parts.sum(1, keepdims=True))
    names = channel_names(series.store, parts.shape[1])
    columns: dict[str, Any] = {
        "time": _times(series),
        "series": np.repeat(np.asarray(series.layout.names, dtype=object), series.layout.lengths),
        "score": score,
        "anomaly": score > estimator.threshold_,
    }
    if series.store is not None and series.store.labels is not None:
        columns["label"] = series.store.labels
    columns.update({f"share_{name}": shares[:, i] for i, name in enumerate(names)})
    _write_table(pa.table(columns), out)
    return {"rows": len(score), "flagged": int(columns["anomaly"].sum()), "out": str(out)}


def _write_table(table: Any, out: Path) -> None:
    """``table`` to ``out`` (.csv, else Parquet) under a temporary name, renamed when complete."""
    tmp = partial_name(out)
    try:
        if out.suffix == ".csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _times(series: SeriesInput) -> np.ndarray:
    """Each step's time: the store's time stamps (text), else its number in its series."""
    store = series.store
    if store is not None and store.meta.get("source", {}).get("time_column"):
        return np.asarray(store.ids(np.arange(store.n)), dtype=object).astype(str)
    starts = np.repeat(series.layout.starts, series.layout.lengths)
    return np.arange(series.layout.n_steps) - starts


def channel_names(store: Store | None, channels: int) -> list[str]:
    """The store's channel names (its table's columns), else the channels' numbers."""
    names = None if store is None else store.meta.get("source", {}).get("feature_names")
    return list(names) if names and len(names) == channels else [str(i) for i in range(channels)]
