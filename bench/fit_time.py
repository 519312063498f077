"""What a default fit costs: aekit's ``Autoencoder().fit`` against PyOD's IForest and PCA.

Tables of 10,000 x 20 and 100,000 x 20 (a nonlinear 5-factor signal plus noise, seed 0), 80 %
to fit on and 20 % held out. For each: the wall time of a default fit (aekit, PyOD's IForest,
scikit-learn's PCA with aekit's default code size, 2), the held-out reconstruction MSE of aekit
and PCA (standardised units, ratio), and the share of aekit's fit spent outside the model's
maths: its time per step against a bare loop that runs the same model, loss and optimiser on
batches already in memory, for as many steps. The process's first fit also pays torch's one-time
start (the optimiser imports torch._dynamo, about 1 s); it is timed apart, on a 100-row table.
Run: python -m bench fit-time [--no-pyod]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from sklearn.decomposition import PCA

from aekit import Autoencoder
from aekit.objectives import Objective
from bench.common import fit_batch

SIZES = (10_000, 100_000)


def table(n: int, n_features: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 5))
    mixing = rng.normal(size=(5, n_features))
    return (np.tanh(factors @ mixing) + 0.1 * rng.normal(size=(n, n_features))).astype(np.float32)


def bare_seconds(ae: Autoencoder, X: np.ndarray, steps: int, batch: int) -> float:
    """Seconds for ``steps`` optimiser steps of the fitted model's architecture, loss and
    optimiser on batches already in memory: the model's maths alone."""
    model = copy.deepcopy(ae.model_).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2, fused=True)
    objective = Objective()
    data = torch.from_numpy(X)
    starts = np.random.default_rng(0).integers(0, len(X) - batch, steps)
    batches = [data[s : s + batch] for s in starts]
    started = time.perf_counter()
    for x in batches:
        loss = objective(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def standardised_mse(X: np.ndarray, Y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    return float(np.mean(((X - Y) / std) ** 2))


def one_size(n: int, pyod: bool) -> dict:
    X = table(n)
    cut = int(0.8 * n)
    train, test = X[:cut], X[cut:]
    mean, std = train.mean(0), train.std(0)
    row: dict = {"n": n, "features": X.shape[1]}

    started = time.perf_counter()
    ae = Autoencoder(random_state=0).fit(train)
    row["aekit_seconds"] = time.perf_counter() - started
    row["aekit_epochs"] = ae.n_iter_
    row["aekit_stop"] = ae.stop_reason_

    started = time.perf_counter()
    pca = PCA(ae.latent_dim, random_state=0).fit((train - mean) / std)
    row["pca_seconds"] = time.perf_counter() - started
    pca_rec = pca.inverse_transform(pca.transform((test - mean) / std)) * std + mean
    row["pca_mse"] = standardised_mse(test, pca_rec, mean, std)
    row["aekit_mse"] = standardised_mse(test, ae.reconstruct(test), mean, std)
    row["mse_ratio"] = row["aekit_mse"] / row["pca_mse"]

    if pyod:
        from pyod.models.iforest import IForest

        started = time.perf_counter()
        IForest(random_state=0).fit(train)
        row["iforest_seconds"] = time.perf_counter() - started

    # The batch and steps the fit chose; the validation tenth is not trained on
    n_fit = len(train) - round(0.1 * len(train))
    batch = fit_batch(ae, n_fit)
    steps = ae.n_iter_ * -(-n_fit // batch)
    row["steps"], row["batch"] = steps, batch
    row["aekit_ms_per_step"] = 1e3 * row["aekit_seconds"] / steps
    row["bare_ms_per_step"] = 1e3 * bare_seconds(ae, train, steps, batch) / steps
    row["outside_share"] = 1 - row["bare_ms_per_step"] / row["aekit_ms_per_step"]
    return row


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench fit-time")
    parser.add_argument("--no-pyod", action="store_true", help="aekit and PCA only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    Autoencoder(random_state=0).fit(table(100))
    first = time.perf_counter() - started
    print(f"first fit of the process (100 rows, torch's one-time start included): {first:.2f} s")
    rows = []
    for n in SIZES:
        row = one_size(n, not args.no_pyod)
        rows.append(row)
        iforest = f", IForest {row['iforest_seconds']:.2f} s" if "iforest_seconds" in row else ""
        print(
            f"{n:,} x {row['features']}: aekit {row['aekit_seconds']:.2f} s "
            f"({row['aekit_epochs']} epochs, batch {row['batch']}, {row['steps']} steps; "
            f"{row['aekit_stop']}){iforest}, PCA {row['pca_seconds']:.3f} s; held-out MSE "
            f"aekit {row['aekit_mse']:.4f} vs PCA(2) {row['pca_mse']:.4f} "
            f"(ratio {row['mse_ratio']:.3f}); per step {row['aekit_ms_per_step']:.2f} ms vs "
            f"bare {row['bare_ms_per_step']:.2f} ms: {100 * row['outside_share']:.0f} % outside "
            "the model's maths",
            flush=True,
        )
    return {"first_fit_seconds": first, "rows": rows, "threads": torch.get_num_threads()}
