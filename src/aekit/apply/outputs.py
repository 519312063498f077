"""Output files written batch by batch, published under their final name only when complete.

The format follows the file name:

- ``.npy``: the values as one array, written in order with plain writes after its space is
  reserved, so that a full disk is an error naming the file (a memory map would die of
  SIGBUS). Labels go beside it in ``NAME.labels.npy`` and ids in ``NAME.ids.txt``, one per line,
  a backslash, newline or carriage return in an id written as ``\\``, ``\n``, ``\r``. The
  companions are published before the array and stale ones of an earlier output removed, so
  that ``NAME.npy`` never sits beside another output's labels or ids.
- ``.parquet``: one row per sample: ``id``, ``label``, then the values (one column per feature
  for flat samples, one fixed-size list column ``x`` for images), then any extra columns.
- ``.zarr``: a store (as ``aekit ingest`` writes), which carries labels, ids and the split, so
  that the output can be trained on or reported on in its turn.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np

from aekit.atomic import naming, partial_name, taken
from aekit.data.records import id_text, row_id
from aekit.data.split import TRAIN
from aekit.errors import AekitError
from aekit.memory import require_disk

FORMATS = (".npy", ".parquet", ".zarr")

# Bytes of values gathered before they are written as one Parquet row group. A row group per
# batch kept each group's column metadata in the writer until the footer: with a column per
# feature, the scores of a million rows of 784 features took 2.8 GB that way.
ROW_GROUP_BYTES = 32 << 20


def check_output(path: str | Path, formats: tuple[str, ...] = FORMATS) -> Path:
    """The output path must have a known suffix, must not exist, and its folder must."""
    path = Path(path)
    if path.suffix not in formats:
        raise AekitError(f"--out {path} must end in {', '.join(formats)}.")
    if taken(path):  # a link that loops or leads nowhere included
        raise AekitError(f"--out {path} already exists; remove it or choose another name.")
    if not path.parent.is_dir():
        raise AekitError(f"--out {path}: the folder {path.parent} does not exist; create it.")
    return path


class Output:
    """Rows appended in order to ``path``; ``commit`` publishes, ``abort`` removes everything.

    Parameters
    ----------
    path : Path
        Checked by :func:`check_output`.
    n : int
        Number of rows that will be written.
    sample_shape : tuple of int
        Shape of one row's values.
    has_labels : bool
    names : list of str, optional
        Column names of flat values in Parquet (default ``prefix0``, ``prefix1``, ...).
    prefix : str
        Prefix of the default column names.
    class_names : list of str, optional
        The names of the label codes: Parquet's ``label`` column holds the names (a code means
        nothing once it leaves its store; ``.npy`` labels stay codes).
    """

    def __init__(
        self,
        path: Path,
        n: int,
        sample_shape: tuple[int, ...],
        *,
        has_labels: bool,
        names: list[str] | None = None,
        prefix: str = "x",
        class_names: list[str] | None = None,
    ) -> None:
        self.path = path
        self.class_names = None if class_names is None else np.asarray(class_names, dtype=object)
        # float32 values, the least any format writes: ids, labels and headers only add to it
        require_disk(
            4.0 * n * float(np.prod(sample_shape)),
            path.parent,
            f"--out {path}: {n:,} samples of shape {tuple(sample_shape)}",
            "free some space, write elsewhere, or write fewer samples",
        )
        self.n = n
        self.sample_shape = tuple(sample_shape)
        self.has_labels = has_labels
        self.names = names
        self.prefix = prefix
        self.written = 0
        self._tmp: list[tuple[Path, Path]] = []  # (temporary, final) pairs
        self._writer: Any = None
        self._stats: Any = None
        # Parquet rows not yet written as a row group: their values, and the columns beside them
        self._group: np.ndarray | None = None
        self._group_rows = 0
        self._side: list[Any] = []

    def _reserve(self, final: Path) -> Path:
        tmp = partial_name(final)
        self._tmp.append((tmp, final))
        return tmp

    def write(
        self,
        values: np.ndarray,
        *,
        labels: np.ndarray | None = None,
        ids: np.ndarray | None = None,
        split: np.ndarray | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Append the next rows: ``values`` of shape (b, *sample_shape) and their companions."""
        if self.path.suffix == ".npy":
            self._write_npy(values, labels, ids)
        elif self.path.suffix == ".parquet":
            self._write_parquet(values, labels, ids, extra or {})
        else:
            self._write_store(values, labels, ids, split)
        self.written += len(values)

    def _companion(self, suffix: str) -> Path:
        return self.path.with_name(self.path.stem + suffix)

    def _write_npy(self, values: np.ndarray, labels: Any, ids: Any) -> None:
        if self._writer is None:
            arrays = {"values": (self.path, values.dtype, self.sample_shape)}
            if self.has_labels:
                arrays["labels"] = (self._companion(".labels.npy"), np.dtype(np.int64), ())
            self._writer = {
                key: _NpyFile(self._reserve(final), final, dtype, (self.n, *shape))
                for key, (final, dtype, shape) in arrays.items()
            }
            self._ids_file = None
            if ids is not None:
                self._ids_file = open(self._reserve(self._companion(".ids.txt")), "x")
        self._writer["values"].write(values)
        if "labels" in self._writer and labels is not None:
            self._writer["labels"].write(np.asarray(labels, dtype=np.int64))
        if self._ids_file is not None and ids is not None:
            ids = np.asarray(ids)
            if ids.dtype.kind in "iu":  # record numbers: ``row N`` needs no escape
                self._ids_file.write("".join(f"{row_id(i)}\n" for i in ids.tolist()))
            else:
                self._ids_file.write("".join(f"{escape_id(str(i))}\n" for i in id_text(ids)))

    def _write_parquet(self, values: np.ndarray, labels: Any, ids: Any, extra: dict) -> None:
        import pyarrow as pa

        side: dict[str, Any] = {}
        if ids is not None:
            side["id"] = pa.array(id_text(np.asarray(ids)).astype(str))
        if self.has_labels and labels is not None:
            side["label"] = pa.array(self._named(np.asarray(labels)))
        side.update({name: pa.array(column) for name, column in extra.items()})
        # Arrow's own copies (its allocator, not C's heap): NumPy's small per-batch arrays, kept
        # until their row group is written, pinned the heap between the batches' large buffers,
        # and the scores of a million rows grew the process by 6.9 GB
        beside = pa.table({k: pa.concat_arrays([a]) for k, a in side.items()})
        self._side.append(beside)
        flat = values.reshape(len(values), -1)
        if self._group is None:  # one buffer of a row group's values, filled again and again
            row_bytes = flat[:1].nbytes + beside.nbytes / max(1, len(flat))
            rows = max(1, int(ROW_GROUP_BYTES // row_bytes))
            self._group = np.empty((rows, flat.shape[1]), flat.dtype)
        done = 0
        while done < len(flat):
            take = min(len(flat) - done, len(self._group) - self._group_rows)
            self._group[self._group_rows : self._group_rows + take] = flat[done : done + take]
            done, self._group_rows = done + take, self._group_rows + take
            if self._group_rows == len(self._group):
                self._flush_parquet()

    def _flush_parquet(self) -> None:
        """Write the rows gathered so far as one row group: their values, then the columns
        beside them (id and label first, the caller's extra columns last)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = self._group_rows
        if self._group is None or n == 0:
            return
        side = pa.concat_tables(self._side)
        self._side = [side.slice(n)]  # the rest of a batch that filled this group
        columns = {k: side.column(k).slice(0, n) for k in ("id", "label") if k in side.schema.names}
        flat = self._group[:n]
        if len(self.sample_shape) <= 1:
            names = self.names or [f"{self.prefix}{i}" for i in range(flat.shape[1])]
            columns.update({name: flat[:, i] for i, name in enumerate(names)})
        else:
            columns["x"] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
        extra = [k for k in side.schema.names if k not in ("id", "label")]
        columns.update({k: side.column(k).slice(0, n) for k in extra})
        table = pa.table(columns)
        if self._writer is None:
            metadata = {b"aekit.sample_shape": str(list(self.sample_shape)).encode()}
            schema = table.schema.with_metadata(metadata)
            self._writer = pq.ParquetWriter(self._reserve(self.path), schema)
        self._writer.write_table(table.replace_schema_metadata(self._writer.schema.metadata))
        self._group_rows = 0

    def _named(self, labels: np.ndarray) -> np.ndarray:
        if self.class_names is None:
            return labels
        known = (labels >= 0) & (labels < len(self.class_names))  # else no name: null
        names = self.class_names[np.where(known, labels, 0)]
        names[~known] = None
        return names

    def _write_store(self, values: np.ndarray, labels: Any, ids: Any, split: Any) -> None:
        from aekit.data.stats import RunningStats
        from aekit.data.store import StoreWriter

        if self._writer is None:
            dtype = np.uint8 if values.dtype == np.uint8 else np.float32
            self._writer = StoreWriter(
                self.path,
                self.sample_shape,
                dtype,
                has_labels=self.has_labels,
                numbered_ids=ids is None or np.asarray(ids).dtype.kind in "iu",
            )
            self._stats = RunningStats(self.sample_shape[-1])
        split = np.full(len(values), TRAIN, np.uint8) if split is None else split
        ids = np.arange(self.written, self.written + len(values)) if ids is None else ids
        # Statistics of the training split, as ingest computes them
        self._stats.update(values[split == TRAIN] if np.any(split == TRAIN) else values)
        self._writer.append(values, labels if self.has_labels else None, ids, split)

    def commit(self, attrs: dict[str, Any] | None = None) -> Path:
        """Publish the output (and its companion files) under their final names."""
        if self.written != self.n:
            self.abort()
            raise AekitError(f"{self.path}: wrote {self.written} of {self.n} rows; nothing kept.")
        if self.path.suffix == ".zarr":
            self._writer.commit(
                {"stats": self._stats.to_dict(), "class_names": None, **(attrs or {})}
            )
            return self.path
        if self.path.suffix == ".npy":
            for array in self._writer.values():
                array.close()
            if self._ids_file is not None:
                self._ids_file.close()
            written = {final for _, final in self._tmp}
            for suffix in (".labels.npy", ".ids.txt"):  # an earlier output's, not this one's
                if self._companion(suffix) not in written:
                    self._companion(suffix).unlink(missing_ok=True)
        else:
            self._flush_parquet()
            if self._writer is not None:
                self._writer.close()
        # the companions first, the output itself last: it never appears beside stale ones
        for tmp, final in sorted(self._tmp, key=lambda pair: pair[1] == self.path):
            tmp.replace(final)
        return self.path

    def abort(self) -> None:
        """Remove everything written so far."""
        if self.path.suffix == ".zarr" and self._writer is not None:
            self._writer.abort()
            return
        if self.path.suffix == ".npy" and self._writer is not None:
            for array in self._writer.values():
                array.close()
            if self._ids_file:
                self._ids_file.close()
        if self.path.suffix == ".parquet" and self._writer is not None:
            self._writer.close()
        for tmp, _ in self._tmp:
            tmp.unlink(missing_ok=True)


def escape_id(text: str) -> str:
    """An id on one line of ``NAME.ids.txt``: backslash, newline and carriage return escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


class _NpyFile:
    """A ``.npy`` file of a known shape, its rows written in order; its whole size is reserved
    on the disk first, so that a full disk fails at once, with the file's name."""

    def __init__(self, path: Path, final: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.final = final
        self.file = open(path, "xb")
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": shape,
        }
        with naming(final, path):
            np.lib.format.write_array_header_2_0(self.file, header)
            size = self.file.tell() + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            try:
                os.posix_fallocate(self.file.fileno(), 0, size)
            except OSError as exc:  # file systems without it still get plain writes
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
        self.dtype = np.dtype(dtype)

    def write(self, rows: np.ndarray) -> None:
        with naming(self.final, self.file.name):
            self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())

    def close(self) -> None:
        if not self.file.closed:
            with naming(self.final, self.file.name):
                self.file.close()
