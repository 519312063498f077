"""The one way aekit publishes a file or a folder: written under a hidden temporary name beside
its destination, renamed when complete.

A rename within one folder is atomic, so a reader sees either the previous file or the whole new
one, never half of it; a process killed while writing leaves at most a hidden partial, never a
destination that opens. Every writer of the package (stores, outputs, checkpoints, the run
folder's files) goes through :func:`partial_name` and :func:`published`.

A command that writes a destination holds :func:`exclusive` on it for its whole length: a second
writer is refused, and partials that a stopped writer left beside it are removed.

Nothing beside a destination is followed blindly: the lock and every file aekit appends to are
opened without following a symbolic link (:func:`open_text`), so that a link planted at a
companion's name cannot make aekit write to a file elsewhere.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aekit.errors import AekitError


def partial_name(path: str | Path) -> Path:
    """A hidden, unique name beside ``path`` to write to before renaming it to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")


def taken(path: str | Path) -> bool:
    """Whether anything is at ``path``: a file, a folder or a symbolic link, a link that leads
    nowhere or round in a loop included (which ``Path.exists`` calls absent)."""
    path = Path(path)
    return path.is_symlink() or path.exists()


def open_text(path: str | Path, mode: str) -> Any:
    """``path`` opened as text for writing (``'w'``) or appending (``'a'``), never through a
    symbolic link at ``path``: a link there is refused (exit 2) and its target left alone."""
    flags = {"w": os.O_TRUNC, "a": os.O_APPEND}[mode] | os.O_WRONLY | os.O_CREAT
    return os.fdopen(_open_own(Path(path), flags), mode, newline="")


def _open_own(path: Path, flags: int) -> int:
    """``os.open`` of a file of aekit's own at ``path``, refusing a symbolic link there."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise AekitError(
                f"{path} is a symbolic link; aekit writes its own files there and follows no "
                "link: remove it, or choose another destination."
            ) from None
        raise


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
    >>> with published("summary.json") as tmp:
    ...     _ = tmp.write_text("{}")
    >>> Path("summary.json").read_text()
    '{}'
    """
    path = Path(path)
    tmp = partial_name(path)
    try:
        with naming(path, tmp):
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


@contextmanager
def naming(path: str | Path, partial: str | Path | None = None) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block (a full disk, say) with ``path``, the destination,
    as its file name, where it named none or only the hidden ``partial``."""
    try:
        yield
    except OSError as exc:
        if exc.filename in (None, str(partial)):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_text(path: str | Path, text: str) -> None:
    """Publish ``text`` as the whole content of ``path``."""
    with published(path) as tmp, open(tmp, "x") as f:  # a new partial: exclusively
        f.write(text)


def write_bytes(path: str | Path, data: bytes | memoryview, *, sync: bool = False) -> None:
    """Publish ``data`` as the whole content of ``path``."""
    with published(path, sync=sync) as tmp, open(tmp, "xb") as f:
        f.write(data)


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold the destination ``path`` for this process for the block.

    The lock is ``.NAME.lock`` beside ``path``, held with ``flock``: a second process asking for
    it is refused with an error naming the holder's PID, and a lock whose process died is free
    again (the kernel drops it with the process). Once the lock is held, no other writer is
    alive, so the hidden partials beside ``path`` (and inside it, for a folder) are left over
    from a stopped one: they are removed, and the removal is reported.
    """
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    fd = _locked(lock, path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _remove_stale_partials(path)
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still held: the next writer makes a fresh one
        os.close(fd)


# A holder that was just killed keeps its lock until the kernel has finished it off: a command
# restarted at once after a crash waits this long for it rather than being refused
_GRACE_SECONDS = 3.0


def _locked(lock: Path, path: Path) -> int:
    deadline = time.monotonic() + _GRACE_SECONDS
    while True:
        # A lock left by a dead holder is taken over (no O_EXCL); a link there is refused
        fd = _open_own(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise AekitError(
                f"{path} is being written by another aekit process (PID {holder}); wait for it "
                "to finish, or stop it, or choose another destination."
            ) from None
        try:  # its last holder may have removed the file between our open and our lock
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_stale_partials(path: Path) -> None:
    # Names matched literally: a '*', '?' or '[' in the destination's name is no pattern
    prefix = f".{path.name}.partial-"
    stale = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    if path.is_dir():
        stale += path.rglob(".*.partial-*")
    if not stale:
        return
    size = sum(_size(p) for p in stale)
    for partial in stale:
        remove(partial)
    print(
        f"aekit: removed {len(stale)} partial file(s) of {path} ({size / 1e6:.1f} MB) that a "
        "stopped command left",
        file=sys.stderr,
    )


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
