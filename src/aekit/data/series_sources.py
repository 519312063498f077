"""Series sources: one long series or a folder of them, each read in blocks of steps.

A series is a ``.npy`` or HDF5 array of shape (T,) or (T, C), or a CSV or Parquet table whose
rows are time steps and whose numeric columns are channels, with an optional time column (kept
as each step's id) and an optional label column (one label per step). A folder holds one series
per file (an entity), all with the same channels. The steps of each series are numbered on from
the previous one's, so one store holds them back to back; :class:`~aekit.data.series.
SeriesLayout` keeps the boundaries and the split by time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.records import BadRecords, Block
from aekit.data.series import SeriesLayout
from aekit.errors import DataError

SERIES_SUFFIXES = {".npy", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".h5", ".hdf5"}


class SeriesSource:
    """Several series read one after another as one source of steps.

    Parameters
    ----------
    parts : list of (name, source)
        Each series' name and its reader (an array or table source of its steps).
    val_fraction : float
        The last share of each series held out for validation.
    origin : str, optional
        The folder the series came from.
    """

    def __init__(
        self, parts: list[tuple[str, Any]], val_fraction: float, origin: str | None = None
    ) -> None:
        first_name, first = parts[0]
        for name, part in parts:
            if len(part.sample_shape) != 1:
                raise DataError(
                    f"{name}: a series is (T,) or (T, channels); got steps of shape "
                    f"{part.sample_shape}."
                )
            if part.sample_shape != first.sample_shape:
                raise DataError(
                    f"{name}: has {part.sample_shape[0]} channel(s), {first_name} has "
                    f"{first.sample_shape[0]}; the series of one store share their channels."
                )
        self.parts = parts
        self.origin = origin
        self.sample_shape = first.sample_shape
        self.dtype = np.dtype(np.float32)
        self.has_labels = any(part.has_labels for _, part in parts)
        self.class_names: list[str] | None = None
        lengths = [_steps(part) for _, part in parts]
        self.layout = SeriesLayout.split([name for name, _ in parts], lengths, val_fraction)
        self.n_records = self.layout.n_steps

    def describe(self) -> dict[str, Any]:
        out = {**self.parts[0][1].describe(), "kind": "series", "series": len(self.parts)}
        if self.origin is not None:
            out["path"] = self.origin
        return out

    def blocks(self) -> Iterator[Block]:
        for (name, part), start in zip(self.parts, self.layout.starts, strict=True):
            for block in part.blocks():
                if not np.isfinite(block.x).all():
                    step = int(block.record[np.flatnonzero(~np.isfinite(block.x).all(1))[0]])
                    raise DataError(
                        f"{name}: step {step + 1} holds a missing or non-finite value; a series "
                        "cannot skip a step (windows would join across the gap): fill the gaps "
                        "(interpolate, or carry the last value forward) and ingest again."
                    )
                y = block.y
                if self.has_labels and y is None:
                    y = np.zeros(len(block.x), dtype=np.int64)
                yield Block(block.x, y, block.ids, block.record + start)


def _steps(part: Any) -> int:
    if part.n_records is None:  # a CSV: its rows counted once, as its steps
        return sum(1 for _ in _rows(part))
    return int(part.n_records)


def _rows(part: Any) -> Iterator[int]:
    for batch in part._batches():
        yield from range(batch.num_rows)


def open_series(
    source: Any,
    bad: BadRecords,
    labels: Any,
    table: dict[str, Any],
    dataset: str | None,
    val_fraction: float,
) -> SeriesSource:
    """The series at ``source``: an array (T,) or (T, C), a list of them, a file, or a folder
    of files (one series each, in name order)."""
    if bad.on_error != "fail":
        raise DataError(
            f"{bad.source}: --on-error skip cannot apply to a series (a skipped step would join "
            "the steps around it into one window); fix the bad steps instead."
        )
    if not isinstance(source, (str, Path)):
        arrays = source if isinstance(source, (list, tuple)) else [source]
        many = len(arrays) > 1
        parts = [
            (f"series {i + 1}" if many else "array", _array_part(a, f"series {i + 1}", labels))
            for i, a in enumerate(arrays)
        ]
        return SeriesSource(parts, val_fraction)
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path.")
    files = [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SERIES_SUFFIXES)
        if not files:
            raise DataError(
                f"{path}: no series file in it; a folder of series holds one file per series "
                f"({', '.join(sorted(SERIES_SUFFIXES))})."
            )
        if labels is not None:
            raise DataError(
                f"{path}: --labels gives one series' labels; in a folder, give each file a label "
                "column (--label-column)."
            )
    parts = [(f.stem if path.is_dir() else f.name, _file_part(f, bad, labels, table, dataset))
             for f in files]  # fmt: skip
    return SeriesSource(parts, val_fraction, str(path) if path.is_dir() else None)


def _array_part(data: Any, name: str, labels: Any) -> Any:
    from aekit.data.sources import ArraySource

    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or 0 in data.shape:
        raise DataError(f"{name}: a series is (T,) or (T, channels); got shape {data.shape}.")
    return ArraySource(data, name, labels, kind="array")


def _file_part(
    path: Path, bad: BadRecords, labels: Any, table: dict[str, Any], dataset: str | None
) -> Any:
    from aekit.data import sources, tables

    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv", ".txt", ".parquet", ".pq"}:
        if labels is not None:
            raise DataError(f"{path}: a table's labels are one of its columns; use --label-column.")
        return tables.TableSource(
            path, table["label_column"], bad, table["delimiter"], time_column=table.get("time")
        )
    if isinstance(labels, (str, Path)):
        labels = sources.read_labels(labels)
    source = (
        sources.from_npy(path, labels, series=True)
        if suffix == ".npy"
        else sources.from_hdf5(path, dataset, labels, series=True)
    )
    return source
