"""Helpers shared by the benchmarks: synthetic data on disk, a timed training run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from aekit.data.ingest import ingest
from aekit.data.store import Store, open_store
from aekit.models import DenseAutoencoder
from aekit.training import BatchSource, train

DATA = Path("bench/data")


def feature_store(n: int, n_features: int = 784, name: str | None = None) -> Store:
    """A float32 store of ``n`` x ``n_features`` made once (from a .npy file, through ingest)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / (name or f"features-{n}x{n_features}.zarr")
    if path.exists():
        return open_store(path)
    npy = DATA / f".{path.stem}.npy"
    rng = np.random.default_rng(0)
    # Low-rank signal plus noise, written block by block so the source is never in memory whole
    basis = rng.normal(size=(32, n_features)).astype(np.float32)
    out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(n, n_features))
    for start in range(0, n, 65536):
        stop = min(n, start + 65536)
        codes = rng.normal(size=(stop - start, 32)).astype(np.float32)
        out[start:stop] = codes @ basis + 0.1 * rng.standard_normal(
            (stop - start, n_features), dtype=np.float32
        )
    out.flush()
    del out
    started = time.perf_counter()
    store = ingest(npy, path, progress=False)
    print(f"  ingested {n} x {n_features} float32 in {time.perf_counter() - started:.1f} s")
    npy.unlink()
    return store


def dense_model(store: Store, seed: int = 0) -> DenseAutoencoder:
    torch.manual_seed(seed)
    return DenseAutoencoder(
        store.sample_shape, 128, (), "relu", store.stats["mean"], store.stats["std"]
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
