"""Training from a store on object storage, against the same store on a local disk, warm.

The store of ``bench cold`` (2,000,000 x 784 float32, 6 GB) is copied object by object to a
SeaweedFS server started on 127.0.0.1 (the tests' server: server and trainer share this
machine's cores). Dense 784-128-784, batch 256, block order on both sides. Local warm and S3
alternate in rounds of opposite order on one model, each a fresh epoch (blocks never read
before), and the figure is the median of the rounds' ratios. Also measured: the read side alone
from S3 (no model), and a second epoch served by the local block cache.

Run: python -m bench s3 [--rows 2000000] [--seconds 60] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from aekit.data.remote import Remote
from aekit.data.store import Store, open_store
from aekit.data.stream import StoreBatches
from bench.cold import BATCH, _timed, read_rate, sequential_bandwidth
from bench.common import TrainStep, dense_model, feature_store
from tests.s3server import BUCKET, S3Server


def upload(store: Store, url: str) -> float:
    """Copy a local store's files to ``url``, one object each; return the seconds it took."""
    import obstore

    dest = Remote.parse(url)
    root = Path(store.path)
    files = [p for p in root.rglob("*") if p.is_file()]
    started = time.perf_counter()

    def put(path: Path) -> None:
        with open(path, "rb") as f:
            obstore.put(dest.client, dest.key(path.relative_to(root).as_posix()), f)

    # Data first, the root zarr.json (the completion marker) last, as an ingest publishes
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, [p for p in files if p != root / "zarr.json"]))
    put(root / "zarr.json")
    return time.perf_counter() - started


def local_and_s3(local: Store, remote: Store, seconds: float, rounds: int) -> dict:
    """Training samples/s, block order, local warm and from S3, alternating (see module doc)."""
    train = TrainStep(dense_model(local))
    rates: dict[str, list[float]] = {"local": [], "s3": []}
    for r in range(rounds):
        for side in ("local", "s3") if r % 2 == 0 else ("s3", "local"):
            store = local if side == "local" else remote
            if side == "local":
                sequential_bandwidth(local.chunk_paths(), float("inf"), cold=False)
            stream = StoreBatches(store, store.train_index, BATCH, seed=0, order="block")
            batches = stream.batches(r * 2 + (side == "s3"))
            rates[side].append(_timed(batches, lambda x: train.run(iter([x]), 1), seconds))
            batches.close()
    ratios = [s / w for s, w in zip(rates["s3"], rates["local"], strict=True)]
    text = "; ".join(
        f"local {w:,.0f} s3 {s:,.0f}" for w, s in zip(rates["local"], rates["s3"], strict=True)
    )
    median = float(np.median(ratios))
    print(f"    training, block order, samples/s by round: {text}")
    print(
        f"    s3/local warm: median {median:.3f} (rounds {', '.join(f'{q:.2f}' for q in ratios)})"
    )
    return {**rates, "ratios": ratios, "s3_over_local": median}


def cached_epochs(url: str, seconds: float) -> dict:
    """Read side of epoch 0 from S3 filling the local cache, then of epoch 0 again from it."""
    with tempfile.TemporaryDirectory(dir="bench/data") as folder:
        store = open_store(url)
        store.use_cache(folder, 1 << 40)
        stream = StoreBatches(store, store.train_index, BATCH, seed=0, order="block")
        first = read_rate(stream, seconds)
        fetched = store.remote.bytes_read if store.remote else 0
        second = read_rate(stream, seconds)
        fetched_again = (store.remote.bytes_read if store.remote else 0) - fetched
    print(
        f"  read side with the local cache: first pass {first:,.0f} samples/s (fetching), "
        f"second {second:,.0f} samples/s, {fetched_again / 2**20:.0f} MiB fetched again"
    )
    return {"first": first, "second": second, "fetched_again_bytes": fetched_again}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench s3")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--seconds", type=float, default=60, help="limit of each measurement")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch's intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    local = feature_store(args.rows)
    with tempfile.TemporaryDirectory(dir="bench/data") as folder:
        server = S3Server(Path(folder))
        server.start()
        os.environ.update(server.env)
        try:
            url = f"s3://{BUCKET}/bench/{Path(local.path).name}"
            took = upload(local, url)
            print(f"  uploaded {local.nbytes / 2**30:.2f} GiB to {server.endpoint} in {took:.1f} s")
            remote = open_store(url)
            stream = StoreBatches(remote, remote.train_index, BATCH, seed=0)
            print(f"  {stream.order_choice}")
            read = read_rate(stream, args.seconds)
            row_bytes = local.nbytes / local.n
            mib = read * row_bytes / 2**20
            print(f"  read side alone from S3: {read:,.0f} samples/s ({mib:,.0f} MiB/s)")
            result = {
                "rows": local.n,
                "seconds": args.seconds,
                "upload_seconds": took,
                "order_choice": stream.order_choice,
                "read_s3": read,
                "training": local_and_s3(local, remote, args.seconds, args.rounds),
                "cache": cached_epochs(url, args.seconds),
                "retried": remote.remote.retried if remote.remote else 0,
            }
        finally:
            server.stop()
    print(
        f"s3/local warm training throughput, block order: {result['training']['s3_over_local']:.3f}"
    )
    return result
