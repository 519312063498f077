"""What the training engine adds to the bare streaming loop.

Both train the dense 784-128-784 autoencoder from the same 1,000,000 x 784 store, batch 256:
the bare loop is forward, backward, AdamW step and nothing else; the engine is ``train()`` with
the callbacks ``aekit train`` uses (early stopping, CSV log, checkpoint at the epoch's end,
progress lines, NaN guard). Validation is left out of both: it is extra work, not overhead.
This machine's speed drifts by tens of percent within seconds, so the two are interleaved in
windows of 25 steps inside one epoch: the engine's batch source runs 25 bare steps (on their own
model and stream) after every 25 engine steps, and their time is taken out of the engine's.
Run: python -m bench engine [--rounds 3] [--batches 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aekit.data.stream import StoreBatches
from aekit.training import CSVLogger, EarlyStopping, train
from aekit.training.checkpoint import Checkpointer
from aekit.training.progress import Progress
from bench.common import TrainStep, dense_model, feature_store, mse_loss

WINDOW = 25


class _Interleaved:
    """The engine's batches, with a window of bare steps run (and timed) between windows."""

    def __init__(self, data: StoreBatches, bare: TrainStep, bare_stream, window: int) -> None:
        self.data, self.bare, self.bare_stream, self.window = data, bare, bare_stream, window
        self.bare_seconds, self.bare_samples = 0.0, 0

    @property
    def n_samples(self) -> int:
        return self.data.n_samples

    def __len__(self) -> int:
        return len(self.data)

    @property
    def final_share(self) -> tuple[int, float] | None:
        return self.data.final_share

    def batches(self, epoch: int, start: int = 0):
        for i, x in enumerate(self.data.batches(epoch, start)):
            if i and i % self.window == 0:
                t, n = self.bare.run(self.bare_stream, self.window)
                self.bare_seconds += t
                self.bare_samples += n
            yield x


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench engine")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=2000)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    store = feature_store(args.n)
    for _ in StoreBatches(store, np.arange(store.n), 4096, seed=0, shuffle=False).batches(0):
        pass  # warm-up: map the store and fault its pages in

    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rows = np.sort(
                np.random.default_rng(r).choice(store.n, args.batches * 256, replace=False)
            )
            bare_stream = iter(StoreBatches(store, rows, 256, seed=r + 1000).batches(0))
            data = _Interleaved(
                StoreBatches(store, rows, 256, seed=r),
                TrainStep(dense_model(store, r)),
                bare_stream,
                WINDOW,
            )
            model = dense_model(store, r)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            folder = Path(tmp) / f"run{r}"
            folder.mkdir()
            callbacks = [
                EarlyStopping("train_loss", patience=10),
                CSVLogger(folder / "metrics.csv"),
            ]
            checkpointer = Checkpointer(
                folder / "checkpoints", list(callbacks), {}, monitor="train_loss"
            )
            started = time.perf_counter()
            train(
                model,
                opt,
                mse_loss,
                data,
                None,
                epochs=1,
                device=torch.device("cpu"),
                callbacks=[*callbacks, checkpointer, Progress("lines", every_seconds=10.0)],
            )
            engine_seconds = time.perf_counter() - started - data.bare_seconds
            engine_rate = data.n_samples / engine_seconds
            bare_rate = data.bare_samples / data.bare_seconds
            ratios.append(engine_rate / bare_rate)
            print(
                f"  round {r + 1}: bare {bare_rate:,.0f}, engine {engine_rate:,.0f} samples/s, "
                f"ratio {ratios[-1]:.3f}"
            )
    ratio = float(np.median(ratios))
    print(
        f"engine/bare loop throughput: {ratio:.3f} (overhead {100 * (1 - ratio):.1f} %; "
        f"median of {args.rounds} rounds of {args.batches} interleaved batches each)"
    )
    return {"ratios": ratios, "ratio": ratio}
