"""The one way aekit publishes a file or a folder: written under a hidden temporary name beside
its destination, renamed when complete.

A rename within one folder is atomic, so a reader sees either the previous file or the whole new
one, never half of it; a process killed while writing leaves at most a hidden partial, never a
destination that opens. Every writer of the package (stores, outputs, checkpoints, the run
folder's files) goes through :func:`partial_name` and :func:`published`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_name(path: str | Path) -> Path:
    """A hidden, unique name beside ``path`` to write to before renaming it to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")


def remove(path: Path) -> None:
    """Remove a partial file or folder, whichever it is; nothing if it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def published(path: str | Path, *, sync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``path``, on failure remove it.

    ``sync`` flushes a written file to the disk before the rename, so that after a crash of the
    machine (not only of the process) the destination holds the old or the new content.

    Examples
    --------
    >>> with published("summary.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    tmp = partial_name(path)
    try:
        yield tmp
        if sync and tmp.is_file():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    """Publish ``text`` as the whole content of ``path``."""
    with published(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | Path, data: bytes | memoryview, *, sync: bool = False) -> None:
    """Publish ``data`` as the whole content of ``path``."""
    with published(path, sync=sync) as tmp:
        tmp.write_bytes(data)
