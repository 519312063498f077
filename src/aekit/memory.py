"""What the machine can hold: an allocation (or an output) that cannot fit is refused before it
is made, with a message naming the setting, instead of a failure deep inside torch or NumPy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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

    ``what`` names the allocation ("a dense model with hidden 3000000000"), ``fix`` says which
    setting to lower. Where the available memory cannot be read, 1 TiB stands in for it: an
    estimate beyond that is a typo on any machine.
    """
    available = available_memory() or 1 << 40
    if nbytes > available:
        raise SettingError(
            f"{what} needs about {_size(nbytes)} of memory; {_size(available)} is available: {fix}."
        )


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


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    raise AssertionError  # unreachable: the loop returns at "TB"
