"""Streaming from a store vs the same loop on an in-memory tensor.

Dense 784-128-784 autoencoder, batch 256, float32 store of N x 784 (default 1,000,000) on disk.
``--series``: a series store of N steps x 8 channels (default 4,000,000; 128 MB), trained on as
windows of 64 steps at stride 1 cut at batch time, against the same windows cut from the series
in memory; dense 512-128-512 on the flattened windows.
``--block``: the store read in block order (shuffled blocks of about 4 MiB, samples shuffled
within a window of blocks), as a store larger than memory or on object storage is; each trial is
then one epoch at the stride that gives about its samples, spread over the whole store as a
run's epoch is. ``--cold`` (with ``--block``): the store's files dropped from the page cache
every second, as if it were much larger than memory.
Run: python -m bench stream [--series] [--block [--cold]] [--n 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch

from aekit.data.arrays import ArrayBatches
from aekit.data.series import window_starts
from aekit.data.stream import StoreBatches
from bench.cold import KeepCold
from bench.common import TrainStep, alternate, dense_model, feature_store, series_store

WINDOW = 25  # steps per timed window
LENGTH = 64  # steps per series window (--series)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench stream")
    parser.add_argument("--n", type=int, default=0, help="rows (steps of a series)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trial-batches", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--series", action="store_true", help="windows over a series store")
    parser.add_argument(
        "--block",
        action="store_true",
        help="the store read in block order, as one larger than memory or on object storage is "
        "(series: each block with the steps after it)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="with --block: the store's files dropped from the page cache every second",
    )
    args = parser.parse_args(argv)
    if args.cold and not args.block:
        parser.error("--cold needs --block: a cold store in global order is read row by row")
    torch.set_num_threads(2)

    n = args.n if args.n else (4_000_000 if args.series else 1_000_000)
    store = series_store(n, 8) if args.series else feature_store(n)
    length = LENGTH if args.series else 0
    everything = np.arange(store.n)
    # The baseline holds every sample in memory (loading it is not timed)
    X = store.read(everything)
    # Warm-up, untimed: one pass maps the store's chunk files and faults their pages in, as the
    # first epoch of any run does; the figures below are the steady state of later epochs
    started = time.perf_counter()
    for _ in StoreBatches(store, everything, 4096, seed=0, shuffle=False).batches(0):
        pass
    seconds = time.perf_counter() - started
    print(f"  first pass over the store (mapping, page faults): {seconds:.1f} s")

    # Interleave the two sources in windows of a few steps, timing each window: the machine's
    # speed drifts by tens of percent over seconds here, and short alternating windows make
    # both sources see the same drift. Both run the same training step on their own model.
    rng = np.random.default_rng(0)
    order = "block" if args.block else "auto"
    firsts = window_starts(store.n, length, 1) if length else everything
    trial = args.trial_batches * args.batch_size
    if args.block:
        # One epoch at the stride that gives about ``trial`` samples, spread over the whole
        # store as a run's epoch is, so that each block read serves its share of samples
        subset = firsts[:: max(1, len(firsts) // trial)][:trial]
    else:
        subset = np.sort(rng.choice(firsts, trial, replace=False))
    sources = {
        "in_memory": ArrayBatches(X, subset, args.batch_size, seed=0, window_length=length),
        "store": StoreBatches(
            store, subset, args.batch_size, seed=0, window_length=length, order=order
        ),
    }
    seconds = {name: 0.0 for name in sources}
    samples = {name: 0 for name in sources}
    per_round = []
    cold = KeepCold(store.chunk_paths()) if args.cold else contextlib.nullcontext()
    with cold:
        for r in range(args.rounds):
            streams = {name: iter(data.batches(r)) for name, data in sources.items()}
            steps = {name: TrainStep(dense_model(store, seed=r, length=length)) for name in sources}
            round_seconds = alternate(
                steps, streams, (args.trial_batches // WINDOW, WINDOW), seconds, samples
            )
            per_round.append(round_seconds["in_memory"] / round_seconds["store"])
            rates = {k: args.trial_batches * args.batch_size / v for k, v in round_seconds.items()}
            print(
                f"  round {r + 1}: in-memory {rates['in_memory']:,.0f}, store {rates['store']:,.0f}"
                f" samples/s, ratio {per_round[-1]:.3f}"
            )
    rate = {k: samples[k] / seconds[k] for k in sources}
    ratio = rate["store"] / rate["in_memory"]
    data = (
        f"{n:,} steps x 8 series store, windows of {length}, dense 512-128-512"
        if length
        else f"{n:,} x 784 float32 store, dense 784-128-784"
    )
    data += f"; {sources['store'].order_choice}"  # type: ignore[attr-defined]
    print(
        f"stream/in-memory throughput: {ratio:.3f} (store {rate['store']:,.0f} vs in-memory "
        f"{rate['in_memory']:,.0f} samples/s over {args.rounds} rounds; {data}, batch "
        f"{args.batch_size})"
    )
    return {
        "n": n,
        "series": bool(length),
        "order": sources["store"].order_mode,  # type: ignore[attr-defined]
        "cold": args.cold,
        "window_length": length,
        "batch_size": args.batch_size,
        "rates": rate,
        "per_round": per_round,
        "ratio": ratio,
    }
