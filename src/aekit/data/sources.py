"""Array-like sources: in-memory arrays and DataFrames, ``.npy`` files, HDF5 datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.records import Block
from aekit.errors import DataError

# Samples per block read from an array source: bounded memory for arrays of any size. Each row
# also costs its record number, split and flags (about 20 bytes), so narrow arrays are read in
# blocks of at most 1M rows (a 32 MB block of one float32 column held 8M of them).
_BLOCK_BYTES = 32 << 20
_BLOCK_ROWS = 1 << 20


class ArraySource:
    """Samples along axis 0 of an array-like: an ndarray, a memory-mapped ``.npy``, an HDF5
    dataset, or the numeric columns of a DataFrame.

    Shapes: ``(n, features)`` for tables, ``(n, height, width)`` or ``(n, height, width,
    channels)`` for images (uint8 kept as is; anything else is stored as float32).
    """

    def __init__(
        self,
        data: Any,
        name: str,
        labels: Any = None,
        feature_names: list[str] | None = None,
        kind: str = "array",
    ) -> None:
        shape = tuple(int(s) for s in data.shape)
        if len(shape) not in (2, 3, 4) or 0 in shape:
            raise DataError(
                f"{name}: expected samples along axis 0 with shape (n, features), (n, height, "
                f"width) or (n, height, width, channels), none of them 0; got shape {shape}."
            )
        dtype = np.dtype(data.dtype)
        if dtype.kind not in "biuf":
            raise DataError(f"{name}: expected numbers; got dtype {dtype}.")
        # PyTorch's layout, (n, C, H, W), is read and stored channels last
        self.channels_first = is_channels_first(shape)
        if self.channels_first:
            shape = (shape[0], shape[2], shape[3], shape[1])
        elif len(shape) == 4 and shape[3] not in (1, 3, 4):
            raise DataError(
                f"{name}: images are (n, height, width, channels) or (n, channels, height, width) "
                f"with 1, 3 or 4 channels; got shape {shape}."
            )
        self.data = data
        self.name = name
        self.kind = kind
        self.n_records = shape[0]
        self.sample_shape = shape[1:] if len(shape) != 3 else (*shape[1:], 1)
        self.dtype = np.dtype(np.uint8) if dtype == np.uint8 else np.dtype(np.float32)
        self.feature_names = feature_names
        self.labels, self.class_names = _encode_labels(labels, shape[0], name)
        self.has_labels = self.labels is not None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "path": self.name}
        if self.channels_first:
            out["layout"] = "channels first (n, C, H, W), stored channels last"
        if self.feature_names is not None:
            out["feature_names"] = self.feature_names
        return out

    def blocks(self) -> Iterator[Block]:
        row_bytes = int(np.prod(self.sample_shape)) * 4
        step = max(1, min(_BLOCK_BYTES // row_bytes, _BLOCK_ROWS))
        for start in range(0, self.n_records, step):
            stop = min(start + step, self.n_records)
            x = np.asarray(self.data[start:stop])
            if self.channels_first:
                x = x.transpose(0, 2, 3, 1)
            x = x.reshape(stop - start, *self.sample_shape)
            record = np.arange(start, stop, dtype=np.int64)
            y = None if self.labels is None else self.labels[start:stop]
            yield Block(x, y, None, record)


def is_channels_first(shape: tuple[int, ...]) -> bool:
    """Whether a 4-D array of images is (n, C, H, W): 1, 3 or 4 on axis 1, and the last axis
    not a channel count (where both could be, channels last is read)."""
    return len(shape) == 4 and shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4)


def _encode_labels(labels: Any, n: int, name: str) -> tuple[np.ndarray | None, list[str] | None]:
    if labels is None:
        return None, None
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise DataError(f"{name}: labels must be one per record, shape ({n},); got {labels.shape}.")
    if labels.dtype.kind in "iu" and labels.min() >= 0:
        return labels.astype(np.int64), None
    missing = _missing(labels)
    if missing.any():
        raise DataError(
            f"{name}: the label of record {int(np.argmax(missing)) + 1} is missing "
            f"({labels[np.argmax(missing)]!r}); give every record a label, or none."
        )
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(v) for v in names]


def _missing(labels: np.ndarray) -> np.ndarray:
    """Which labels are missing: NaN, None, or empty or 'nan' text (a class named 'nan' once)."""
    if labels.dtype.kind == "f":
        return np.isnan(labels)
    text = np.char.lower(np.char.strip(labels.astype(str)))
    return np.isin(text, ["", "nan", "none"])


def from_npy(path: Path, labels: Any = None, *, series: bool = False) -> ArraySource:
    """A ``.npy`` file of any size, memory-mapped: never loaded whole. ``series``: a 1-d array
    is one channel's steps."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc}).") from exc
    if series and data.ndim == 1:
        data = data[:, None]
    return ArraySource(data, str(path), labels, kind="npy")


class _OneChannel:
    """A 1-d dataset read as (T, 1): one channel's steps, sliced as the source reads them."""

    def __init__(self, data: Any) -> None:
        self.data, self.dtype, self.shape = data, data.dtype, (data.shape[0], 1)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.data[rows])[:, None]


def read_labels(path: str | Path) -> np.ndarray:
    """Labels from a file, one per record: a 1-d ``.npy`` array, or text with one per line
    (class names or numbers)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} (--labels) does not exist; give a .npy array or a text file.")
    if path.suffix.lower() == ".npy":
        try:
            labels = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npy array of labels ({exc}).") from exc
        if labels.ndim != 1:
            raise DataError(
                f"{path}: labels must be one per record, shape (n,); got {labels.shape}."
            )
        return labels
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: labels must be UTF-8 text, one per line ({exc}).") from exc
    labels = np.array([line.strip() for line in lines if line.strip()])
    if labels.size and all(v.lstrip("-").isdigit() for v in labels):
        return labels.astype(np.int64)
    return labels


def from_hdf5(
    path: Path, dataset: str | None, labels: Any = None, *, series: bool = False
) -> ArraySource:
    """One dataset of an HDF5 file, read in slices; ``series``: a 1-d one is one channel."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is an install option
        raise DataError("reading HDF5 needs h5py: pip install 'aekit[hdf5]'.") from exc
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc}).") from exc
    names: list[str] = []
    handle.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    if dataset is None:
        if len(names) != 1:
            raise DataError(
                f"{path}: holds {len(names)} datasets ({', '.join(names) or 'none'}); choose one "
                "with --dataset NAME."
            )
        dataset = names[0]
    if dataset not in names:
        raise DataError(
            f"{path}: no dataset '{dataset}'; the datasets are {', '.join(names) or 'none'}."
        )
    data = handle[dataset]
    if series and len(data.shape) == 1:
        data = _OneChannel(data)
    return ArraySource(data, f"{path}:{dataset}", labels, kind="hdf5")


def from_memory(
    X: Any, y: Any = None, label_column: str | None = None, feature_names: Any = None
) -> ArraySource:
    """An in-memory ndarray or DataFrame (with an optional label column or label array); an
    array's columns may be named by ``feature_names``, a DataFrame's are its column names."""
    if hasattr(X, "columns"):  # a DataFrame
        if feature_names is not None:
            raise DataError("DataFrame: its columns name its features; drop feature_names.")
        if label_column is not None:
            if label_column not in X.columns:
                raise DataError(f"DataFrame: no column named '{label_column}'.")
            y = X[label_column].to_numpy()
            X = X.drop(columns=[label_column])
        non_numeric = [c for c in X.columns if X[c].dtype.kind not in "biuf"]
        if non_numeric:
            raise DataError(
                f"DataFrame: column '{non_numeric[0]}' is not numeric; drop it or pass it as "
                "label_column."
            )
        names = [str(c) for c in X.columns]
        return ArraySource(X.to_numpy(), "DataFrame", y, names, kind="dataframe")
    X = np.asarray(X)
    given = None if feature_names is None else _feature_names(feature_names, X.shape)
    return ArraySource(X, "array", y, given, kind="array")


def _feature_names(names: Any, shape: tuple[int, ...]) -> list[str]:
    """``names`` as a list of strings, one per column of a table of ``shape``."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise DataError("array: feature_names must be a list of strings, one per column.")
    names = list(names)
    if len(shape) != 2 or len(names) != shape[1]:
        raise DataError(
            f"array: {len(names)} feature_names for an array of shape {shape}; give one name "
            "per column of an (n, features) table."
        )
    return names
