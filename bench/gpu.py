"""Training on a GPU: streaming from a store against the same model fed from the GPU's memory.

Two models, each through aekit's training loop (bf16 autocast, batches cut on the device from
whole windows copied there, uint8 and float16 cast on the device, losses read once per window):
- dense 784-128-784, batch 4096, on a float32 store of N x 784 and on its float16 twin;
- conv (aekit's default conv body) on 128 x 128 x 3 uint8 images, batch 256.
For each: samples/s streaming from the store against a tensor already on the GPU (the ceiling
of the stream) in block order (what ``auto`` picks for a store larger than host memory) and in
global order, every epoch streamed as a first one is; then the epochs after the first with the
split kept on the device. For each stream: the host-to-device GB/s it reached against a plain
pinned copy, the host synchronisations per step (CUDA's sync debug mode) and the peak GPU
memory. On the GPU tensor alone: bf16 against fp32, torch.compile on against off.

Run: python -m bench gpu [--n 500000] [--images 20000] [--epochs 3]
Without CUDA it says so and exits 0; `--device cpu --smoke` runs every path, small, on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from collections.abc import Iterator

import numpy as np
import torch

import aekit.training.loop as loop
from aekit.data.ingest import ingest
from aekit.data.store import Store, open_store
from aekit.data.stream import StoreBatches
from aekit.models import Architecture, build_model
from aekit.objectives import Objective
from aekit.training import train
from bench.common import DATA, feature_store


class TensorBatches:
    """A split held in the GPU's memory, shuffled batches by index: the stream's ceiling."""

    final_share = None  # one process: every batch counts as it is (the loop's BatchSource)

    def __init__(self, X: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        self.X, self.batch_size, self.seed = X, batch_size, seed

    @property
    def n_samples(self) -> int:
        return len(self.X)

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[torch.Tensor]:
        g = torch.Generator(device=self.X.device).manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.X), generator=g, device=self.X.device)
        for first in range(start * self.batch_size, len(self.X), self.batch_size):
            yield self.X[order[first : first + self.batch_size]]


def image_store(n: int) -> Store:
    """``n`` uint8 images of 128 x 128 x 3 (smooth patterns and noise), made once."""
    path = DATA / f"images-{n}x128x128x3.zarr"
    if not path.exists():
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:128, 0:128]
        phase = rng.uniform(0, 6.3, size=(n, 1, 1, 3)).astype(np.float32)
        waves = np.sin(xx[None, ..., None] / 9 + phase) + np.cos(yy[None, ..., None] / 13)
        noise = 12 * rng.standard_normal((n, 128, 128, 3), dtype=np.float32)
        images = np.clip(127 + 50 * waves + noise, 0, 255).astype(np.uint8)  # 4 GB a 20,000
        ingest(images, path, val_fraction=0.0, progress=False)
    return open_store(path)


def model_for(store: Store, kind: str, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    stats = store.stats
    dense = kind == "dense"
    architecture = Architecture(
        kind,
        tuple(store.sample_shape),
        128 if dense else 64,
        hidden=() if dense else (128,),
        conv_channels=() if dense else (32, 64),
        activation="relu" if dense else "gelu",
    )
    model = build_model(architecture, np.asarray(stats["mean"]), np.asarray(stats["std"]))
    return model.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    store: Store, kind: str, data, device: torch.device, epochs: int, *, compiled=False, bf16=True
) -> dict:
    """Samples/s of ``epochs`` timed epochs after an untimed one (warm-up, compilation), the
    peak GPU memory, and the host synchronisations per step that CUDA's debug mode saw."""
    model = model_for(store, kind, device)
    loss = Objective()
    loss_fn = torch.compile(loss) if compiled else loss
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast = loop._autocast
    if not bf16:  # the loop autocasts on CUDA; fp32 is the same loop without it
        loop._autocast = lambda device: contextlib.nullcontext()
    try:
        train(model, opt, loss_fn, data, None, epochs=1, device=device)  # warm-up
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            started = time.perf_counter()
            state = train(model, opt, loss_fn, data, None, epochs=1 + epochs, device=device)
            sync(device)
            seconds = time.perf_counter() - started
    finally:
        loop._autocast = autocast
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode(0)
    steps = len(data) * epochs
    syncs = sum("synchroniz" in str(w.message) for w in seen)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0
    return {
        "samples_per_s": data.n_samples * (len(state.history) - 1) / seconds,
        # CUDA's debug mode alone sees synchronisations; on the CPU there are none to see
        "syncs_per_step": syncs / max(steps, 1) if device.type == "cuda" else None,
        "peak_gpu_mib": peak,
    }


def pinned_bandwidth(batch_bytes: int, device: torch.device, copies: int = 200) -> float:
    """GB/s of plain copies of one pinned batch to the device, back to back."""
    pin = device.type == "cuda"
    host = torch.empty(batch_bytes, dtype=torch.uint8, pin_memory=pin)
    for _ in range(5):
        host.to(device, non_blocking=pin)
    sync(device)
    started = time.perf_counter()
    for _ in range(copies):
        host.to(device, non_blocking=pin)
    sync(device)
    return batch_bytes * copies / (time.perf_counter() - started) / 1e9


STREAMS = {
    # name: (order, device cache). The first two stream every epoch, as a first epoch does
    "block": ("block", False),  # what auto picks for a store larger than host memory
    "global": ("global", False),  # what auto picks for a store that fits in host memory
    "cached": ("block", True),  # the epochs after the first, the split kept on the device
}


def stream_for(store: Store, batch: int, device: torch.device, name: str) -> StoreBatches:
    order, cache = STREAMS[name]
    pin = device.type == "cuda"
    return StoreBatches(
        store, store.train_index, batch, seed=0, order=order, pin_memory=pin, device=device,
        device_cache=cache,
    )  # fmt: skip


def compare(
    store: Store, kind: str, batch: int, device: torch.device, args, half: Store | None = None
) -> dict:
    """Each stream against the same model fed from a tensor already on the device; ``half``:
    the same samples in a float16 store, streamed in block and global order."""
    on_gpu = TensorBatches(torch.from_numpy(store.read(store.train_index)).to(device), batch)
    result = {"on_gpu": measure(store, kind, on_gpu, device, args.epochs)}
    result["on_gpu_fp32"] = measure(store, kind, on_gpu, device, args.epochs, bf16=False)
    if not args.no_compile:
        result["on_gpu_compiled"] = measure(store, kind, on_gpu, device, args.epochs, compiled=True)
    sources = {name: (store, name) for name in STREAMS}
    if half is not None:
        sources |= {f"float16_{name}": (half, name) for name in ("block", "global")}
    sample_bytes = int(np.prod(store.sample_shape))
    result["pinned_copy_gb_per_s"] = pinned_bandwidth(
        batch * sample_bytes * store.dtype.itemsize, device
    )
    for label, (source, name) in sources.items():
        stream = stream_for(source, batch, device, name)
        figures = measure(source, kind, stream, device, args.epochs)
        figures["order_choice"] = stream.order_choice
        rate = figures["samples_per_s"]
        figures["vs_on_gpu"] = rate / result["on_gpu"]["samples_per_s"]
        figures["gb_per_s"] = rate * sample_bytes * source.dtype.itemsize / 1e9
        result[label] = figures
    return result


def report(name: str, r: dict) -> None:
    ceiling = r["on_gpu"]["samples_per_s"]
    line = f"  on-device tensor: bf16 {ceiling:,.0f}, fp32 {r['on_gpu_fp32']['samples_per_s']:,.0f}"
    if "on_gpu_compiled" in r:
        line += f", bf16 + torch.compile {r['on_gpu_compiled']['samples_per_s']:,.0f}"
    print(f"{name}\n{line} samples/s; a plain pinned copy {r['pinned_copy_gb_per_s']:.2f} GB/s")
    for label, f in r.items():
        if not isinstance(f, dict) or "vs_on_gpu" not in f:
            continue
        syncs = f["syncs_per_step"]
        syncs = "n/a (no CUDA)" if syncs is None else f"{syncs:.3f}"
        print(
            f"  {label:>14}: {f['samples_per_s']:,.0f} samples/s = {f['vs_on_gpu']:.3f} x the "
            f"on-device tensor; {f['gb_per_s']:.2f} GB/s to the device; host syncs per step "
            f"{syncs}; peak GPU memory {f['peak_gpu_mib']:,.0f} MiB"
        )


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench gpu")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=500_000, help="rows of the 784-feature store")
    parser.add_argument("--images", type=int, default=20_000, help="images of 128x128x3")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check every path")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: bench gpu measures nothing (--device cpu --smoke checks it)")
        return {"cuda": False}
    if args.smoke:
        args.n, args.images, args.epochs = 20_000, 512, 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}")
    results = {
        "device": name,
        "dense": compare(
            feature_store(args.n),
            "dense",
            4096,
            device,
            args,
            half=feature_store(args.n, dtype="float16"),
        ),
        "conv": compare(image_store(args.images), "conv", 256, device, args),
    }
    report(f"dense 784-128-784, batch 4096, {args.n:,} rows", results["dense"])
    report(f"conv 128x128x3 uint8, batch 256, {args.images:,} images", results["conv"])
    return results
