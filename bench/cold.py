"""Training from a store that is not in the page cache, against the disk's sequential speed.

Dense 784-128-784 autoencoder, batch 256, float32 store of N x 784 (default 2,000,000: 6 GB)
under bench/data/. Cold means the store's chunk files are dropped from the page cache before a
measurement and, while it runs, every second by a background thread (posix_fadvise DONTNEED:
no root needed), as if the store were much larger than memory. Measured in one run:

- the disk's sequential read bandwidth of the chunk files (cold);
- training samples/s in block order, warm (every file cached) and cold, and the read side alone
  (batches without the model) cold, against the sequential bandwidth;
- the read side of the global order on a store read for the first time (dropped once), with
  and without its page-cache warm-up;
- with --hog, the warm/cold training pair again beside ``yes > /dev/null`` on every core;
- the class mix of both orders on the store seen as sorted by class (10 classes).

Run: python -m bench cold [--rows 2000000] [--store PATH] [--seconds 60] [--hog]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from aekit.data.quality import class_mix_distance, random_batch_distance
from aekit.data.store import Store, open_store
from aekit.data.stream import StoreBatches
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


def sequential_bandwidth(paths: list[Path], seconds: float, cold: bool = True) -> float:
    """Bytes/s reading the files in order, 4 MiB at a time, for at most ``seconds``."""
    if cold:
        drop_cache(paths)
    buffer = bytearray(4 << 20)
    total = 0
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while got := f.readinto(buffer):
                total += got
        if time.perf_counter() - started > seconds:
            break
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


def warm_cold_pair(store: Store, seconds: float, rounds: int = 4) -> dict:
    """Block-order training samples/s with the store cached, and kept out of the cache.

    This machine's speed drifts by tens of percent, so one warm run followed by one cold run
    can give any ratio. The two alternate instead, in rounds of opposite order (warm then cold,
    cold then warm, ...), on one model; the figure is the median of the rounds' ratios.
    """
    paths = store.chunk_paths()
    train = TrainStep(dense_model(store))
    rates: dict[str, list[float]] = {"warm": [], "cold": []}
    for r in range(rounds):
        for side in ("warm", "cold") if r % 2 == 0 else ("cold", "warm"):
            # A fresh epoch each time: other blocks in other windows, none of them read before
            stream = StoreBatches(store, store.train_index, BATCH, seed=0, order="block")
            batches = stream.batches(r * 2 + (side == "cold"))
            if side == "warm":
                sequential_bandwidth(paths, float("inf"), cold=False)  # everything cached
                rates[side].append(_timed(batches, lambda x: train.run(iter([x]), 1), seconds))
            else:
                with KeepCold(paths):
                    rates[side].append(_timed(batches, lambda x: train.run(iter([x]), 1), seconds))
            batches.close()
    ratios = [c / w for c, w in zip(rates["cold"], rates["warm"], strict=True)]
    pairs = zip(rates["warm"], rates["cold"], strict=True)
    rounds_text = "; ".join(f"warm {w:,.0f} cold {c:,.0f}" for w, c in pairs)
    median = float(np.median(ratios))
    print(f"    training, block order, samples/s by round: {rounds_text}")
    print(f"    cold/warm: median {median:.3f} (rounds {', '.join(f'{q:.2f}' for q in ratios)})")
    return {**rates, "ratios": ratios, "cold_over_warm": median}


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
    parser.add_argument("--seconds", type=float, default=60, help="limit of each measurement")
    parser.add_argument("--hog", action="store_true", help="also beside yes x nproc")
    parser.add_argument("--threads", type=int, default=2, help="torch's intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    store = open_store(args.store) if args.store else feature_store(args.rows)
    paths = store.chunk_paths()
    print(f"  {store.n:,} rows, {store.nbytes / 2**30:.2f} GiB, {len(paths)} chunk files")
    row_bytes = store.nbytes / store.n
    seq = sequential_bandwidth(paths, args.seconds)
    print(f"  sequential read, cold: {seq / 2**20:,.0f} MiB/s ({seq / row_bytes:,.0f} samples/s)")

    block = StoreBatches(store, store.train_index, BATCH, seed=0, order="block")
    print(f"  {block.order_choice}")
    with KeepCold(paths):
        read_cold = read_rate(block, args.seconds)
    global_cold = {}
    for warm in (False, True):
        stream = StoreBatches(store, store.train_index, BATCH, 0, order="global", warm=warm)
        # A store that fits in memory, read for the first time: dropped once, not kept out
        drop_cache(paths)
        global_cold["with_warm_up" if warm else "without_warm_up"] = read_rate(stream, args.seconds)
    print(
        f"  read side alone, cold: block {read_cold:,.0f} samples/s "
        f"({read_cold * row_bytes / seq:.3f} of sequential); global order "
        + ", ".join(f"{k} {v:,.0f}" for k, v in global_cold.items())
    )
    result = {
        "rows": store.n,
        "seconds": args.seconds,
        "sequential_bytes_per_s": seq,
        "order_choice": block.order_choice,
        "read_cold": read_cold,
        "read_cold_over_sequential": read_cold * row_bytes / seq,
        "global_read_cold": global_cold,
        "training": warm_cold_pair(store, args.seconds),
    }
    if args.hog:
        result["training_beside_hog"] = _beside_hog(store, args.seconds)
    result["class_mix"] = class_mix(store)
    t = result["training"]
    print(
        f"cold/warm training throughput, block order: {t['cold_over_warm']:.3f}; "
        f"cold read side/sequential bandwidth: {result['read_cold_over_sequential']:.3f}"
    )
    return result


def _beside_hog(store: Store, seconds: float) -> dict:
    hogs = []
    try:
        for _ in range(os.cpu_count() or 1):
            hogs.append(subprocess.Popen(["yes"], stdout=subprocess.DEVNULL))
        print(f"  beside {len(hogs)} x yes > /dev/null:")
        return warm_cold_pair(store, seconds)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
