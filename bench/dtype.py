"""What a float16 store costs in reconstruction against a float32 store of the same values.

Each set is ingested twice from the same float32 array (same split, same statistics from the
values read), once stored as float32 and once as float16 (``aekit ingest --dtype float16``, half
the bytes read per sample); the same model is fitted on each with the same seed and scored on
held-out samples in float32, as a ratio to PCA's MSE fitted on the same training rows.
- digits: scikit-learn's 8x8 digits as a (n, 64) table of pixels in [0, 1] (k/16: every value
  is exact in float16), 30 % stratified hold-out, seed 0, dense at codes 8 and 16;
- MNIST: the 60,000 training digits as a float32 array of pixels scaled to [0, 1] (k/255:
  rounded to 11 significant bits in float16), dense with ``configs/mnist.toml`` at code 32,
  scored on the 10,000 test digits.

Run: python -m bench dtype [--sets digits,mnist] [--param epochs=3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from aekit import Autoencoder, ingest
from bench.common import parameter


def _digits() -> tuple[np.ndarray, np.ndarray, dict, list[int]]:
    data = load_digits()
    X = (data.data / 16).astype(np.float32)
    Xtr, Xte = train_test_split(X, test_size=0.3, stratify=data.target, random_state=0)
    return Xtr, Xte, {}, [8, 16]


def _mnist() -> tuple[np.ndarray, np.ndarray, dict, list[int]]:
    from bench.mnist import config_params, load

    Xtr, Xte, _, _ = load()
    return Xtr, Xte, config_params("dense", {}), [32]


SETS = {"digits": _digits, "mnist": _mnist}


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.reshape(len(a), -1) - b.reshape(len(b), -1)) ** 2))


def compare(name: str, overrides: dict, folder: Path) -> list[dict]:
    """One row per code size: held-out MSE over PCA's from a float32 and a float16 store."""
    Xtr, Xte, params, sizes = SETS[name]()
    stores = {
        dtype: ingest(Xtr, folder / f"{name}-{dtype}.zarr", dtype=dtype, progress=False)
        for dtype in ("float32", "float16")
    }
    flat_tr = Xtr.reshape(len(Xtr), -1)
    rows = []
    for size in sizes:
        pca = PCA(size, random_state=0).fit(flat_tr)
        flat_te = Xte.reshape(len(Xte), -1)
        row: dict = {"set": name, "latent_dim": size}
        row["pca_mse"] = _mse(pca.inverse_transform(pca.transform(flat_te)), flat_te)
        for dtype, store in stores.items():
            started = time.perf_counter()
            model = Autoencoder(latent_dim=size, random_state=0, **{**params, **overrides})
            model.fit(store)
            row[f"{dtype}_seconds"] = time.perf_counter() - started
            row[f"{dtype}_store_bytes"] = store.nbytes
            row[f"{dtype}_ratio"] = _mse(model.reconstruct(Xte), Xte) / row["pca_mse"]
        print(
            f"  {name} code {size}: held-out MSE / PCA's, float32 store "
            f"{row['float32_ratio']:.4f}, float16 store {row['float16_ratio']:.4f} "
            f"({row['float16_store_bytes'] / row['float32_store_bytes']:.2f} x the bytes)",
            flush=True,
        )
        rows.append(row)
    return rows


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench dtype")
    parser.add_argument("--sets", default="digits,mnist")
    parser.add_argument(
        "--param", action="append", default=[], help="an Autoencoder parameter, e.g. epochs=3"
    )
    args = parser.parse_args(argv)
    overrides = dict(parameter(p) for p in args.param)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sets.split(","):
            rows += compare(name, overrides, Path(folder))
    return {"params": overrides, "rows": rows}
