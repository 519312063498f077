"""Blocks of records as sources hand them to the ingest, and the policy for bad records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aekit.errors import DataError

STORED_FLOATS = ("float32", "float16")
"""The types a store can hold features in: float32, or float16 at half the bytes (65504 at
most, about three significant digits)."""


@dataclass
class Block:
    """Consecutive records from a source.

    ``record`` is each record's position in the source (used to fix its split), ``ids`` how a
    user finds it again (a file's relative path); None where that is its row number, which the
    store then keeps as the number itself (see :func:`id_text`).
    """

    x: np.ndarray  # (b, *sample_shape)
    y: np.ndarray | None  # (b,) int64
    ids: np.ndarray | None  # (b,) str
    record: np.ndarray  # (b,) int64

    def take(self, keep: np.ndarray) -> Block:
        return Block(
            self.x[keep],
            None if self.y is None else self.y[keep],
            None if self.ids is None else self.ids[keep],
            self.record[keep],
        )

    def id(self, i: int) -> str:
        return str(self.ids[i]) if self.ids is not None else row_id(int(self.record[i]))


def row_id(record: int) -> str:
    """How a record of an array or a table is named: ``row N``, counted from 1."""
    return f"row {record + 1}"


def id_text(ids: np.ndarray) -> np.ndarray:
    """A store's ids as text (object array): kept as they are, or record numbers as ``row N``.

    Sources whose records are rows keep only their numbers: 8 bytes a record where the text
    ``row 7999999`` cost a Python string of about 60 bytes, and a chunk of millions of them
    broke the ingest's memory bound on narrow data.
    """
    if ids.dtype.kind in "iu":
        return np.array([row_id(record) for record in ids.tolist()], dtype=object)
    return np.asarray(ids).astype(object)


@dataclass
class BadRecords:
    """What to do with a record that cannot be used: stop the ingest, or skip it and say so.

    With ``on_error="fail"`` the first bad record raises a :class:`DataError` naming it; with
    ``"skip"`` each one is listed (up to ``keep_at_most`` in detail) for the store's ingest report.
    """

    source: str
    on_error: str = "fail"
    stored: str = "float32"  # the float type the store holds: what a value must fit
    keep_at_most: int = 1000
    count: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_error not in ("fail", "skip"):
            raise DataError(f"--on-error must be 'fail' or 'skip'; got {self.on_error!r}.")

    def bad(self, where: str, problem: str) -> None:
        if self.on_error == "fail":
            raise DataError(
                f"{self.source}, {where}: {problem}; fix or remove it, or rerun with "
                "--on-error skip to leave it out."
            )
        self.count += 1
        if len(self.skipped) < self.keep_at_most:
            self.skipped.append({"record": where, "problem": problem})

    def drop_non_finite(self, block: Block) -> Block:
        """Drop (or fail on) records with NaN or infinite values, or values that the store's
        float type cannot represent; vectorised, loops only on bad records."""
        if block.x.dtype.kind not in "fc":
            return block
        flat = block.x.reshape(len(block.x), -1)
        finite = np.isfinite(flat).all(axis=1)
        largest = float(np.finfo(self.stored).max)
        too_large = np.zeros(len(flat), dtype=bool)
        if flat.dtype.itemsize > np.dtype(self.stored).itemsize:
            with np.errstate(invalid="ignore"):
                too_large = (np.abs(flat) > largest).any(axis=1)
        if finite.all() and not too_large.any():
            return block
        for i in np.flatnonzero(~finite | too_large):
            if not finite[i]:
                self.bad(block.id(int(i)), "contains NaN, empty or infinite values")
            else:
                column = int(np.flatnonzero(np.abs(flat[i]) > largest)[0])
                self.bad(block.id(int(i)), self._beyond(column, float(flat[i, column]), largest))
        return block.take(finite & ~too_large)

    def _beyond(self, column: int, value: float, largest: float) -> str:
        fix = "ingest with dtype float32 or rescale the data"
        if self.stored == "float32":
            fix = "rescale the data"
        return (
            f"column {column} holds {value:.6g}, beyond {self.stored}'s range (+-{largest:.5g}, "
            f"what the store holds); {fix}"
        )

    def report(self) -> dict[str, object]:
        return {"skipped_count": self.count, "skipped": self.skipped}
