"""One writer per destination on object storage, as :func:`aekit.atomic.exclusive` is on disk.

S3 has no ``flock``; what it has is a conditional write. The lock is the object ``.NAME.lock``
beside the destination, created with ``If-None-Match: *``: of two commands that create it at
once, exactly one succeeds (the SeaweedFS the tests run honours this under 16 concurrent
writers; the pinned version is the one checked). Its content names the holder (host and PID).

A holder that was killed cannot remove its lock. A lock whose holder ran on this machine and is
gone is taken over with ``If-Match`` on the lock's ETag, so that of two commands taking it over
at once only one wins. A lock held from another machine cannot be checked from here: the
command is refused, naming the lock object to remove if that machine's command is gone.

Once the lock is held, the hidden ``.NAME.partial-*`` prefixes beside the destination belong to
stopped commands: they are deleted, and the deletion is reported, as on disk.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aekit.data.remote import SCHEME, Remote, RemoteError


@contextmanager
def remote_exclusive(dest: Remote) -> Iterator[None]:
    """Hold the store URL ``dest`` for this process for the block."""
    lock = dest.sibling(f".{dest.name}.lock")
    _take(lock, dest)
    try:
        _remove_stale_partials(dest)
        yield
    finally:
        _release(lock)


def _holder() -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()


def _take(lock: Remote, dest: Remote) -> None:
    import obstore
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    def put(mode: Any) -> bool:
        try:
            obstore.put(lock.client, lock.prefix, _holder(), mode=mode)
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    if lock.call(f"writing {lock.url}", put, "create"):
        return
    # One request gives the holder and the ETag that a takeover must still find
    got = lock.call(f"reading {lock.url}", obstore.get, lock.client, lock.prefix)
    meta = got.meta
    holder = _parse(bytes(got.bytes()))
    here = holder.get("host") == socket.gethostname()
    if here and not _alive(holder.get("pid")):
        # Taken over only if nobody else took it over meanwhile (the ETag is unchanged)
        if lock.call(f"writing {lock.url}", put, {"e_tag": meta["e_tag"]}):
            return
        holder = {}
    who = f"PID {holder.get('pid', 'unknown')} on {holder.get('host', 'another machine')}"
    raise RemoteError(
        f"{dest.url} is being written by another aekit process ({who}); wait for it to finish, "
        f"or stop it; if it is gone, remove {lock.url} (e.g. 'aws s3 rm {lock.url}')."
    )


def _parse(content: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(content)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _release(lock: Remote) -> None:
    import obstore

    try:
        lock.call(f"deleting {lock.url}", obstore.delete, lock.client, lock.prefix)
    except RemoteError:  # unreachable now: the next command on this machine takes it over
        pass


def _remove_stale_partials(dest: Remote) -> None:
    import obstore

    parent = dest.prefix.rpartition("/")[0]
    # Names matched literally: a listing's prefix is a folder's, so the folder is listed and
    # the partials' names compared as text, no pattern
    own = f".{dest.name}.partial-"

    def listing() -> list[str]:
        found = obstore.list_with_delimiter(dest.client, prefix=parent or None)
        return [p for p in found["common_prefixes"] if p.rpartition("/")[2].startswith(own)]

    found = dest.call(f"listing {dest.url}", listing)
    stale = [Remote.parse(f"{SCHEME}{dest.bucket}/{p}") for p in found]
    if not stale:
        return
    size = 0
    for partial in stale:
        size += partial.size()
        partial.delete_all()
    print(
        f"aekit: removed {len(stale)} partial store(s) of {dest.url} ({size / 1e6:.1f} MB) that "
        "a stopped command left",
        file=sys.stderr,
    )
