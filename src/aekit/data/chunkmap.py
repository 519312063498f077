"""One contiguous, read-only view of many uncompressed chunk files, through memory maps.

A store's samples live in one file per chunk. Mapping each file at consecutive addresses of a
reserved address range makes them one array again, so a batch of scattered rows is gathered by
a single ``numpy.take`` (no Python per chunk or per sample) straight from the page cache. The
mapped pages are file-backed: they count as page cache, not as the process's anonymous memory,
and they do not count against ``ulimit -d``.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Chunks must start on page boundaries; 64 KiB is a multiple of every common page size.
ALIGNMENT = 1 << 16
_MAP_FIXED = 0x10  # the same value on Linux and macOS; the mmap module does not export it
_MAP_FAILED = ctypes.c_void_p(-1).value


def supported() -> bool:
    return sys.platform.startswith(("linux", "darwin")) and mmap.PAGESIZE <= ALIGNMENT


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.restype = ctypes.c_int
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


class ChunkMap:
    """The chunk files ``paths``, each ``chunk_bytes`` long, as one read-only array.

    Parameters
    ----------
    paths : sequence of path
        Chunk files in order; every one exactly ``chunk_bytes`` long.
    chunk_bytes : int
        A multiple of :data:`ALIGNMENT`.
    dtype, row_shape : the array's element type and the shape of one row
    n_rows : int
        Rows in use (the last chunk may be padded beyond them).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        chunk_bytes: int,
        dtype: np.dtype,
        row_shape: tuple[int, ...],
        n_rows: int,
    ) -> None:
        if chunk_bytes % ALIGNMENT:
            raise ValueError(f"chunk size {chunk_bytes} is not a multiple of {ALIGNMENT}")
        self._libc = _libc()
        self._total = chunk_bytes * len(paths)
        anonymous = getattr(mmap, "MAP_ANONYMOUS", getattr(mmap, "MAP_ANON", 0x20))
        # Reserve the address range (PROT_NONE = 0): no access, no memory committed
        base = self._libc.mmap(None, self._total, 0, mmap.MAP_PRIVATE | anonymous, -1, 0)
        if base in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), "cannot reserve address space for the store")
        self._base = base
        try:
            for i, path in enumerate(paths):
                fd = os.open(path, os.O_RDONLY)
                try:
                    if os.fstat(fd).st_size != chunk_bytes:
                        raise OSError(f"{path}: expected {chunk_bytes} bytes")
                    addr = self._libc.mmap(
                        base + i * chunk_bytes,
                        chunk_bytes,
                        mmap.PROT_READ,
                        mmap.MAP_SHARED | _MAP_FIXED,
                        fd,
                        0,
                    )
                    if addr in (None, _MAP_FAILED):
                        raise OSError(ctypes.get_errno(), f"cannot map {path}")
                finally:
                    os.close(fd)  # the mapping keeps the file's pages; no descriptor stays open
        except BaseException:
            self.close()
            raise
        buffer = (ctypes.c_char * self._total).from_address(base)
        rows = np.frombuffer(memoryview(buffer), dtype=dtype).reshape(-1, *row_shape)[:n_rows]
        rows.flags.writeable = False
        self.array = rows

    def close(self) -> None:
        # Only called when nothing can use ``array`` any more: at garbage collection, or when
        # construction failed before ``array`` existed.
        if getattr(self, "_base", None):
            self._libc.munmap(self._base, self._total)
            self._base = None

    def __del__(self) -> None:
        self.close()
