"""Streaming from a store vs the same loop on an in-memory tensor.

Dense 784-128-784 autoencoder, batch 256, float32 store of N x 784 (default 1,000,000) on disk.
Run: python -m bench stream [--n 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aekit.data.arrays import ArrayBatches
from aekit.data.stream import StoreBatches
from bench.common import dense_model, feature_store, samples_per_second


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench stream")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--trial-batches", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    store = feature_store(args.n)
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

    results: dict[str, list[float]] = {"in_memory": [], "store": []}
    for r in range(args.rounds):
        # Each trial is one epoch of the shared training loop over a fresh random subset of
        # trial_batches x batch_size rows spread over the whole store; both sources get the
        # same subset, interleaved, so drift on the machine hits both alike
        rng = np.random.default_rng(r)
        subset = np.sort(rng.choice(store.n, args.trial_batches * args.batch_size, replace=False))
        sources = {
            "in_memory": ArrayBatches(X, subset, args.batch_size, seed=r),
            "store": StoreBatches(store, subset, args.batch_size, seed=r),
        }
        for name, data in sources.items():
            rate = samples_per_second(dense_model(store), data, epochs=1)
            results[name].append(rate)
            print(f"  round {r + 1} {name:<10} {rate:,.0f} samples/s")
    # Paired ratios (same round, same subset) cancel the machine's slow drifts
    pairs = [st / mem for st, mem in zip(results["store"], results["in_memory"], strict=True)]
    ratio = float(np.median(pairs))
    median = {k: float(np.median(v)) for k, v in results.items()}
    print(
        f"stream/in-memory throughput: {ratio:.3f} (median of {args.rounds} paired rounds; "
        f"medians: store {median['store']:,.0f}, in-memory {median['in_memory']:,.0f} samples/s; "
        f"{args.n:,} x 784 float32 store, dense 784-128-784, batch {args.batch_size})"
    )
    return {"n": args.n, "batch_size": args.batch_size, "rates": results, "ratio": ratio}
