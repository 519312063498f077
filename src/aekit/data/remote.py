"""Stores on object storage: S3 and the servers that speak its protocol (MinIO, SeaweedFS, R2),
addressed as ``s3://bucket/prefix/name.zarr``.

Objects are read through obstore, an asynchronous Rust client (on this machine it read small
objects 2-3x faster than s3fs). Where the client, its region, endpoint and credentials come
from: the standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``), else the profile named by
``AWS_PROFILE`` (or ``default``) in ``~/.aws/credentials`` and ``~/.aws/config``. None of them
is ever written anywhere: a store is named by its URL alone.

Requests that fail for a passing reason (a connection refused or reset, a timeout, a 5xx or a
"slow down") are retried with exponential backoff; each retry is logged with the count so far.
A request gives up, retries included, after ``AEKIT_S3_TIMEOUT`` seconds (60 by default): an
endpoint that accepts connections and never answers is reported within that time. Those that
cannot succeed by waiting (a missing bucket, denied access) fail at once with one line that
names the bucket or the variable to check.
"""

from __future__ import annotations

import configparser
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from aekit.errors import DataError

SCHEME = "s3://"
# Retries of a request that failed for a passing reason, and the first wait (doubled each time):
# 0.25 + 0.5 + 1 + 2 + 4 s rides out a server restart or a short network cut, and a server that
# stays away is reported within about 8 s.
RETRIES = 5
FIRST_WAIT = 0.25
# Requests in flight while publishing a store (server-side copies, deletes)
PUBLISH_THREADS = 8
# Seconds a request may take, its retries included (the variable overrides it)
TIMEOUT_VARIABLE = "AEKIT_S3_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
# Words of a client error that mark it as passing: worth waiting for
_PASSING = (
    "error sending request", "connection", "timed out", "timeout", "reset", "broken pipe",
    "500 ", "502 ", "503 ", "504 ", "slowdown", "slow down", "internalerror", "service unavailable",
)  # fmt: skip

log = logging.getLogger("aekit.remote")
T = TypeVar("T")


def is_remote(path: Any) -> bool:
    """Whether ``path`` names a store on object storage (an ``s3://`` URL)."""
    return isinstance(path, str) and path.startswith(SCHEME)


class RemoteError(DataError):
    """Object storage refused or could not be reached: exit 2, one line naming what to check."""


@dataclass
class Remote:
    """A prefix of a bucket: where one store lives.

    Attributes
    ----------
    url : str
        ``s3://bucket/prefix``, without a trailing slash.
    retried : int
        Requests retried so far through this object.
    bytes_read : int
        Bytes of samples fetched from the server (not from a local cache).
    """

    url: str
    bucket: str
    prefix: str
    retried: int = 0
    bytes_read: int = 0
    _client: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def parse(cls, url: str) -> Remote:
        rest = url[len(SCHEME) :].strip("/")
        bucket, _, prefix = rest.partition("/")
        if not bucket or not prefix:
            raise RemoteError(
                f"{url}: a store on object storage is named s3://BUCKET/PATH/NAME.zarr; "
                "give the bucket and a path inside it."
            )
        # Such keys name a different object on each server (or none); refused, not rewritten
        odd = [part for part in prefix.split("/") if part in ("", ".", "..")]
        if odd or not all(c.isprintable() for c in url):
            raise RemoteError(
                f"{url!r}: a store's URL may not hold an empty, '.' or '..' path part, nor a "
                "newline or control character; write the path plainly (s3://BUCKET/PATH/NAME.zarr)."
            )
        return cls(f"{SCHEME}{bucket}/{prefix}", bucket, prefix)

    def sibling(self, name: str) -> Remote:
        """The prefix ``name`` in the same folder as this one."""
        parent = self.prefix.rpartition("/")[0]
        return Remote.parse(f"{SCHEME}{self.bucket}/{parent + '/' if parent else ''}{name}")

    @property
    def name(self) -> str:
        return self.prefix.rpartition("/")[2]

    @property
    def client(self) -> Any:
        """An obstore client of the bucket (keys relative to the bucket, not to the prefix)."""
        if self._client is None:
            self._client = _client(self.bucket)
        return self._client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def zarr_store(self, *, read_only: bool) -> Any:
        """This prefix as a Zarr store."""
        from obstore.store import S3Store
        from zarr.storage import ObjectStore

        client = S3Store(self.bucket, prefix=self.prefix, **_options())
        return ObjectStore(client, read_only=read_only)

    def exists(self, name: str) -> bool:
        """Whether the object ``name`` under this prefix exists. A missing bucket, denied
        access or an endpoint that does not answer raise a :class:`RemoteError` saying so."""
        import obstore

        try:
            self.call(f"reading {self.url}/{name}", obstore.head, self.client, self.key(name))
        except RemoteError as exc:
            if not _not_found(exc.__cause__):
                raise
            # A HEAD request says only "not found"; a listing names a missing bucket
            self.call(
                f"listing {self.url}", obstore.list_with_delimiter, self.client, prefix=self.prefix
            )
            return False
        return True

    def read_into(self, name: str, offset: int, out: memoryview) -> None:
        """Bytes ``offset:offset + len(out)`` of the object ``name`` into ``out``."""
        import obstore

        what = f"reading {self.url}/{name}"
        got = self.call(
            what, obstore.get_range, self.client, self.key(name), start=offset, length=len(out)
        )
        if len(got) != len(out):
            raise RemoteError(f"{self.url}/{name}: shorter than its chunk; ingest it again.")
        out[:] = memoryview(got)
        with self._lock:
            self.bytes_read += len(out)

    def read_ranges(self, name: str, starts: np.ndarray, length: int) -> list[Any]:
        """Ranges of ``length`` bytes of the object ``name`` from each of ``starts`` (nearby
        ranges are fetched by one request)."""
        import obstore

        firsts = [int(s) for s in starts]
        ends = [s + length for s in firsts]
        what = f"reading {self.url}/{name}"
        parts = self.call(
            what, obstore.get_ranges, self.client, self.key(name), starts=firsts, ends=ends
        )
        with self._lock:
            self.bytes_read += length * len(starts)
        return list(parts)

    def keys(self) -> list[str]:
        """Keys (bucket-relative) of every object under this prefix."""
        return [meta["path"] for meta in self._objects()]

    def size(self) -> int:
        """Bytes of every object under this prefix."""
        return sum(int(meta["size"]) for meta in self._objects())

    def _objects(self) -> list[Any]:
        import obstore

        def listing() -> list[Any]:
            return list(obstore.list(self.client, prefix=self.prefix + "/").collect())

        return self.call(f"listing {self.url}", listing)

    def check_writable_destination(self) -> None:
        """Refuse a destination that holds a store, or whose bucket cannot be used."""
        if self.exists("zarr.json"):
            raise RemoteError(
                f"{self.url} already exists; remove it (e.g. 'aws s3 rm --recursive {self.url}') "
                "or choose another store path."
            )

    def publish_to(self, dest: Remote) -> None:
        """Copy every object of this (temporary) prefix to ``dest``, the root ``zarr.json`` last,
        then delete this prefix: ``dest`` opens as a store only once all of it is there."""
        import obstore

        keys = self.keys()
        root = self.key("zarr.json")
        data = [k for k in keys if k != root]

        def copy(key: str) -> None:
            target = dest.key(key[len(self.prefix) + 1 :])
            self.call(f"writing {dest.url}", obstore.copy, self.client, key, target)

        with ThreadPoolExecutor(PUBLISH_THREADS) as pool:
            list(pool.map(copy, data))
        # Another writer that held no lock (the Python API on two machines) may have published
        # meanwhile: refused rather than silently replaced
        dest.check_writable_destination()
        copy(root)
        self.delete_all(keys)

    def delete_all(self, keys: list[str] | None = None) -> None:
        """Delete every object under this prefix (or ``keys``)."""
        import obstore

        keys = self.keys() if keys is None else keys
        for start in range(0, len(keys), 1000):
            part = keys[start : start + 1000]
            self.call(f"deleting {self.url}", obstore.delete, self.client, part)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried with backoff while a request fails for a passing
        reason; a request that fails for good becomes a :class:`RemoteError` naming what to
        check. Anything else ``fn`` raises (a refusal of its own, a file it cannot parse)
        passes through as it is."""
        from obstore.exceptions import BaseError

        deadline = time.monotonic() + timeout()
        for attempt in range(RETRIES + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not isinstance(exc, (BaseError, OSError)):
                    raise
                late = time.monotonic() + FIRST_WAIT * 2**attempt > deadline
                if not _passing(exc) or attempt == RETRIES or late:
                    raise RemoteError(_explain(exc, what, self, attempt)) from exc
                with self._lock:
                    self.retried += 1
                    count = self.retried
                wait = FIRST_WAIT * 2**attempt
                log.warning(
                    "%s: %s; retry %d of %d in %.2g s (%d retries so far)",
                    what, _first_line(exc), attempt + 1, RETRIES, wait, count,
                )  # fmt: skip
                time.sleep(wait)
        raise AssertionError("unreachable")


def temporary_sibling(dest: Remote) -> Remote:
    """A hidden, unique prefix beside ``dest`` to write a store to before publishing it."""
    return dest.sibling(f".{dest.name}.partial-{uuid.uuid4().hex[:8]}")


def timeout() -> float:
    """Seconds a request may take, retries included: ``AEKIT_S3_TIMEOUT``, else 60."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise RemoteError(
            f"{TIMEOUT_VARIABLE}={text!r}: give the seconds a request to object storage may "
            "take, a positive number (60 by default)."
        )
    return seconds


def _client(bucket: str) -> Any:
    from obstore.store import S3Store

    return S3Store(bucket, **_options())


def _options() -> dict[str, Any]:
    """The client's settings: the standard variables (read by obstore itself), else a profile;
    plain http allowed only where the endpoint asks for it (a local server)."""
    config = {} if os.environ.get("AWS_ACCESS_KEY_ID") else _profile()
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or config.get("endpoint", "")
    return {
        "config": config,
        "client_options": {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": f"{round(min(5.0, timeout()) * 1000)}ms",
            "timeout": f"{round(timeout() * 1000)}ms",
        },
        # Retries are ours (see Remote.call), so that they are counted and logged
        "retry_config": {
            "max_retries": 0,
            "backoff": {
                "init_backoff": timedelta(seconds=FIRST_WAIT),
                "max_backoff": timedelta(seconds=8),
                "base": 2,
            },
            "retry_timeout": timedelta(seconds=timeout()),
        },
    }


def _profile() -> dict[str, str]:
    """Credentials, region and endpoint of the profile ``AWS_PROFILE`` (or ``default``) from
    ``~/.aws/credentials`` and ``~/.aws/config``; empty where there is none."""
    name = os.environ.get("AWS_PROFILE", "default")
    home = Path.home() / ".aws"
    credentials = configparser.ConfigParser()
    credentials.read(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", home / "credentials"))
    settings = configparser.ConfigParser()
    settings.read(os.environ.get("AWS_CONFIG_FILE", home / "config"))
    section = name if name == "default" else f"profile {name}"
    found: dict[str, str] = {}
    wanted = {
        "aws_access_key_id": "access_key_id",
        "aws_secret_access_key": "secret_access_key",
        "aws_session_token": "token",
        "region": "region",
        "endpoint_url": "endpoint",
    }
    for parser, sect in ((credentials, name), (settings, section)):
        if parser.has_section(sect):
            for key, option in wanted.items():
                if parser.has_option(sect, key) and option not in found:
                    found[option] = parser.get(sect, key)
    return found


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0][:300]


def _passing(exc: BaseException) -> bool:
    """Whether a failed request may succeed if sent again: a network or server trouble, not a
    refusal (the client's message goes on with a debug dump, so only its first line counts)."""
    from obstore.exceptions import GenericError, PermissionDeniedError

    if _not_found(exc) or isinstance(exc, PermissionDeniedError):
        return False
    text = _first_line(exc).lower()
    return isinstance(exc, (GenericError, OSError)) and any(word in text for word in _PASSING)


def _not_found(exc: BaseException | None) -> bool:
    from obstore.exceptions import NotFoundError

    # obstore raises Python's own FileNotFoundError for a 404
    return isinstance(exc, (NotFoundError, FileNotFoundError))


def _no_bucket(exc: BaseException) -> bool:
    return "nosuchbucket" in str(exc).lower()


def _explain(exc: BaseException, what: str, remote: Remote, attempt: int) -> str:
    """One line for a failed request: what was being done, and what the user should check."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the default S3 endpoint"
    if _no_bucket(exc):
        return (
            f"{what}: the bucket '{remote.bucket}' does not exist at {endpoint}; create it or "
            "check the URL."
        )
    line = _first_line(exc).lower()
    denied = any(w in line for w in ("403 forbidden", "accessdenied", "invalidaccesskeyid"))
    if denied or isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
        # S3 answers "denied" also for a bucket that does not exist, to whom may not list it
        return (
            f"{what}: access to bucket '{remote.bucket}' at {endpoint} denied (wrong "
            "credentials, or no such bucket); check the bucket's name and AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)."
        )
    if _not_found(exc):
        return f"{what}: no such object; check the URL."
    if _passing(exc):
        return (
            f"{what}: {endpoint} did not answer after {attempt} retries ({_first_line(exc)}); "
            "check AWS_ENDPOINT_URL and that the server is up, then run again (a run resumes "
            f"with --resume); {TIMEOUT_VARIABLE} sets the seconds to wait ({timeout():g} now)."
        )
    return f"{what}: {_first_line(exc)}"
