"""What the machine can hold: an allocation (or an output) that cannot fit is refused before it
is made, with a message naming the setting, instead of a failure deep inside torch or NumPy;
and what keeps a long command's memory that of one batch, not of the rows it has seen (C's
heap, which keeps freed memory, is the usual way it grows)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

import numpy as np

from aekit.errors import SettingError


def available_memory() -> int | None:
    """Bytes of memory available to new allocations without swapping (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if hasattr(os, "sysconf"):  # elsewhere: free physical memory, an underestimate
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            pass
    return None


def require_memory(nbytes: float, what: str, fix: str) -> None:
    """Raise :class:`SettingError` when ``nbytes`` exceed the memory available now.

    Available is the least of the machine's available memory and the room left under each limit
    this process runs under (``ulimit -v`` and ``ulimit -d``, a cgroup's memory limit, as in a
    container or a batch job): an allocation past any of them fails as surely as one past the
    machine's memory. ``what`` names the allocation ("a dense model with hidden 3000000000"),
    ``fix`` says which setting to lower. Where nothing can be read, 1 TiB stands in: an
    estimate beyond that is a typo on any machine.
    """
    room = [(available_memory() or 1 << 40, "is available")]
    room += [(left, f"is left under {limit}") for left, limit in memory_limits()]
    available, where = min(room)
    if nbytes > available:
        raise SettingError(
            f"{what} needs about {_size(nbytes)} of memory; {_size(available)} {where}: {fix}."
        )


def memory_limits() -> list[tuple[int, str]]:
    """The room left under each memory limit set on this process, with the limit's name: the
    address-space and data limits (``ulimit -v``, ``ulimit -d``) less what the process maps
    already, and its cgroup's limit less the cgroup's use. Empty where none is set."""
    import resource

    found = []
    status = _proc_status()
    for limit, field, name in (
        (resource.RLIMIT_AS, "VmSize", "the address-space limit ('ulimit -v')"),
        (resource.RLIMIT_DATA, "VmData", "the data-size limit ('ulimit -d')"),
    ):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY and field in status:
            found.append((max(0, soft - status[field]), name))
    cgroup = _cgroup_room()
    if cgroup is not None:
        found.append((cgroup, "this cgroup's memory limit (a container's or a job's)"))
    return found


def _proc_status() -> dict[str, int]:
    """Sizes in bytes from ``/proc/self/status`` (Linux; empty elsewhere)."""
    sizes = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    sizes[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return sizes


# A limit this large is "no limit" (cgroup v1 writes the largest page-aligned 63-bit number)
_UNLIMITED = 1 << 60


def _cgroup_room() -> int | None:
    """Bytes the process's cgroup may still use: v2's ``memory.max`` less ``memory.current``,
    else v1's ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``; None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    v2 = next((line[3:] for line in lines if line.startswith("0::")), None)
    places = [(root / v2.lstrip("/"), "memory.max", "memory.current")] if v2 else []
    places += [(root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for folder, limit_file, use_file in places:
        try:
            limit_text = (folder / limit_file).read_text().strip()
            used = int((folder / use_file).read_text())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= _UNLIMITED:
            continue
        return max(0, int(limit_text) - used)
    return None


def require_disk(nbytes: float, folder: Path, what: str, fix: str) -> None:
    """Raise :class:`SettingError` when ``nbytes`` exceed the free space of the file system that
    holds ``folder``: an output that cannot fit is refused before its first byte, not at ENOSPC
    after minutes of work. A folder whose space cannot be read is let through."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if nbytes > free:
        raise SettingError(
            f"{what} needs about {_size(nbytes)} of disk; {_size(free)} is free in {folder}: {fix}."
        )


def give_back_freed_memory() -> None:
    """Return the pages that C's heap holds free to the system (glibc's ``malloc_trim``; nothing
    elsewhere).

    Called between the phases of a command (after the training epochs, before the early copy's
    medians and the threshold's calibration): the epochs' freed batches stay in the heap
    otherwise, and what comes after adds its own buffers on top of them (60 MB more on a
    200,000 x 784 store, beyond the epochs' own peak).
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


class GrowingArray:
    """Values appended batch by batch into one array that doubles when full: a whole split's
    scores, a few bytes a row, in a memory bounded by the batch.

    Why not a list of per-batch arrays: each of them is a small allocation that C's heap keeps
    between the batch's large freed temporaries. The holes it leaves are then too small for
    the next batch's buffers, so the process grows by kilobytes a row (a calibration took
    6.8 KB per row over 100,000 rows). A buffer that doubles is a few large allocations, made
    and freed outside the heap's holes, and keeps only the rows.

    Examples
    --------
    >>> rows = GrowingArray(np.float32)
    >>> rows.append(np.ones(3)); rows.append(np.zeros(2))
    >>> rows.values().tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0]
    """

    def __init__(self, dtype: np.typing.DTypeLike, tail: tuple[int, ...] = ()) -> None:
        self._data = np.empty((1024, *tail), dtype=dtype)
        self._rows = 0

    def append(self, values: np.ndarray) -> None:
        """Copy ``values`` (rows along axis 0) after the rows already held."""
        end = self._rows + len(values)
        if end > len(self._data):
            rows = max(end, 2 * len(self._data))
            grown = np.empty((rows, *self._data.shape[1:]), self._data.dtype)
            grown[: self._rows] = self._data[: self._rows]
            self._data = grown
        self._data[self._rows : end] = values
        self._rows = end

    def __len__(self) -> int:
        return self._rows

    def values(self) -> np.ndarray:
        """The rows appended so far (a view, valid until the next append)."""
        return self._data[: self._rows]


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    raise AssertionError  # unreachable: the loop returns at "TB"
