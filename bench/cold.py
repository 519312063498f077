"""Training from a store that is not in the page cache, against the disk's sequential speed.

Dense 784-128-784 autoencoder, batch 256, float32 store of N x 784 (default 2,000,000: 6 GB)
under bench/data/. Cold means the store's chunk files are dropped from the page cache before a
measurement and, while it runs, every second by a background thread (posix_fadvise DONTNEED:
no root needed), as if the store were much larger than memory. Measured in one run:

- the disk's sequential read bandwidth of the chunk files (cold, 6 files at once), past the page
  cache (the figure the read side is set against) and through it;
- the read side alone (batches without the model) in block order, cold through the page cache
  and cold past it (O_DIRECT, what aekit does for a store larger than memory), against the
  sequential bandwidth; the global order on a store read for the first time (dropped once),
  with and without its page-cache warm-up;
- training samples/s in block order: warm (every file cached), cold through the page cache
  and cold past it, alternating in rounds; with --large-rows, also a store larger than RAM
  read with aekit's defaults;
- with --hog, the training sides again beside ``yes > /dev/null`` on every core;
- the class mix of both orders on the store seen as sorted by class (10 classes).

Run: python -m bench cold [--rows 2000000] [--store PATH] [--large-rows 11500000]
     [--seconds 60] [--rounds 4] [--hog] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from aekit.data.blockread import IO_THREADS
from aekit.data.quality import class_mix_distance, random_batch_distance
from aekit.data.store import Store, open_store
from aekit.data.stream import StoreBatches
from aekit.data.uncached import read_uncached
from aekit.training.threads import choose_threads, step_flops
from bench.common import TrainStep, dense_model, feature_store

BATCH = 256
SKIP = 5  # batches left out of the timing: the model's and the reader's first steps


def drop_cache(paths: list[Path]) -> None:
    """Evict the files' clean pages from the page cache."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class KeepCold:
    """Drop ``paths`` from the page cache every second while the ``with`` block runs."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            drop_cache(self.paths)

    def __enter__(self) -> KeepCold:
        drop_cache(self.paths)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sequential_bandwidth(
    paths: list[Path], seconds: float, cold: bool = True, direct: bool = False
) -> float:
    """Bytes/s reading whole files in order, 4 MiB at a time, for at most ``seconds``.

    IO_THREADS files are read at once, as many reads in flight as the block reader keeps: one
    stream alone leaves a virtual disk's queue half empty and would understate what it gives.
    ``direct`` reads past the page cache, which costs the kernel less CPU per byte.
    """
    if cold:
        drop_cache(paths)
    started = time.perf_counter()

    def read_file(path: Path) -> int:
        if time.perf_counter() - started > seconds:
            return 0
        if direct:
            size = path.stat().st_size
            for offset in range(0, size, 4 << 20):
                chunk = memoryview(bytearray(min(4 << 20, size - offset)))
                if not read_uncached(path, offset, chunk):
                    raise SystemExit(f"{path}: the file system refuses direct reads")
            return size
        buffer, total = bytearray(4 << 20), 0
        with open(path, "rb", buffering=0) as f:
            while got := f.readinto(buffer):
                total += got
        return total

    with ThreadPoolExecutor(IO_THREADS) as pool:
        total = sum(pool.map(read_file, paths))
    return total / (time.perf_counter() - started)


def _timed(batches: Iterator[torch.Tensor], step, seconds: float) -> float:
    """Samples/s of ``step`` over ``batches`` after the first SKIP, for at most ``seconds``."""
    samples, started = 0, None
    for i, x in enumerate(batches):
        if i == SKIP:
            samples, started = 0, time.perf_counter()
        step(x)
        samples += len(x)
        if started is not None and time.perf_counter() - started > seconds:
            break
    if started is None:
        raise SystemExit(f"the store is too small to time: fewer than {SKIP} batches")
    return samples / (time.perf_counter() - started)


def read_rate(stream: StoreBatches, seconds: float) -> float:
    return _timed(iter(stream.batches(0)), lambda x: None, seconds)


# How each side of a round reads: (page_cache argument of the stream, kept out of the cache)
SIDES = {
    "warm": (True, False),  # every file cached: the page cache at its best
    "cold": (True, True),  # through the page cache, as a buffered reader of a large store does
    "uncached": (False, True),  # past the page cache, as aekit reads a store larger than memory
}


def warm_cold_pair(
    store: Store, seconds: float, rounds: int = 4, large: Store | None = None
) -> dict:
    """Block-order training samples/s with the store cached, and kept out of the cache.

    This machine's speed drifts by tens of percent, so one warm run followed by one cold run
    can give any ratio. The sides alternate instead, in rounds of opposite order (warm, cold,
    uncached, then the reverse, ...), on one model; each figure is the median of the rounds'
    ratios to warm. ``large``, a store larger than memory, is read with aekit's defaults (auto
    order, auto page cache) as a fourth side.
    """
    paths = store.chunk_paths()
    train = TrainStep(dense_model(store))
    sides = [*SIDES, *(["large"] if large is not None else [])]
    rates: dict[str, list[float]] = {side: [] for side in sides}
    epoch = 0
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            epoch += 1  # a fresh epoch each time: other blocks in other windows
            if side == "large":
                assert large is not None
                stream = StoreBatches(large, large.train_index, BATCH, seed=0)
                if r == 0:
                    print(f"    large store: {stream.order_choice}")
                cold = False  # larger than memory: nothing to keep out
            else:
                page_cache, cold = SIDES[side]
                stream = StoreBatches(
                    store, store.train_index, BATCH, 0, order="block", page_cache=page_cache
                )
            batches = stream.batches(epoch)
            if side == "warm":
                sequential_bandwidth(paths, float("inf"), cold=False)  # everything cached
            with KeepCold(paths) if cold else contextlib.nullcontext():
                rates[side].append(_timed(batches, lambda x: train.run(iter([x]), 1), seconds))
            batches.close()
    ratios = {
        side: [v / w for v, w in zip(rates[side], rates["warm"], strict=True)] for side in sides[1:]
    }
    medians = {side: float(np.median(q)) for side, q in ratios.items()}
    for side in sides:
        print(f"    {side:>8}: samples/s by round {', '.join(f'{v:,.0f}' for v in rates[side])}")
    for side, q in ratios.items():
        rounds_text = ", ".join(f"{v:.2f}" for v in q)
        print(f"    {side}/warm: median {medians[side]:.3f} (rounds {rounds_text})")
    return {"rates": rates, "ratios": ratios, "over_warm": medians}


def class_mix(store: Store) -> dict:
    """Class mix of both orders, the store's rows taken as sorted into 10 equal classes."""
    labels = np.arange(store.n) * 10 // store.n
    index = store.train_index
    freq = np.bincount(labels[index], minlength=10) / len(index)
    out: dict = {"random_batch": random_batch_distance(freq, BATCH)}
    for order in ("global", "block"):
        stream = StoreBatches(store, index, BATCH, seed=0, order=order)
        rows = stream.rows(0)
        out[order] = class_mix_distance(np.array_split(labels[rows], len(stream)), 10)
        if order == "block":
            out["block_expected"] = random_batch_distance(freq, BATCH, stream.window)
    out["unshuffled"] = class_mix_distance(np.array_split(labels[index], len(stream)), 10)
    print(
        "  class mix (mean total variation of a batch's 10 classes from the store's): "
        + ", ".join(f"{k} {v:.3f}" for k, v in out.items())
    )
    return out


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench cold")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--store", help="an existing store to measure instead")
    parser.add_argument(
        "--large-rows", type=int, default=0, help="also a store of this many rows (larger than RAM)"
    )
    parser.add_argument("--seconds", type=float, default=60, help="limit of each measurement")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the training sides")
    parser.add_argument("--hog", action="store_true", help="also beside yes x nproc")
    parser.add_argument(
        "--threads", default="auto", help="torch's intra-op threads, or auto (aekit's choice)"
    )
    args = parser.parse_args(argv)

    store = open_store(args.store) if args.store else feature_store(args.rows)
    large = feature_store(args.large_rows) if args.large_rows else None
    paths = store.chunk_paths()
    print(f"  {store.n:,} rows, {store.nbytes / 2**30:.2f} GiB, {len(paths)} chunk files")
    threads = use_threads(args.threads, store)
    row_bytes = store.nbytes / store.n
    buffered = sequential_bandwidth(paths, args.seconds)
    seq = sequential_bandwidth(paths, args.seconds, direct=True)
    print(
        f"  sequential read, cold, 6 files at once: {seq / 2**20:,.0f} MiB/s past the page cache "
        f"({seq / row_bytes:,.0f} samples/s), {buffered / 2**20:,.0f} MiB/s through it"
    )

    reads = {}
    for side in ("cold", "uncached"):
        block = StoreBatches(
            store, store.train_index, BATCH, 0, order="block", page_cache=SIDES[side][0]
        )
        with KeepCold(paths):
            reads[f"block_{side}"] = read_rate(block, args.seconds)
    if large is not None:
        reads["large"] = read_rate(StoreBatches(large, large.train_index, BATCH, 0), args.seconds)
    # The global order maps the store's files; its own store object, dropped afterwards, keeps
    # those maps from outliving it: pages mapped by a process cannot be dropped from the cache,
    # and KeepCold would spend the rest of the run walking them (it did, costing cold sides 20 %)
    mapped = open_store(store.path)
    for warm in (False, True):
        stream = StoreBatches(mapped, mapped.train_index, BATCH, 0, order="global", warm=warm)
        # A store that fits in memory, read for the first time: dropped once, not kept out
        drop_cache(paths)
        reads["global_with_warm_up" if warm else "global_without_warm_up"] = read_rate(
            stream, args.seconds
        )
    del stream, mapped
    gc.collect()
    over_seq = {k: v * row_bytes / seq for k, v in reads.items()}
    print(
        "  read side alone, samples/s (share of sequential): "
        + "; ".join(f"{k} {v:,.0f} ({over_seq[k]:.3f})" for k, v in reads.items())
    )
    result = {
        "rows": store.n,
        "large_rows": args.large_rows,
        "seconds": args.seconds,
        "threads": threads,
        "sequential_bytes_per_s": seq,
        "sequential_buffered_bytes_per_s": buffered,
        "reads": reads,
        "reads_over_sequential": over_seq,
        "training": warm_cold_pair(store, args.seconds, args.rounds, large),
    }
    if args.hog:
        result["training_beside_hog"] = _beside_hog(store, args.seconds, args.rounds, args.threads)
    result["class_mix"] = class_mix(store)
    print(
        "training throughput against warm, block order: "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["training"]["over_warm"].items())
    )
    return result


def use_threads(threads: str, store: Store) -> int:
    """Set torch's threads: a count, or ``auto`` as aekit would choose them now."""
    n, why, _ = choose_threads(
        "auto" if threads == "auto" else int(threads),
        step_flops(dense_model(store), tuple(store.sample_shape), BATCH),
    )
    torch.set_num_threads(n)
    print(f"  compute: {why}")
    return n


def _beside_hog(store: Store, seconds: float, rounds: int, threads: str) -> dict:
    hogs = []
    try:
        for _ in range(os.cpu_count() or 1):
            hogs.append(subprocess.Popen(["yes"], stdout=subprocess.DEVNULL))
        print(f"  beside {len(hogs)} x yes > /dev/null:")
        time.sleep(1)  # the hogs running before the free cores are counted
        return {"threads": use_threads(threads, store), **warm_cold_pair(store, seconds, rounds)}
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
