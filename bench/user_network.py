"""A user's network against the built-in family that builds the same layers: no cost for being
the user's.

Dense 784-512-256-32 (GELU), batch 256, from a warm float32 store of N x 784 (default 200,000):
the built-in ``dense`` kind, and the same layers written by hand as a user's factory
(``tests/networks.py``, outside aekit), each with its own training step, timed in alternating
windows of a few steps so that both see the same drift of this machine's speed.
Run: python -m bench user-network [--n 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from aekit.data.stream import StoreBatches
from aekit.models import Architecture, build_model
from bench.common import TrainStep, alternate, feature_store

# The user's network: the one the tests train to bitwise the built-in's weights
from tests.networks import dense_layers

WINDOW = 25  # steps per timed window
HIDDEN = (512, 256)
LATENT = 32


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench user-network")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=400, help="batches per model per round")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    store = feature_store(args.n)
    rows = store.train_index
    for _ in StoreBatches(store, rows, 4096, seed=0, shuffle=False).batches(0):
        pass  # warm: the store's pages in memory, as in later epochs
    architectures = {
        "built_in": Architecture("dense", (784,), LATENT, hidden=HIDDEN, activation="gelu"),
        "users": Architecture(dense_layers, (784,), LATENT, network_kwargs={"hidden": HIDDEN}),
    }
    stats = store.stats
    seconds = dict.fromkeys(architectures, 0.0)
    samples = dict.fromkeys(architectures, 0)
    per_round = []
    for r in range(args.rounds):
        steps, streams = {}, {}
        for name, architecture in architectures.items():
            torch.manual_seed(r)
            model = build_model(architecture, np.asarray(stats["mean"]), np.asarray(stats["std"]))
            steps[name] = TrainStep(model)
            streams[name] = iter(StoreBatches(store, rows, args.batch_size, seed=r).batches(r))
        round_seconds = alternate(
            steps, streams, (args.batches // WINDOW, WINDOW), seconds, samples
        )
        per_round.append(round_seconds["built_in"] / round_seconds["users"])
        print(f"  round {r + 1}: user's network / built-in samples/s {per_round[-1]:.3f}")
    rate = {name: samples[name] / seconds[name] for name in architectures}
    ratio = rate["users"] / rate["built_in"]
    print(
        f"user's network / built-in throughput: {ratio:.3f} ({rate['users']:,.0f} vs "
        f"{rate['built_in']:,.0f} samples/s over {args.rounds} rounds; dense 784-512-256-32, "
        f"batch {args.batch_size}, warm {args.n:,} x 784 float32 store)"
    )
    return {"n": args.n, "batch_size": args.batch_size, "rates": rate, "per_round": per_round,
            "ratio": ratio}  # fmt: skip
