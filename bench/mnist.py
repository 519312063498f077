"""MNIST: dense and convolutional autoencoders against PCA, on the official test set.

Data: ``../shared/data/mnist`` (IDX, gzip), 60,000 training and 10,000 test digits, pixels
scaled to [0, 1]. Every model and PCA learn from the training images only; the figures are on
the 10,000 test images.

- Reconstruction: MSE per pixel at code sizes 2, 8, 16, 32 and 64, for PCA (fitted on the 60,000,
  checked against the published 0.0557, 0.0374, 0.0269, 0.0168, 0.0091), and dense and conv
  autoencoders with the settings of ``configs/mnist.toml`` and ``configs/mnist-conv.toml``
  (defaults where they say nothing);
  the ratio to PCA and each fit's wall time.
- Few labels: 100 labelled training digits (10 per class, seed 0); a logistic regression on the
  16-d codes, on raw pixels and on PCA(16) codes; accuracy on the test set.
- Generation: a VAE with a 16-d code; a logistic regression trained on all training digits
  classifies 1,000 samples; their mean top-class probability against samples from a Gaussian
  fitted in PCA(16) space.
Settings are chosen with ``--dev``: every model and PCA learn from the first 50,000 training
digits and are scored on the last 10,000, so the test set stays unseen; ``--param key=value``
sets an estimator parameter over the configs' (e.g. ``learning_rate=0.003``).
Run: python -m bench mnist [--sizes 2,8] [--kinds dense] [--no-vae] [--dev] [--param k=v]
(``--sizes ""``: the probe and the VAE only)
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from aekit import Autoencoder
from aekit.config import load_config, params_from_config
from bench.common import parameter

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PUBLISHED_PCA = {2: 0.0557, 8: 0.0374, 16: 0.0269, 32: 0.0168, 64: 0.0091}
DEV_TRAIN = 50_000  # --dev: fit on the training digits before this, score on those after


def read_idx(name: str) -> np.ndarray:
    """An IDX file: a big-endian magic (2051 images, 2049 labels), the sizes, then uint8."""
    with gzip.open(MNIST / name) as f:
        magic = int.from_bytes(f.read(4), "big")
        dims = [int.from_bytes(f.read(4), "big") for _ in range(magic & 0xFF)]
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test images as (n, 28, 28, 1) float32 in [0, 1], and their labels."""
    images = [
        read_idx(f"{part}-images.idx3-ubyte.gz").astype(np.float32)[..., None] / 255
        for part in ("train", "t10k")
    ]
    labels = [read_idx(f"{part}-labels.idx1-ubyte.gz").astype(int) for part in ("train", "t10k")]
    return images[0], images[1], labels[0], labels[1]


def config_params(kind: str, overrides: dict) -> dict:
    """The estimator parameters for ``kind`` of an ``aekit train`` config:
    ``configs/mnist-conv.toml`` for conv, ``configs/mnist.toml`` for dense and vae; then
    ``overrides`` (the ``--param`` flags) over them."""
    config = CONFIGS / ("mnist-conv.toml" if kind == "conv" else "mnist.toml")
    params = params_from_config(load_config(config, overrides={"model.kind": kind}))
    for name in ("random_state", "latent_dim"):  # the bench's own
        params.pop(name)
    if kind == "vae":  # the config's widths are a dense autoencoder's; the vae keeps its own
        params.pop("hidden", None)
    return {**params, **overrides}


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.reshape(len(a), -1) - b.reshape(len(b), -1)) ** 2))


def reconstruction(
    Xtr, Xte, sizes: list[int], kinds: list[str], overrides: dict, published: dict
) -> list[dict]:
    flat_tr, flat_te = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
    rows = []
    for size in sizes:
        started = time.perf_counter()
        pca = PCA(size, random_state=0).fit(flat_tr)
        row: dict = {"latent_dim": size, "pca_seconds": time.perf_counter() - started}
        row["pca_mse"] = mse(pca.inverse_transform(pca.transform(flat_te)), flat_te)
        row["pca_published"] = published.get(size)
        line = f"  code {size:2d}: PCA {row['pca_mse']:.4f} (published {row['pca_published']})"
        for kind in kinds:
            started = time.perf_counter()
            params = config_params(kind, overrides)
            ae = Autoencoder(latent_dim=size, random_state=0, **params).fit(Xtr)
            row[f"{kind}_seconds"] = time.perf_counter() - started
            row[f"{kind}_epochs"] = ae.n_iter_
            row[f"{kind}_mse"] = mse(ae.reconstruct(Xte), Xte)
            row[f"{kind}_ratio"] = row[f"{kind}_mse"] / row["pca_mse"]
            line += (
                f", {kind} {row[f'{kind}_mse']:.4f} = {row[f'{kind}_ratio']:.3f} x PCA "
                f"({row[f'{kind}_seconds']:.0f} s, {ae.n_iter_} epochs)"
            )
        print(line, flush=True)
        rows.append(row)
    return rows


def few_labels(
    Xtr, Xte, ytr, yte, kind: str, overrides: dict, size: int = 16, per_class: int = 10
) -> dict:
    rng = np.random.default_rng(0)
    labelled = np.concatenate(
        [rng.choice(np.flatnonzero(ytr == c), per_class, replace=False) for c in range(10)]
    )
    flat_tr, flat_te = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
    ae = Autoencoder(latent_dim=size, random_state=0, **config_params(kind, overrides)).fit(Xtr)
    pca = PCA(size, random_state=0).fit(flat_tr)

    def accuracy(train_features, test_features) -> float:
        clf = LogisticRegression(max_iter=5000).fit(train_features[labelled], ytr[labelled])
        return float(clf.score(test_features, yte))

    return {
        "labels": len(labelled),
        "codes": accuracy(ae.transform(Xtr), ae.transform(Xte)),
        "raw": accuracy(flat_tr, flat_te),
        "pca": accuracy(pca.transform(flat_tr), pca.transform(flat_te)),
    }


def generation(Xtr, ytr, overrides: dict, size: int = 16, n: int = 1000) -> dict:
    flat_tr = Xtr.reshape(len(Xtr), -1)
    judge = LogisticRegression(max_iter=200).fit(flat_tr[::3], ytr[::3])
    started = time.perf_counter()
    vae = Autoencoder(latent_dim=size, random_state=0, **config_params("vae", overrides)).fit(Xtr)
    seconds = time.perf_counter() - started
    samples = np.clip(vae.sample(n, random_state=0).reshape(n, -1), 0, 1)
    pca = PCA(size, random_state=0).fit(flat_tr)
    codes = pca.transform(flat_tr)
    rng = np.random.default_rng(0)
    gaussian = np.clip(
        pca.inverse_transform(rng.multivariate_normal(codes.mean(0), np.cov(codes.T), size=n)),
        0,
        1,
    )

    def confidence(images: np.ndarray) -> float:
        return float(judge.predict_proba(images).max(axis=1).mean())

    return {
        "vae": confidence(samples),
        "pca_gaussian": confidence(gaussian),
        "real_test": confidence(flat_tr[1::3][:n]),
        "vae_seconds": seconds,
    }


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench mnist")
    parser.add_argument("--sizes", default="2,8,16,32,64")
    parser.add_argument("--kinds", default="dense,conv")
    parser.add_argument("--no-probe", action="store_true")
    parser.add_argument("--no-vae", action="store_true")
    parser.add_argument(
        "--dev",
        action="store_true",
        help=f"fit on the first {DEV_TRAIN:,} training digits, score on the rest: for choosing "
        "settings without looking at the test set",
    )
    parser.add_argument(
        "--param", action="append", default=[], help="an Autoencoder parameter, e.g. epochs=80"
    )
    args = parser.parse_args(argv)
    overrides = dict(parameter(p) for p in args.param)  # a bad name exits 2 before any loading
    Xtr, Xte, ytr, yte = load()
    if args.dev:
        Xtr, Xte, ytr, yte = Xtr[:DEV_TRAIN], Xtr[DEV_TRAIN:], ytr[:DEV_TRAIN], ytr[DEV_TRAIN:]
    part = "held-out training" if args.dev else "test"
    print(f"MNIST: {len(Xtr):,} training and {len(Xte):,} {part} images; MSE per pixel in [0, 1]")
    kinds = args.kinds.split(",")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    result: dict = {
        "dev": args.dev,
        "params": overrides,
        "reconstruction": reconstruction(
            Xtr, Xte, sizes, kinds, overrides, {} if args.dev else PUBLISHED_PCA
        ),
    }
    if not args.no_probe:
        result["few_labels"] = few_labels(Xtr, Xte, ytr, yte, kinds[0], overrides)
        f = result["few_labels"]
        print(
            f"  100 labels, logistic regression accuracy: {kinds[0]} codes(16) {f['codes']:.3f}, "
            f"raw pixels {f['raw']:.3f}, PCA(16) {f['pca']:.3f}",
            flush=True,
        )
    if not args.no_vae:
        result["generation"] = g = generation(Xtr, ytr, overrides)
        print(
            f"  VAE(16) samples' mean top-class probability {g['vae']:.3f} vs Gaussian in PCA(16) "
            f"space {g['pca_gaussian']:.3f} (real digits {g['real_test']:.3f}; "
            f"fit {g['vae_seconds']:.0f} s)",
            flush=True,
        )
    return result
