"""Run a producer in a background thread, a bounded number of items ahead of its consumer."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _yield_to_compute() -> None:
    """Give the calling thread the lowest CPU priority (Linux: per thread).

    On a machine whose cores are all busy computing, a reader at normal priority preempts the
    math library's threads, and every parallel region then waits for the one it slowed down:
    measured here, 5 to 7 % of training throughput on 2 cores. At the lowest priority the reader
    fills the gaps the compute threads leave, and it cannot starve: when the consumer waits on
    the queue, its core is free for the reader.
    """
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:  # not permitted in some sandboxes: run at normal priority then
            pass


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield ``items`` while a thread produces up to ``depth`` of them ahead.

    Reading and decoding release the GIL for most of their time, so the next batches are
    prepared while the model computes on the current one. Memory is bounded by ``depth`` items.
    An exception in the producer is raised in the consumer; a consumer that stops early stops
    the producer.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        _yield_to_compute()
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed over to the consumer, which re-raises it
            put(_Failure(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="aekit-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
