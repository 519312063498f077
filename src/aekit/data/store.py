"""The on-disk store: a Zarr v3 group that any Zarr reader opens.

Layout (all arrays chunked alike along axis 0, so one chunk index covers one block of records):

- ``x``: samples, ``(n, *sample_shape)``, uint8 for images and float32 for features, stored
  uncompressed so that the training stream can map chunk files straight into memory.
- ``y``: int64 class labels (only when the source has labels).
- ``split``: uint8, 0 train, 1 validation.
- ``ids``: the source record of each sample: str (a file's relative path), or int64, the
  record's row in its source counted from 0 (shown as ``row N`` from 1: see
  :func:`aekit.data.records.id_text`).
- group attributes under ``"aekit"``: format version, source, sample shape, dtype, statistics,
  class names, the ingest report, and ``complete: true``, written last.

A store is written under a hidden temporary name beside its destination and renamed into place
when complete, so a failed or killed ingest never leaves anything at the destination. A store on
object storage (``s3://bucket/prefix/name.zarr``, see :mod:`aekit.data.remote`) is written under
a hidden temporary prefix and copied into place, its root ``zarr.json`` (which says
``complete``) last.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from aekit.atomic import partial_name, taken
from aekit.data import chunkmap
from aekit.data.blockcache import BlockCache
from aekit.data.chunkmap import ALIGNMENT, ChunkMap
from aekit.data.order import index_dtype
from aekit.data.remote import Remote, RemoteError, is_remote, temporary_sibling
from aekit.data.series import SeriesLayout
from aekit.data.split import TRAIN, VALIDATION
from aekit.data.uncached import read_uncached
from aekit.data.uncached import supported as can_read_uncached
from aekit.errors import AekitError, DataError

T = TypeVar("T")

FORMAT_VERSION = 1
# Chunks this large keep the number of files and of distinct chunks touched per batch small,
# and are still small next to the memory a training process needs.
CHUNK_BYTES = 32 << 20
# and at most this many rows: a chunk's ids, split and labels cost 17 bytes a row beside its
# samples, 5 times the samples for one float32 feature (8M rows, 170 MB held while filling it)
CHUNK_ROWS = 1 << 20


def rows_per_chunk(sample_shape: Sequence[int], dtype: np.dtype | str) -> int:
    """Rows per chunk: about CHUNK_BYTES (at most CHUNK_ROWS rows), and a whole number of 64 KiB
    blocks so that chunk files can be mapped back to back (see :mod:`aekit.data.chunkmap`)."""
    row_bytes = max(1, int(np.prod(sample_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    unit = ALIGNMENT // math.gcd(row_bytes, ALIGNMENT)
    return max(unit, min(CHUNK_BYTES // row_bytes, CHUNK_ROWS) // unit * unit)


def check_destination(path: str | Path) -> Path | Remote:
    """A store's destination must not exist yet, and its folder (or bucket) must."""
    if is_remote(path):
        remote = Remote.parse(str(path))
        remote.check_writable_destination()
        return remote
    path = Path(path)
    if taken(path):  # a link that loops or leads nowhere included
        raise DataError(f"{path} already exists; remove it or choose another store path.")
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise DataError(f"{parent} is not a folder; choose a store path inside a folder.")
    return path


class StoreWriter:
    """Appends records to a new store and publishes it atomically on :meth:`commit`.

    Parameters
    ----------
    path : path-like
        Destination. It must not exist yet.
    sample_shape : tuple of int
    dtype : numpy dtype
        ``uint8`` or ``float32`` (``float16`` for compact features).
    has_labels : bool
    numbered_ids : bool
        Ids are record numbers (int64), not text.
    """

    def __init__(
        self,
        path: str | Path,
        sample_shape: Sequence[int],
        dtype: Any,
        *,
        has_labels: bool,
        numbered_ids: bool = False,
    ) -> None:
        import zarr

        self.path = check_destination(path)
        self.tmp: Path | Remote = (
            temporary_sibling(self.path)
            if isinstance(self.path, Remote)
            else partial_name(self.path)
        )
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.dtype = np.dtype(dtype)
        self.chunk_rows = rows_per_chunk(self.sample_shape, self.dtype)
        self.has_labels = has_labels
        self.id_dtype: Any = np.int64 if numbered_ids else str
        self.n = 0  # records written to disk
        self.appended = 0  # records handed to append, written or pending
        # The chunk being filled, one buffer per array (see _buffers)
        self._pending: dict[str, np.ndarray] = {}
        self._pending_rows = 0
        try:
            self._through_zarr(lambda: self._create(zarr))
        except BaseException:  # stopped while creating (a signal, a full disk): leave nothing
            self.abort()
            raise

    def _through_zarr(self, write: Callable[[], T]) -> T:
        """``write()``, writes through zarr-python to the temporary store (see through_zarr)."""
        remote = self.tmp if isinstance(self.tmp, Remote) else None
        where = self.path.url if isinstance(self.path, Remote) else self.path
        return through_zarr(remote, f"writing {where}", write)

    def _create(self, zarr: Any) -> None:
        """The empty arrays of the store under its temporary name."""
        where = self.tmp.zarr_store(read_only=False) if isinstance(self.tmp, Remote) else self.tmp
        self._group = zarr.open_group(where, mode="w", zarr_format=3)
        chunks = (self.chunk_rows, *self.sample_shape)
        # Uncompressed and written even where all zero: every chunk file is the raw C-order bytes
        # of its block, which is what lets the stream read it with a memory map.
        self._x = self._group.create_array(
            "x",
            shape=(0, *self.sample_shape),
            chunks=chunks,
            dtype=self.dtype,
            compressors=None,
            fill_value=0,
            config={"write_empty_chunks": True},
        )
        columns = {"split": np.uint8, "ids": self.id_dtype}
        if self.has_labels:
            columns["y"] = np.int64
        self._columns = {
            name: self._group.create_array(name, shape=(0,), chunks=(self.chunk_rows,), dtype=dt)
            for name, dt in columns.items()
        }

    def append(
        self, x: np.ndarray, y: np.ndarray | None, ids: np.ndarray, split: np.ndarray
    ) -> None:
        """Copy a block of records into the chunk being filled; a full chunk is written at once,
        so no chunk is ever rewritten."""
        values = {"x": x, "y": y, "ids": np.asarray(ids), "split": split}
        done = 0
        while done < len(x):
            pending = self._buffers()
            take = min(len(x) - done, self.chunk_rows - self._pending_rows)
            at = slice(self._pending_rows, self._pending_rows + take)
            for name, buffer in pending.items():
                buffer[at] = values[name][done : done + take]  # type: ignore[index]
            done += take
            self.appended += take
            self._pending_rows += take
            if self._pending_rows == self.chunk_rows:
                self._through_zarr(self._flush)

    def _buffers(self) -> dict[str, np.ndarray]:
        """One chunk's buffers, made once and refilled: a chunk of blocks kept as a list of small
        arrays interleaved the heap with each batch's work, and an encode to a store of 2M rows
        held 300 MB more than to a ``.npy`` (freed but never returned to the system)."""
        if not self._pending:
            rows = self.chunk_rows
            self._pending = {
                "x": np.empty((rows, *self.sample_shape), dtype=self.dtype),
                "ids": np.empty(rows, dtype=np.int64 if self.id_dtype is np.int64 else object),
                "split": np.empty(rows, dtype=np.uint8),
            }
            if self.has_labels:
                self._pending["y"] = np.empty(rows, dtype=np.int64)
        return self._pending

    def _flush(self) -> None:
        """Write the records of the chunk being filled."""
        rows = self._pending_rows
        if rows == 0:
            return
        start, stop = self.n, self.n + rows
        self._x.resize((stop, *self.sample_shape))
        self._x[start:stop] = self._pending["x"][:rows]
        for name, values in self._pending.items():
            if name != "x":
                column = (
                    values[:rows]
                    if name != "ids"
                    else values[:rows].astype(self.id_dtype, copy=False)
                )
                self._columns[name].resize((stop,))
                self._columns[name][start:stop] = column
        self.n = stop
        self._pending_rows = 0

    def commit(self, attrs: dict[str, Any]) -> str | Path:
        """Write the remaining records and the attributes, then move the store into place."""
        self._through_zarr(self._flush)
        if self.n == 0:
            self.abort()
            raise AekitError(
                "no record could be ingested (all were skipped or the source is empty); "
                "check the source or the ingest report."
            )
        meta = {
            **attrs,
            "format_version": FORMAT_VERSION,
            "n": self.n,
            "sample_shape": list(self.sample_shape),
            "dtype": self.dtype.name,
            "chunk_rows": self.chunk_rows,
            "id": uuid.uuid4().hex,
            "complete": True,
        }
        self._through_zarr(lambda: self._group.attrs.update({"aekit": meta}))
        if isinstance(self.tmp, Remote) and isinstance(self.path, Remote):
            self.tmp.publish_to(self.path)
            return self.path.url
        assert isinstance(self.tmp, Path) and isinstance(self.path, Path)
        self.tmp.rename(self.path)
        return self.path

    def abort(self) -> None:
        _drain_zarr_io()
        if isinstance(self.tmp, Remote):
            with contextlib.suppress(RemoteError):  # unreachable: the prefix stays hidden
                self.tmp.delete_all()
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _drain_zarr_io(timeout: float = 30.0) -> None:
    """Wait for the writes still running on Zarr's I/O thread. A write stopped in the main
    thread (a signal, Ctrl-C) goes on there, and would put files back into a partial store
    removed meanwhile."""
    import asyncio

    from zarr.core import sync

    loop = sync.loop[0] if sync.loop else None
    if loop is None or not loop.is_running():
        return

    async def others() -> None:
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(others(), loop).result(timeout + 1)


def through_zarr(remote: Remote | None, what: str, request: Callable[[], T]) -> T:
    """``request()``: reads or writes through zarr-python. On object storage they go through the
    retries of every request (:meth:`Remote.call`): a server restarting answers 5xx for a moment,
    where zarr-python would give up at once. Sending one again is safe: a write puts the same
    bytes at the same key."""
    return request() if remote is None else remote.call(what, request)


class Store:
    """A complete store opened for reading. Use :func:`open_store`.

    Attributes
    ----------
    n, sample_shape, dtype : the samples' count, shape of one sample and storage type
    stats : dict with ``mean``, ``std``, ``min``, ``max`` per feature (tables) or channel (images),
        computed on the training split
    class_names : list of str or None
    """

    def __init__(self, path: str | Path) -> None:
        self.remote = Remote.parse(str(path)) if is_remote(path) else None
        self.path: str | Path = self.remote.url if self.remote else Path(path)
        if not is_store(self.path):
            raise AekitError(
                f"{self.path} is not an aekit store (no zarr.json); create one with 'aekit ingest'."
            )
        try:
            self._through_zarr("zarr.json", self._open_metadata)
        except AekitError:
            raise
        except Exception as exc:  # an edited or damaged zarr.json: say so, not a traceback
            raise AekitError(
                f"{self.path}: its metadata (zarr.json) cannot be read ({type(exc).__name__}: "
                f"{exc}); delete the store and run 'aekit ingest' again."
            ) from exc
        # Chunk files are raw bytes only while the codecs are a plain little-endian "bytes" step;
        # a store rewritten with compression is still read, through zarr-python.
        self._raw = self._plain_bytes() and self.dtype.byteorder in ("<", "=", "|")
        self._direct = (
            self.remote is None
            and self._raw
            and chunkmap.supported()
            and (self.chunk_rows * self._row_bytes) % ALIGNMENT == 0
        )
        self._map: ChunkMap | None = None
        # Batches may be gathered by several threads: one map, made once (a second one made
        # beside it would be unmapped under a read when it replaced the first)
        self._map_lock = threading.Lock()
        self.uncached_reads = self._direct and can_read_uncached()
        """Whether :meth:`read_into` may bypass the page cache (False once refused)."""
        self._split: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._ids_chunk: tuple[int, np.ndarray] = (-1, np.zeros(0))
        self.cache: BlockCache | None = None

    def _through_zarr(self, name: str, read: Callable[[], T]) -> T:
        """``read()``, a read through zarr-python of the array or file ``name``."""
        return through_zarr(self.remote, f"reading {self.path}/{name}", read)

    def _open_metadata(self) -> None:
        import zarr

        where = self.remote.zarr_store(read_only=True) if self.remote else self.path
        group: Any = zarr.open_group(where, mode="r")
        meta = group.attrs.get("aekit")
        if not isinstance(meta, dict) or not meta.get("complete"):
            raise AekitError(
                f"{self.path} is not a complete aekit store (an ingest did not finish); "
                "delete it and run 'aekit ingest' again."
            )
        if meta["format_version"] > FORMAT_VERSION:
            raise AekitError(
                f"{self.path} has store format {meta['format_version']}, newer than this aekit "
                f"reads ({FORMAT_VERSION}); upgrade aekit."
            )
        self.meta: dict[str, Any] = meta
        self.n = int(meta["n"])
        self.sample_shape = tuple(meta["sample_shape"])
        self.dtype = np.dtype(meta["dtype"])
        self.chunk_rows = int(meta["chunk_rows"])
        self.stats = {k: np.asarray(v) for k, v in meta["stats"].items() if k != "count"}
        self.class_names: list[str] | None = meta.get("class_names")
        self._group = group
        self._x: Any = group["x"]
        self._check_consistent()

    def _as_written(self) -> bool:
        """Whether ``x`` is laid out as aekit writes it: every chunk a file, even all-zero ones
        (a store rewritten with compression may leave those out)."""
        return self._plain_bytes() and self._x.chunks[0] == self.chunk_rows

    def _plain_bytes(self) -> bool:
        return [c.to_dict()["name"] for c in self._x.metadata.codecs] == ["bytes"]

    def _check_consistent(self) -> None:
        """Refuse metadata that disagree with the arrays or the chunk files (an edited ``n``
        would otherwise be read as zero padding: Zarr fills a missing chunk), naming the field."""
        problem = self._shape_problem() or self._column_problem() or self._chunk_problem()
        if problem:
            self._refuse(problem)

    def _shape_problem(self) -> str | None:
        report = self.meta.get("report") or {}
        written = report.get("records_read", self.n) - report.get("skipped_count", 0)
        if written != self.n:
            return f"n says {self.n} samples; its ingest wrote {written}"
        if self._x.shape != (self.n, *self.sample_shape):
            return f"n and sample_shape say {self.n} x {self.sample_shape}; x holds {self._x.shape}"
        if self._x.dtype != self.dtype:
            return f"dtype says {self.dtype}; x holds {self._x.dtype}"
        if self._plain_bytes() and self._x.chunks[0] != self.chunk_rows:  # chunk files read raw
            return f"chunk_rows says {self.chunk_rows}; x is chunked by {self._x.chunks[0]} rows"
        series = self.meta.get("series")
        if series is not None:
            lengths = np.asarray(series.get("lengths", []), dtype=np.int64)
            held = np.asarray(series.get("held_out", []), dtype=np.int64)
            names = series.get("names", [])
            if lengths.sum() != self.n or len(names) != len(lengths) or held.shape != lengths.shape:
                return f"series.lengths add up to {int(lengths.sum())} steps; x holds {self.n}"
            if (lengths <= 0).any() or (held < 0).any() or (held >= lengths).any():
                return "series.lengths and series.held_out must leave each series a training part"
        width = self.sample_shape[-1] if self.sample_shape else 1
        for name, values in self.stats.items():
            if values.shape != (width,) or not np.isfinite(values).all():
                return f"stats.{name} must hold {width} finite numbers; it holds {values.tolist()}"
        return None

    def _column_problem(self) -> str | None:
        for name in ("split", "ids", "y"):
            if name == "y" and "y" not in self._group:
                continue
            if name not in self._group:
                return f"its '{name}' array is missing"
            if self._group[name].shape != (self.n,):
                return f"n says {self.n} samples; {name} holds {self._group[name].shape[0]}"
        if self.class_names is not None and "y" not in self._group:
            return "class_names are given, but the 'y' array of labels is missing"
        return None

    def _chunk_problem(self) -> str | None:
        if self.remote is not None or not self.n or not self._as_written():
            return None
        chunks = Path(self.path) / "x" / "c"
        expected = -(-self.n // self.chunk_rows)
        found = len(list(chunks.iterdir())) if chunks.is_dir() else 0
        if found != expected:
            return f"n says {self.n} samples in {expected} chunks; x/c holds {found}"
        size = self.chunk_rows * self._row_bytes  # every chunk is whole, the last one included
        for path in self.chunk_paths():
            if not path.is_file() or path.stat().st_size != size:
                held = path.stat().st_size if path.is_file() else 0
                return f"the chunk {path} holds {held} bytes, not {size} (truncated)"
        return None

    @property
    def _row_bytes(self) -> int:
        return int(np.prod(self.sample_shape, dtype=np.int64)) * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, n={self.n}, sample_shape={self.sample_shape})"

    def __len__(self) -> int:
        return self.n

    @property
    def split(self) -> np.ndarray:
        if self._split is None:
            split = self._through_zarr("split", lambda: np.asarray(self._group["split"][:]))
            if split.size and (split.min() < TRAIN or split.max() > VALIDATION):
                odd = int(split.max() if split.max() > VALIDATION else split.min())
                self._refuse(f"split holds {odd}; it may hold 0 (train) or 1 (validation) only")
            if self.n and not (split == TRAIN).any():
                self._refuse("split holds no training row (0)")
            self._split = split
        return self._split

    @property
    def labels(self) -> np.ndarray | None:
        if self._labels is None and self._through_zarr("y", lambda: "y" in self._group):
            labels = self._through_zarr("y", lambda: np.asarray(self._group["y"][:]))
            names = self.class_names
            if (
                names is not None
                and labels.size
                and not 0 <= labels.min() <= labels.max() < len(names)
            ):
                self._refuse(
                    f"y holds label codes {int(labels.min())}..{int(labels.max())}; "
                    f"class_names names {len(names)} classes"
                )
            self._labels = labels
        return self._labels

    def _refuse(self, problem: str) -> None:
        raise AekitError(
            f"{self.path}: its metadata do not match its data ({problem}); the store was edited "
            "or damaged: delete it and run 'aekit ingest' again."
        )

    def ids(self, rows: np.ndarray) -> np.ndarray:
        """The source records of ``rows``: text (object array), or int64 record numbers (see
        :func:`aekit.data.records.id_text`, which makes text of either)."""
        rows = np.asarray(rows)
        chunk = int(rows.min()) // self.chunk_rows if len(rows) else 0
        if len(rows) and int(rows.max()) // self.chunk_rows == chunk:
            # Rows of one chunk (every batch of an in-order pass): its ids are read once, not
            # once a batch (decoding a chunk of 1M ids 2,000 times took 30 s of an encode)
            if self._ids_chunk[0] != chunk:
                start = chunk * self.chunk_rows
                stop = start + self.chunk_rows
                block = self._through_zarr("ids", lambda: self._group["ids"][start:stop])
                self._ids_chunk = (chunk, block)
            ids = np.asarray(self._ids_chunk[1][rows - chunk * self.chunk_rows])
        else:
            ids = np.asarray(
                self._through_zarr(
                    "ids", lambda: self._group["ids"].get_orthogonal_selection((rows,))
                )
            )
        return ids if ids.dtype.kind in "iu" else ids.astype(object)

    @property
    def train_index(self) -> np.ndarray:
        return np.flatnonzero(self.split == TRAIN).astype(index_dtype(self.n))

    @property
    def val_index(self) -> np.ndarray:
        return np.flatnonzero(self.split == VALIDATION).astype(index_dtype(self.n))

    @property
    def series(self) -> SeriesLayout | None:
        """Where each series lies and its time split, for a store of series (else None)."""
        meta = self.meta.get("series")
        return None if meta is None else SeriesLayout.from_meta(meta)

    @property
    def report(self) -> dict[str, Any]:
        return dict(self.meta.get("report", {}))

    def read(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Samples at ``rows``, in that order: one vectorised gather from the mapped chunks;
        into ``out`` where given (page-locked memory, say), with no copy in between."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._direct:
            with self._map_lock:
                if self._map is None:
                    self._map = self._map_chunks()
            if out is None:
                return np.take(self._map.array, rows, axis=0)
            if len(rows) and (rows.min() < 0 or rows.max() >= self.n):
                raise IndexError(f"rows outside 0..{self.n - 1} of {self.path}")
            # With rows in range, 'clip' writes into out directly ('raise' buffers it first)
            return np.take(self._map.array, rows, axis=0, out=out, mode="clip")
        if self.remote is not None and self._raw:
            samples = self._read_remote_rows(rows)
        else:
            samples = np.asarray(
                self._through_zarr("x", lambda: self._x.get_orthogonal_selection((rows,)))
            )
        if out is None:
            return samples
        out[...] = samples
        return out

    def read_span(self, start: int, count: int) -> np.ndarray:
        """The ``count`` consecutive samples from ``start`` (the steps of a series' stretch)."""
        return self.read(np.arange(start, start + count))

    def _read_remote_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows from object storage: one request per chunk touched, for just those rows (a
        Zarr read would fetch whole chunks)."""
        assert self.remote is not None
        out = np.empty((len(rows), *self.sample_shape), dtype=self.dtype)
        chunks, firsts = np.divmod(rows, self.chunk_rows)
        for chunk in np.unique(chunks):
            where = np.flatnonzero(chunks == chunk)
            parts = self.remote.read_ranges(
                self._chunk_key(int(chunk)), firsts[where] * self._row_bytes, self._row_bytes
            )
            for i, part in zip(where, parts, strict=True):
                out[i] = np.frombuffer(part, dtype=self.dtype).reshape(self.sample_shape)
        return out

    def transfer_note(self) -> str:
        """What was fetched from object storage so far: bytes, retries, cache hits."""
        assert self.remote is not None, "a local store fetches nothing"
        note = (
            f"object storage: {self.remote.bytes_read / 2**20:.1f} MiB of samples fetched from "
            f"{self.remote.url}, {self.remote.retried} request(s) retried"
        )
        if self.cache is not None:
            note += f", {self.cache.hits} block(s) read from the cache in {self.cache.folder}"
        return note

    def use_cache(self, folder: str | Path, limit_bytes: int) -> None:
        """Keep a local copy of the blocks read from object storage (up to ``limit_bytes``
        under ``folder``) for later epochs; nothing for a local store."""
        if self.remote is not None and self._raw:
            identity = f"{self.remote.url} {self.meta.get('id', self.n)}"
            self.cache = BlockCache(Path(folder), identity, limit_bytes)

    @property
    def nbytes(self) -> int:
        """Bytes of all samples, as they are read into memory."""
        return self.n * self._row_bytes

    def chunk_paths(self) -> list[Path]:
        """The files that hold the samples, one per chunk of ``chunk_rows`` rows, in order."""
        return [self._chunk_path(i) for i in range(-(-self.n // self.chunk_rows))]

    def _chunk_key(self, chunk: int) -> str:
        return "x/c/" + "/".join([str(chunk), *("0" * len(self.sample_shape))])

    def _chunk_path(self, chunk: int) -> Path:
        return Path(self.path) / self._chunk_key(chunk)

    def read_into(self, start: int, out: np.ndarray, *, uncached: bool = False) -> None:
        """Rows ``start:start + len(out)``, all in one chunk, into the C-contiguous ``out``.

        On an uncompressed store this is one sequential read of the chunk file: a cold store is
        read at the disk's streaming speed instead of by one page fault per row, and the read
        releases the GIL while the disk works. ``uncached`` reads past the page cache where the
        file system allows it (:mod:`aekit.data.uncached`), for a store larger than memory.
        """
        chunk, first = divmod(start, self.chunk_rows)
        view = out.reshape(-1).view(np.uint8).data
        if self.remote is not None and self._raw:
            self._read_remote(chunk, first * self._row_bytes, view)
            return
        if not self._direct:
            out[...] = self._through_zarr("x", lambda: self._x[start : start + len(out)])
            return
        if uncached and self.uncached_reads:
            path, offset = self._chunk_path(chunk), first * self._row_bytes
            if read_uncached(path, offset, view):
                return
            self.uncached_reads = False  # refused by the file system: read through the cache
        with open(self._chunk_path(chunk), "rb", buffering=0) as f:
            f.seek(first * self._row_bytes)
            done = 0
            while done < len(view):
                got = f.readinto(view[done:])
                if not got:
                    raise OSError(f"{f.name}: shorter than its chunk")
                done += got

    def _read_remote(self, chunk: int, offset: int, view: memoryview) -> None:
        """A byte range of a chunk on object storage, through the local cache if there is one."""
        assert self.remote is not None
        name = f"{chunk}-{offset}-{len(view)}"
        if self.cache is not None and self.cache.load(name, view):
            return
        self.remote.read_into(self._chunk_key(chunk), offset, view)
        if self.cache is not None:
            self.cache.save(name, view)

    def _map_chunks(self) -> ChunkMap:
        chunk_bytes = self.chunk_rows * self._row_bytes
        return ChunkMap(self.chunk_paths(), chunk_bytes, self.dtype, self.sample_shape, self.n)


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a Zarr group (its ``zarr.json`` exists), as a store is; whether it is
    a complete aekit store is for :class:`Store` to say. For a URL on object storage, a missing
    bucket or denied access raises a :class:`RemoteError` that says so."""
    if is_remote(path):
        return Remote.parse(str(path)).exists("zarr.json")
    return (Path(path) / "zarr.json").is_file()


def exists(path: str | Path) -> bool:
    """Whether anything is at ``path``: a file or folder, or any URL on object storage (opening
    it says what is wrong with it)."""
    return is_remote(path) or Path(path).exists()


def open_store(path: str | Path) -> Store:
    """Open a complete store for reading; refuse anything an ingest did not finish.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import ingest
    >>> _ = ingest(np.zeros((50, 3)), "opened.zarr", progress=False)
    >>> store = open_store("opened.zarr")
    >>> store.n, store.sample_shape, len(store.train_index) + len(store.val_index)
    (50, (3,), 50)
    """
    return Store(path)
