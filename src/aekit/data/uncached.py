"""Reads of file ranges that bypass the page cache (``O_DIRECT``), for stores larger than memory.

A store that cannot stay in the page cache gains nothing from passing through it: every block
read evicts an older page (often another program's), and the kernel spends CPU inserting and
evicting pages that are never read again. On the 2-core bench machine that was about a tenth of
a core, taken from the model (``python -m bench cold``). Direct reads move the bytes from the
disk into an aligned buffer of the reading thread, and one copy puts them in place.

``O_DIRECT`` needs offsets, lengths and memory aligned to the device's block size; 4 KiB
suits the file systems in use. Where it is refused (tmpfs, some network file systems,
platforms without it) :func:`read_uncached` returns False and the caller reads normally.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading

ALIGN = 4096

_buffers = threading.local()


def supported() -> bool:
    return hasattr(os, "O_DIRECT") and hasattr(os, "preadv")


def _aligned_buffer(size: int) -> mmap.mmap:
    """This thread's bounce buffer, at least ``size`` bytes (anonymous maps are page-aligned)."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _buffers.buffer = mmap.mmap(-1, size)
    return buffer


def read_uncached(path: str | os.PathLike[str], offset: int, out: memoryview) -> bool:
    """Bytes ``offset:offset + len(out)`` of ``path`` into ``out``, past the page cache.

    Returns False, having read nothing, where the file system refuses direct reads. Each reading
    thread keeps one buffer of the largest range it has read (rounded out to 4 KiB pages).
    """
    start = offset // ALIGN * ALIGN
    stop = -(-(offset + len(out)) // ALIGN) * ALIGN
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    try:
        buffer = memoryview(_aligned_buffer(stop - start))[: stop - start]
        done = 0
        while done < len(buffer):
            try:
                got = os.preadv(fd, [buffer[done:]], start + done)
            except OSError as exc:
                if exc.errno == errno.EINVAL and done == 0:
                    return False
                raise
            done += got
            if not got or got % ALIGN:  # the file's end: its last page is short
                break
    finally:
        os.close(fd)
    skip = offset - start
    if done < skip + len(out):
        raise OSError(f"{path}: shorter than its chunk")
    out[:] = buffer[skip : skip + len(out)]
    return True
