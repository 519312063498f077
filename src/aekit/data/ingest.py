"""Ingest: read a source once, fix the split, compute statistics, write a store."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.records import STORED_FLOATS, BadRecords
from aekit.data.remote import is_remote
from aekit.data.split import TRAIN, VALIDATION, assign_split
from aekit.data.stats import RunningStats
from aekit.data.store import Store, StoreWriter, check_destination, is_store, open_store
from aekit.errors import DataError
from aekit.memory import require_memory

TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq"}
HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".he5"}


def ingest(
    source: Any,
    store: str | Path,
    *,
    labels: Any = None,
    class_names: Any = None,
    size: tuple[int, int] | None = None,
    channels: int = 3,
    label_column: str | None = None,
    feature_names: Any = None,
    delimiter: str | None = None,
    dataset: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    validation_rows: Any = None,
    on_error: str = "fail",
    workers: int | None = None,
    progress: bool | None = None,
    series: bool = False,
    time_column: str | None = None,
    dtype: str | None = None,
) -> Store:
    """Read ``source`` once and write it as a store at ``store``; return the opened store.

    Parameters
    ----------
    source : path-like, ndarray or DataFrame
        Image folder (a subfolder per class), ``.npy``, CSV/Parquet, HDF5, array or DataFrame.
    store : path-like or str
        Destination, not existing yet: a path (its folder is created if needed) or
        ``s3://bucket/prefix/name.zarr``. Written under a temporary name, moved in when done.
    labels : array-like or path-like, optional
        Labels for an in-memory array, a ``.npy`` or an HDF5 source, one per record: an array,
        or a file (a 1-d ``.npy``, or text with one label per line).
    class_names : list of str, optional
        Names of numeric labels, class ``k`` first (a scikit-learn dataset's ``target_names``).
    size : (height, width), optional
        Image size after resizing (image folders), with ``channels`` 1 or 3.
    label_column, feature_names : str, list of str, optional
        The column of a CSV, Parquet or DataFrame source holding the labels; the names of an
        in-memory array's columns (a scikit-learn dataset's ``feature_names``).
    delimiter, dataset : str, optional
        A CSV file's delimiter (default: told from its first lines); the dataset to read in
        an HDF5 file (needed when it holds more than one).
    val_fraction, validation_rows : float, array-like of int, optional
        Share of records put in the validation split, fixed per record by ``seed``; or the
        records (row numbers) that make it, for a split made elsewhere (a stratified one, say).
    on_error : {'fail', 'skip'}
        A bad record stops the ingest naming it, or is skipped and listed in the ingest report.
    workers, progress : int, bool, optional
        Processes decoding images (default: all cores); a progress bar (default: on a
        terminal). Memory: one block of records (about 32 MB), whatever the source's size.
    series, time_column, dtype : bool, str, str, optional
        Series (:mod:`aekit.data.series_sources`), each one's end held out; their time stamps;
        ``dtype='float16'`` stores features at half float32's bytes (bad records past +-65504).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 4))
    >>> labels = np.where(X[:, 0] > 0, "high", "low")
    >>> store = ingest(X, "example.zarr", labels=labels, progress=False)
    >>> store.n, store.sample_shape, store.class_names
    (100, (4,), ['high', 'low'])
    """
    started = time.perf_counter()
    check_destination(store)  # before reading a source that may take hours
    _check_options(val_fraction, channels)
    name = str(source) if isinstance(source, (str, Path)) else type(source).__name__
    bad = BadRecords(name, on_error, _stored_float(dtype))
    table = {"label_column": label_column, "delimiter": delimiter, "names": feature_names}
    table["time"], split = time_column, (validation_rows, seed, val_fraction)
    opening = (source, bad, labels, table, dataset, split, size)
    src, *how = _series(*opening) if series else _records(*opening, channels, workers)
    _name_classes(src, class_names, name)
    how.append(_store_dtype(src, dtype, name))
    path = _write_store(src, store, bad, name, tuple(how), progress, started)
    if bad.count and progress is not False:
        print(f"ingest: skipped {bad.count} bad record(s); see 'aekit info {path}'")
    return open_store(path)


def _stored_float(dtype: str | None) -> str:
    if dtype is not None and dtype not in STORED_FLOATS:
        raise DataError(f"--dtype must be one of {', '.join(STORED_FLOATS)}; got {dtype!r}.")
    return dtype or "float32"


def _store_dtype(src: Any, dtype: str | None, name: str) -> np.dtype:
    """What the store holds: the source's type (uint8 or float32), or the float type asked."""
    if dtype is None:
        return np.dtype(src.dtype)
    if src.dtype == np.uint8:
        raise DataError(
            f"{name} holds uint8 values, stored as they are (one byte each, less than any float); "
            "drop --dtype."
        )
    return np.dtype(dtype)


def _series(
    source: Any, bad: BadRecords, labels: Any, table: dict, dataset: str | None, split: tuple,
    size: Any,
) -> tuple[Any, Callable[[np.ndarray], np.ndarray], dict[str, Any]]:  # fmt: skip
    """A series source, the split of its steps (the end of each series) and its description."""
    from aekit.data.series_sources import open_series

    validation_rows, _, fraction = split
    if validation_rows is not None or size is not None:
        raise DataError(f"{bad.source}: a series is split by time; drop validation_rows, size.")
    src = open_series(source, bad, labels, table, dataset, fraction)
    return src, src.layout.split_of, {"by": "time", "val_fraction": fraction}


def _records(
    source: Any, bad: BadRecords, labels: Any, table: dict, dataset: str | None, split: tuple,
    size: Any, channels: int, workers: int | None,
) -> tuple[Any, Callable[[np.ndarray], np.ndarray], dict[str, Any]]:  # fmt: skip
    """A source of records, the split of each (by ``split``'s rows, or hashed by its seed)
    and its description."""
    if table["time"] is not None:
        raise DataError(f"{bad.source}: --time-column applies to series; add --series.")
    src = _open_source(source, bad, labels, size, channels, table, dataset, workers)
    return src, _splitter(*split), _split_description(*split)


def _write_store(
    src: Any, store: str | Path, bad: BadRecords, name: str, split: tuple, progress: Any,
    started: float,
) -> str | Path:  # fmt: skip
    """Write every record of ``src`` and publish the store; on any failure, leave nothing.
    ``split``: the split of each record number, how it was made, and the stored type."""
    split_of, described, dtype = split
    written: list[tuple[StoreWriter, RunningStats]] = []
    try:
        writer, stats = _write_blocks(src, store, bad, (split_of, dtype), progress, written)
        if writer is None or stats is None:
            raise DataError(f"{name}: no usable record (all {bad.count} were bad, or it is empty).")
        if stats.count == 0:
            raise DataError(f"{name}: no record fell in the training split; lower --val-fraction.")
        attributes = _attributes(src, stats, described, writer.appended, bad, started)
        if hasattr(src, "layout"):
            attributes["series"] = src.layout.to_meta()
        return writer.commit(attributes)
    except BaseException:
        for writer, _ in written:
            writer.abort()
        raise


def _open_source(
    source: Any,
    bad: BadRecords,
    labels: Any,
    size: tuple[int, int] | None,
    channels: int,
    table: dict[str, Any],
    dataset: str | None,
    workers: int | None,
) -> Any:
    """The source's reader; ``table`` holds the options of tables (label column, delimiter, the
    names of an array's columns)."""
    from aekit.data import images, sources, tables

    if not isinstance(source, (str, Path)):
        return sources.from_memory(source, labels, table["label_column"], table["names"])
    if table["names"] is not None:
        raise DataError(
            f"{source}: feature_names names an in-memory array's columns; a file's names come "
            "from its header."
        )
    if is_remote(source):
        raise DataError(f"{source}: a source on object storage must be a store; use it directly.")
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path.")
    if path.is_dir():
        if is_store(path):
            raise DataError(f"{path} is already a store; use it directly.")
        if size is None:
            raise DataError(f"{path}: image folders need --size HxW, e.g. --size 128x128.")
        if labels is not None:
            raise DataError(f"{path}: an image folder's labels are its subfolders; drop --labels.")
        workers = workers or os.cpu_count() or 1
        # a block of decoded images in this process, and a resize in each worker
        per_image = size[0] * size[1] * channels
        require_memory(
            (images.BLOCK_IMAGES + 4 * workers) * per_image,
            f"--size {size[0]}x{size[1]} ({per_image:,} bytes an image)",
            "choose a smaller --size",
        )
        return images.ImageFolderSource(path, size, channels, workers, bad)
    if size is not None:
        raise DataError(f"{path}: --size applies to image folders only; leave it out for files.")
    suffix = path.suffix.lower()
    if isinstance(labels, (str, Path)):
        labels = sources.read_labels(labels)
    if suffix in TABLE_SUFFIXES and labels is not None:
        raise DataError(f"{path}: a table's labels are one of its columns; use --label-column.")
    if suffix == ".npy":
        return sources.from_npy(path, labels)
    if suffix in TABLE_SUFFIXES:
        return tables.TableSource(path, table["label_column"], bad, table["delimiter"])
    if suffix in HDF5_SUFFIXES:
        return sources.from_hdf5(path, dataset, labels)
    known = ", ".join(sorted({".npy", *TABLE_SUFFIXES, *HDF5_SUFFIXES}))
    raise DataError(
        f"{path}: unknown kind of source '{suffix}'; use a folder of images or a file ending in "
        f"{known}."
    )


def _name_classes(src: Any, class_names: Any, name: str) -> None:
    """Give ``src``'s numeric labels ``class_names`` (when given): one distinct name a class."""
    if class_names is None:
        return
    if not getattr(src, "has_labels", False):
        raise DataError(
            f"{name}: --class-names names the classes of labels, and it has none; give --labels "
            "too."
        )
    if src.class_names is not None or getattr(src, "labels", None) is None:
        raise DataError(
            f"{name}: its labels are named already (text labels, folder names or a table's "
            "values); drop --class-names."
        )
    names = [str(n).strip() for n in class_names]
    top = int(src.labels.max()) if len(src.labels) else -1
    if len(names) <= top:
        raise DataError(
            f"{name}: --class-names gives {len(names)} name(s), but the labels go up to {top}; "
            f"give one name for each class 0..{top}."
        )
    if len(set(names)) != len(names) or "" in names:
        raise DataError(f"{name}: --class-names must be distinct and non-empty; got {names}.")
    src.class_names = names


def describe_store(store: Store) -> dict[str, Any]:
    """What ``aekit info`` prints: counts, shapes, split sizes, classes, statistics, skips."""
    split = store.split
    info: dict[str, Any] = {
        "path": str(store.path),
        "samples": store.n,
        "sample_shape": list(store.sample_shape),
        "dtype": store.dtype.name,
        "train": int(np.sum(split == 0)),
        "validation": int(np.sum(split == 1)),
        "source": store.meta.get("source", {}),
        "stats": {k: np.round(v, 6).tolist() for k, v in store.stats.items()},
        "report": store.report,
    }
    labels = store.labels
    if labels is not None:
        counts = np.bincount(labels)
        names = store.class_names or [str(i) for i in range(len(counts))]
        info["classes"] = {names[i]: int(c) for i, c in enumerate(counts) if c}
    return info


def _check_options(val_fraction: float, channels: int) -> None:
    if not 0 <= val_fraction < 1:
        raise DataError(f"--val-fraction must be in [0, 1); got {val_fraction}.")
    if channels not in (1, 3):
        raise DataError(f"--channels must be 1 or 3; got {channels}.")


def _attributes(
    src: Any, stats: RunningStats, split: dict, appended: int, bad: BadRecords, started: float
) -> dict[str, Any]:
    """What the store says about itself: its source, statistics, split and ingest report."""
    return {
        "source": src.describe(),
        "stats": stats.to_dict(),
        "class_names": src.class_names,
        "split": split,
        "report": {
            "records_read": appended + bad.count,
            **bad.report(),
            "seconds": round(time.perf_counter() - started, 3),
        },
    }


def _split_description(validation_rows: Any, seed: int, val_fraction: float) -> dict[str, Any]:
    if validation_rows is None:
        return {"seed": seed, "val_fraction": val_fraction}
    return {"validation_rows": int(np.size(validation_rows))}


def _splitter(
    validation_rows: Any, seed: int, val_fraction: float
) -> Callable[[np.ndarray], np.ndarray]:
    """The split (TRAIN or VALIDATION) of each record number."""
    if validation_rows is None:
        return lambda records: assign_split(records, seed, val_fraction)
    chosen = np.unique(np.asarray(validation_rows, dtype=np.int64))
    return lambda records: np.where(np.isin(records, chosen), VALIDATION, TRAIN).astype(np.uint8)


def _write_blocks(
    src: Any,
    store: str | Path,
    bad: BadRecords,
    how: tuple[Callable[[np.ndarray], np.ndarray], np.dtype],
    progress: bool | None,
    written: list[tuple[StoreWriter, RunningStats]],
) -> tuple[StoreWriter | None, RunningStats | None]:
    """Append every usable block of ``src`` to a store writer of the type ``how[1]``, made at
    the first one (and recorded in ``written`` at once, so that a failure later can abort it),
    with the training split's statistics (of the values read; ``how[0]`` gives each record's
    split)."""
    split_of, dtype = how
    from tqdm import tqdm

    # disable=None lets tqdm show the bar on a terminal only
    hide = None if progress is None else not progress
    with tqdm(total=src.n_records, unit="rec", desc="ingest", disable=hide, leave=False) as bar:
        for block in src.blocks():
            if len(block.record):  # records before this block's last are done
                bar.update(int(block.record[-1]) + 1 - bar.n)
            block = bad.drop_non_finite(block)
            if len(block.x) == 0:
                continue
            if not written:
                writer = StoreWriter(
                    store,
                    src.sample_shape,
                    dtype,
                    has_labels=src.has_labels,
                    numbered_ids=block.ids is None,
                )
                written.append((writer, RunningStats(src.sample_shape[-1])))
            writer, stats = written[0]
            split = split_of(block.record)
            stats.update(block.x[split == TRAIN])
            ids = block.record if block.ids is None else block.ids
            writer.append(block.x, block.y, ids, split)
    return written[0] if written else (None, None)
