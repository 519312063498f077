"""Decode once (ingest, then stream a uint8 store) vs decode every batch of every epoch.

The baseline is the seeds' ``Sequence`` approach done fairly: each batch's files are decoded and
resized with the same policy as ingest (PIL, draft mode for JPEG) in a background thread that
runs ahead of training. Both train the same small convolutional autoencoder on 128x128 RGB.
Run: python -m bench images [--n 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aekit.data.images import decode_image
from aekit.data.ingest import ingest
from aekit.data.order import epoch_order
from aekit.data.prefetch import prefetch
from aekit.data.store import open_store
from aekit.data.stream import StoreBatches
from bench.common import DATA

SIZE = (128, 128)
BATCH = 32


def make_folder(n: int) -> Path:
    """``n`` JPEGs of mixed sizes (160 to 480 px a side) in 3 class folders, made once."""
    from PIL import Image, ImageDraw

    root = DATA / f"jpegs-{n}"
    if root.exists():
        return root
    tmp = root.with_name(root.name + ".partial")
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = rng.integers(160, 481, size=2)
        base = rng.integers(0, 255, size=3)
        yy, xx = np.mgrid[0:h, 0:w]
        image = (base + 60 * np.sin(xx[..., None] / (5 + i % 17) + yy[..., None] / 23)).clip(0, 255)
        img = Image.fromarray(image.astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
            draw.ellipse(
                [x0, y0, x0 + 40, y0 + 30], fill=tuple(int(c) for c in rng.integers(0, 255, 3))
            )
        folder = tmp / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i:05d}.jpg", quality=90)
    tmp.rename(root)
    return root


class SmallConvAutoencoder(nn.Module):
    """128x128x3 -> 16x16x32 code -> 128x128x3; uint8 in, normalised on the device."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=4),
            nn.ReLU(),  # 32x32
            nn.Conv2d(16, 32, 2, stride=2),
            nn.ReLU(),  # 16x16
            nn.ConvTranspose2d(32, 16, 2, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, stride=4),
        )

    def loss(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, H, W, C) uint8
        x = (x.permute(0, 3, 1, 2).float() - self.mean) / self.std  # (B, C, H, W)
        return torch.mean((self.net(x) - x) ** 2)


def _epoch(model: SmallConvAutoencoder, batches) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    n = 0
    for x in batches:
        loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(x)
    return n / (time.perf_counter() - started)


def _decode_every_batch(files: list[Path], epoch: int):
    order = epoch_order(len(files), 0, epoch)
    for start in range(0, len(files), BATCH):
        chosen = [str(files[i]) for i in order[start : start + BATCH]]
        yield torch.from_numpy(np.stack([decode_image(f, SIZE, 3) for f in chosen]))


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench images")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    root = make_folder(args.n)
    files = sorted(root.rglob("*.jpg"))
    store_path = DATA / f"jpegs-{args.n}.zarr"
    if store_path.exists():
        store = open_store(store_path)
        ingest_seconds = store.report["seconds"]
    else:
        started = time.perf_counter()
        store = ingest(
            root, store_path, size=SIZE, channels=3, val_fraction=0, workers=2, progress=False
        )
        ingest_seconds = time.perf_counter() - started
    print(
        f"  ingest of {store.n} JPEGs to 128x128: {ingest_seconds:.1f} s "
        f"({store.n / ingest_seconds:.0f} images/s, 2 processes)"
    )

    rates: dict[str, list[float]] = {"decode_every_batch": [], "store": []}
    for r in range(args.rounds):
        torch.manual_seed(r)
        model = SmallConvAutoencoder(store.stats["mean"], store.stats["std"])
        rate = _epoch(model, prefetch(_decode_every_batch(files, r), depth=4))
        rates["decode_every_batch"].append(rate)
        torch.manual_seed(r)
        model = SmallConvAutoencoder(store.stats["mean"], store.stats["std"])
        rate_store = _epoch(model, StoreBatches(store, store.train_index, BATCH, seed=r).batches(0))
        rates["store"].append(rate_store)
        print(f"  round {r + 1}: decode every batch {rate:,.0f} images/s, store {rate_store:,.0f}")
    median = {k: float(np.median(v)) for k, v in rates.items()}
    ratio = median["store"] / median["decode_every_batch"]
    saved_per_epoch = args.n / median["decode_every_batch"] - args.n / median["store"]
    print(
        f"epoch speed, store / decode-every-batch: {ratio:.2f}x "
        f"({median['store']:,.0f} vs {median['decode_every_batch']:,.0f} images/s; "
        f"the ingest pays for itself after {ingest_seconds / saved_per_epoch:.1f} epochs)"
    )
    return {"n": args.n, "ingest_seconds": ingest_seconds, "rates": rates, "ratio": ratio}
