"""CSV and Parquet sources, read in record batches through pyarrow."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aekit.data.records import BadRecords, Block, row_id
from aekit.errors import DataError

# Rows per block: large enough for vectorised conversion, small enough to bound memory.
_BATCH_ROWS = 65536
_CSV_BLOCK_BYTES = 16 << 20
# Text tables as people write them: comma, tab, semicolon (where the comma is the decimal mark)
# or pipe between fields; the first lines of the file tell which
DELIMITERS = (",", "\t", ";", "|")
_SNIFF_BYTES = 64 << 10


def sniff_delimiter(path: Path) -> str:
    """The delimiter among :data:`DELIMITERS` that splits the header into the most fields and
    the rows after it into as many; a comma when none splits the header (one column).

    Quoted fields may hold any delimiter: the first lines are read as CSV with each candidate.
    """
    with open(path, "rb") as f:
        sample = f.read(_SNIFF_BYTES)
    text = sample.decode("utf-8-sig", errors="replace")
    best, best_score = ",", (False, 0.0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = [len(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
        except csv.Error:  # not text: pyarrow's reader says so when the table is opened
            break
        if len(sample) == _SNIFF_BYTES:
            rows = rows[:-1]  # the sample may end inside the last row
        if not rows:
            continue
        agree = sum(n == rows[0] for n in rows) / len(rows)
        score = (rows[0] > 1, agree, rows[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _check_text(path: Path) -> None:
    """Refuse a CSV whose first bytes are not UTF-8 text, naming the byte, before pyarrow's
    reader meets them (its handler for bad rows cannot even decode such a row)."""
    with open(path, "rb") as f:
        sample = f.read(_SNIFF_BYTES)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: byte {exc.start} is not UTF-8 text; a CSV must be UTF-8 (save it as "
            "UTF-8 CSV, or convert it to Parquet)."
        ) from exc
    if b"\x00" in sample:
        raise DataError(
            f"{path}: holds NUL bytes, so it is a binary file, not CSV text; pass a CSV, "
            "Parquet, .npy or HDF5 file."
        )


class TableSource:
    """Numeric feature columns of a CSV or Parquet file, with an optional label column.

    Every column but the label column is a feature and must be numeric. CSV fields are parsed as
    text and converted in bulk, so that a stray word deep in the file is reported by row rather
    than breaking type inference. Their delimiter is ``delimiter`` when given, else the one the
    first lines show (:func:`sniff_delimiter`).
    """

    def __init__(
        self,
        path: Path,
        label_column: str | None,
        bad: BadRecords,
        delimiter: str | None = None,
        time_column: str | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.label_column = label_column
        self.time_column = time_column
        self.bad = bad
        self.is_parquet = path.suffix.lower() in (".parquet", ".pq")
        self.delimiter: str | None = None
        if self.is_parquet:
            try:
                parquet = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow's errors for a damaged or foreign file
                raise DataError(f"{path}: cannot be read as Parquet ({exc}).") from exc
            names = parquet.schema_arrow.names
            self.n_records: int | None = parquet.metadata.num_rows
        else:
            _check_text(path)
            self.delimiter = _checked_delimiter(delimiter) or sniff_delimiter(path)
            names = self._csv_header()
            self.n_records = None
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataError(
                f"{path}: the column name '{repeated[0]}' appears {names.count(repeated[0])} "
                "times in the header; give each column a name of its own."
            )
        if label_column is not None and label_column not in names:
            raise DataError(
                f"{path}: no column named '{label_column}' for --label-column; the columns are "
                f"{', '.join(names)}."
            )
        if time_column is not None and time_column not in names:
            raise DataError(
                f"{path}: no column named '{time_column}' for --time-column; the columns are "
                f"{', '.join(names)}."
            )
        self.features = [c for c in names if c not in (label_column, time_column)]
        if not self.features:
            raise DataError(f"{path}: no feature column besides the label column.")
        self.sample_shape: tuple[int, ...] = (len(self.features),)
        self.dtype = np.dtype(np.float32)
        self.has_labels = label_column is not None
        self._label_codes: dict[str, int] = {}
        self.dropped_columns: list[str] = []
        self._started = False

    @property
    def class_names(self) -> list[str] | None:
        return list(self._label_codes) if self._label_codes else None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "parquet" if self.is_parquet else "csv",
            "path": str(self.path),
            "feature_names": self.features,
            "label_column": self.label_column,
            **({"time_column": self.time_column} if self.time_column else {}),
            **({"delimiter": self.delimiter} if self.delimiter else {}),
        }

    def _parse_options(self, on_invalid: Any) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid)

    def _csv_header(self) -> list[str]:
        import pyarrow.csv as pacsv

        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=1 << 16),
                # ragged rows are reported when the records are read, not here
                parse_options=self._parse_options(lambda row: "skip"),
            )
        except Exception as exc:
            raise DataError(f"{self.path}: cannot be read as CSV ({exc}).") from exc
        return list(reader.schema.names)

    def _batches(self) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.is_parquet:
            yield from pq.ParquetFile(self.path).iter_batches(batch_size=_BATCH_ROWS)
            return
        ragged: list[Any] = []

        def on_invalid(row: Any) -> str:
            ragged.append(row)
            return "skip"

        names = [*self.features] + [c for c in (self.label_column, self.time_column) if c]
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
            parse_options=self._parse_options(on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
        )
        for batch in reader:
            for row in ragged:
                self.bad.bad(
                    f"row '{row.text[:60]}'",
                    f"has {row.actual_columns} fields where the header has {row.expected_columns}",
                )
            ragged.clear()
            yield batch

    def blocks(self) -> Iterator[Block]:
        start = 0
        for batch in self._batches():
            n = batch.num_rows
            record = np.arange(start, start + n, dtype=np.int64)
            x, keep = self._features(batch, record)
            y = self._labels(batch) if self.has_labels else None
            ids = None
            if self.time_column:  # each step's time, as the file writes it
                times = batch.column(self.time_column).cast("string")
                ids = np.asarray(times.to_numpy(zero_copy_only=False), dtype=object)
            block = Block(x, y, ids, record)
            yield block if keep.all() else block.take(keep)
            self._started = True
            start += n

    def _features(self, batch: Any, record: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, n_features) float32 and the mask of rows whose every field converted."""
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = np.ones(batch.num_rows, dtype=bool)
        columns = []
        for name in self.features:
            if name in self.dropped_columns:
                continue
            col = batch.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                try:
                    col = pc.cast(col, pa.float64())
                except pa.ArrowInvalid:
                    col, ok = self._convert_slowly(name, col, record)
                    if col is None:
                        continue
                    keep &= ok
            elif not (
                pa.types.is_integer(col.type)
                or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type)
            ):
                self._non_numeric(name, str(col.type))
                continue
            values = col if isinstance(col, np.ndarray) else col.to_numpy(zero_copy_only=False)
            columns.append(values.astype(np.float32))
        if self.dropped_columns:
            self.features = [f for f in self.features if f not in self.dropped_columns]
            self.sample_shape = (len(self.features),)
        return np.stack(columns, axis=1) if columns else np.empty((batch.num_rows, 0)), keep

    def _convert_slowly(self, name: str, col: Any, record: np.ndarray) -> tuple[Any, np.ndarray]:
        """The error path: find which fields of a text column are not numbers."""
        values = col.to_pylist()
        out = np.full(len(values), np.nan)
        ok = np.ones(len(values), dtype=bool)
        for i, v in enumerate(values):
            try:
                out[i] = float(v) if v not in (None, "") else np.nan
            except ValueError:
                ok[i] = False
        if ok.mean() < 0.5:
            self._non_numeric(name, "text")
            return None, ok
        for bad_row in np.flatnonzero(~ok):
            self.bad.bad(
                row_id(int(record[bad_row])),
                f"column '{name}' holds {values[bad_row]!r}, not a number",
            )
        return out, ok

    def _non_numeric(self, name: str, kind: str) -> None:
        if all(f in (name, *self.dropped_columns) for f in self.features):
            # Dropping it would leave nothing to train on: most likely not a table of numbers
            how = "" if self.is_parquet else f" when read with the delimiter {self.delimiter!r}"
            raise DataError(
                f"{self.path}: no feature column is numeric{how} (columns: "
                f"{', '.join(self.features)}); give numeric features, in a text table with a "
                "header row and fields separated by ',', tab, ';' or '|'."
            )
        # A column can only be dropped before any record was kept: the width is fixed after that
        if self.bad.on_error == "fail" or self._started:
            raise DataError(
                f"{self.path}: column '{name}' is not numeric ({kind}); name it with "
                "--label-column, remove it, or rerun with --on-error skip to drop it."
            )
        self.dropped_columns.append(name)
        self.bad.skipped.append({"record": f"column '{name}'", "problem": f"not numeric ({kind})"})

    def _labels(self, batch: Any) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        column = batch.column(self.label_column)
        if pa.types.is_integer(column.type) and not self._label_codes:
            values = column.to_numpy(zero_copy_only=False)
            if column.null_count == 0 and (len(values) == 0 or values.min() >= 0):
                return values.astype(np.int64)  # class numbers as the file gives them
        # Text labels: encode the batch once, then map its few distinct values to file-wide codes
        encoded = pc.dictionary_encode(column.cast(pa.string()))
        names = [str(v) for v in encoded.dictionary.to_pylist()]
        lookup = np.array(
            [self._label_codes.setdefault(v, len(self._label_codes)) for v in names] or [0],
            dtype=np.int64,
        )
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return lookup[np.nan_to_num(indices, nan=0).astype(np.int64)]


def _checked_delimiter(delimiter: str | None) -> str | None:
    if delimiter is not None and len(delimiter) != 1:
        raise DataError(
            f"The delimiter of a CSV table must be one character, such as ',' or '\\t'. "
            f"Got {delimiter!r} instead."
        )
    return delimiter
