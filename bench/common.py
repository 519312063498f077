"""Helpers shared by the benchmarks: synthetic data on disk, a timed training run, the
``--param key=value`` flag."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit import Autoencoder
from aekit.data.split import TRAIN, assign_split
from aekit.data.stats import RunningStats
from aekit.data.store import Store, StoreWriter, open_store
from aekit.models import Architecture, AutoencoderModule, build_model
from aekit.training import BatchSource, train
from aekit.training.budget import auto_batch_size

DATA = Path("bench/data")


def feature_store(
    n: int, n_features: int = 784, name: str | None = None, dtype: str = "float32"
) -> Store:
    """A store of ``n`` x ``n_features`` (float32, or ``dtype``) made once under bench/data.

    Low-rank signal plus noise, generated block by block and written as it comes, so neither
    the data nor a copy of it is ever whole in memory or on disk (a store larger than RAM
    needs only its own size of disk).
    """
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / (
        name or f"features-{n}x{n_features}{'' if dtype == 'float32' else '-' + dtype}.zarr"
    )
    if path.exists():
        return open_store(path)
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(32, n_features)).astype(np.float32)
    writer = StoreWriter(path, (n_features,), np.dtype(dtype), has_labels=False)
    stats = RunningStats(n_features)
    try:
        for start in range(0, n, 65536):
            stop = min(n, start + 65536)
            codes = rng.normal(size=(stop - start, 32)).astype(np.float32)
            x = codes @ basis + 0.1 * rng.standard_normal((stop - start, n_features), np.float32)
            record = np.arange(start, stop)
            split = assign_split(record, 0, 0.1)
            stats.update(x[split == TRAIN])
            writer.append(x, None, np.char.add("row ", (record + 1).astype(str)), split)
        writer.commit({"source": {"kind": "synthetic"}, "stats": stats.to_dict()})
    except BaseException:
        writer.abort()
        raise
    print(f"  wrote {n:,} x {n_features} {dtype} in {time.perf_counter() - started:.1f} s")
    return open_store(path)


def series_store(steps: int, channels: int) -> Store:
    """A float32 series store of one series of ``steps`` x ``channels`` made once under
    bench/data: sines of several periods plus noise, written through ``aekit.ingest`` from a
    memory-mapped .npy (deleted after)."""
    path = DATA / f"series-{steps}x{channels}.zarr"
    if path.exists():
        return open_store(path)
    from aekit import ingest

    DATA.mkdir(parents=True, exist_ok=True)
    raw = DATA / f"series-{steps}x{channels}.npy"
    x = np.lib.format.open_memmap(raw, mode="w+", dtype=np.float32, shape=(steps, channels))
    rng = np.random.default_rng(0)
    periods = rng.uniform(20, 200, channels)
    for start in range(0, steps, 1 << 20):
        t = np.arange(start, min(steps, start + (1 << 20)))[:, None]
        noise = 0.1 * rng.standard_normal((len(t), channels), np.float32)
        x[start : start + len(t)] = np.sin(2 * np.pi * t / periods) + noise
    x.flush()
    del x
    try:
        return ingest(raw, path, series=True, progress=False)
    finally:
        raw.unlink()


def dense_model(store: Store, seed: int = 0, length: int = 0) -> AutoencoderModule:
    """Dense, one layer of 128 each way: over a sample, or over a window of ``length`` steps
    (flattened) of a series store."""
    torch.manual_seed(seed)
    shape = (length, *store.sample_shape) if length else store.sample_shape
    return build_model(
        Architecture("dense", shape, 128, hidden=(), activation="relu"),
        store.stats["mean"],
        store.stats["std"],
    )


def mse_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    x_std = model.scaler(x)  # type: ignore[operator]
    return torch.mean((model.decode_normalized(model.encode_normalized(x_std)) - x_std) ** 2)  # type: ignore[operator]


def samples_per_second(model: torch.nn.Module, data: BatchSource, epochs: int = 1) -> float:
    """Training throughput of ``epochs`` epochs of ``data`` through the shared training loop."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    state = train(model, opt, mse_loss, data, None, epochs=epochs, device=torch.device("cpu"))
    seconds = time.perf_counter() - started
    return data.n_samples * len(state.history) / seconds


class TrainStep:
    """The training loop's step (forward, backward, AdamW), timed over a window of batches."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def run(self, batches, n_steps: int) -> tuple[float, int]:
        started = time.perf_counter()
        samples = 0
        for _ in range(n_steps):
            x = next(batches)
            loss = mse_loss(self.model, x)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            samples += len(x)
        return time.perf_counter() - started, samples


def alternate(
    steps: dict[str, TrainStep],
    streams: dict[str, Any],
    rounds: tuple[int, int],
    seconds: dict[str, float],
    samples: dict[str, int],
) -> dict[str, float]:
    """Each step on its own stream in turn, ``rounds = (windows, window)``: ``window`` batches at a
    time, ``windows`` times. This machine's speed drifts by tens of percent within seconds, and
    short alternating windows let every contender see the same drift. Adds to ``seconds`` and
    ``samples``; returns this call's seconds per contender."""
    windows, window = rounds
    these = dict.fromkeys(steps, 0.0)
    for _ in range(windows):
        for name, step in steps.items():
            t, n = step.run(streams[name], window)
            these[name] += t
            seconds[name] += t
            samples[name] += n
    return these


def fit_batch(ae: Autoencoder, n_train: int) -> int:
    """The batch size an estimator's fit on ``n_train`` training rows used ('auto' resolved)."""
    return auto_batch_size(n_train) if ae.batch_size == "auto" else int(ae.batch_size)


def parameter(text: str) -> tuple[str, object]:
    """``key=value`` of a ``--param`` flag: the value as a Python literal where it is one
    (``8``, ``[64, 32]``, ``0.1``), else the text (``auto``, ``cosine``). A key that is not an
    estimator parameter stops the bench with exit status 2, before any fit."""
    key, _, value = text.partition("=")
    known = Autoencoder().get_params()
    if key not in known:
        print(
            f"--param {text}: {key!r} is not an Autoencoder parameter; use one of "
            f"{', '.join(sorted(known))}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value
