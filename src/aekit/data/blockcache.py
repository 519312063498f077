"""A bounded local copy of the blocks read from a remote store, so that later epochs read them
from a local disk instead of the network.

Blocks are cached whole, one file each, under a folder named after the store's URL and identity
(a store ingested again under the same URL gets a new folder). The cache fills until it holds
``limit`` bytes and then keeps what it has: in a shuffled epoch every block is as likely to be
read as any other, so evicting one to hold another would cost a write and gain nothing. A store
larger than the cache is thus served partly from it, in proportion to its size.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from aekit.atomic import write_bytes


class BlockCache:
    """Blocks of one store under ``folder``, at most ``limit`` bytes of them.

    Parameters
    ----------
    root : Path
        The cache folder shared by all stores (``data.cache_dir``).
    identity : str
        What names the store: its URL and its ingest's id.
    limit : int
        Bytes the cache may hold for this store.
    """

    def __init__(self, root: Path, identity: str, limit: int) -> None:
        self.folder = Path(root) / hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self.used = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        self.hits = 0
        self._lock = threading.Lock()

    def load(self, name: str, out: memoryview) -> bool:
        """Fill ``out`` with the cached block ``name``; False when it is not cached."""
        try:
            with open(self.folder / name, "rb", buffering=0) as f:
                got = f.readinto(out)
        except FileNotFoundError:
            return False
        if got != len(out):  # not this block: a cache written with other block sizes
            return False
        with self._lock:
            self.hits += 1
        return True

    def save(self, name: str, data: memoryview) -> None:
        """Keep the block ``name`` while there is room (written whole, then renamed)."""
        with self._lock:
            if self.used + len(data) > self.limit:
                return
            self.used += len(data)
        write_bytes(self.folder / name, data)
