"""Compression on digits: aekit's .aek latents against PCA coefficients stored as float16.

30 % stratified test split of scikit-learn's digits (raw pixels 0-16). For each PCA size k, the
baseline stores k float16 coefficients per test digit; aekit compresses the test digits with
default autoencoders (latent 8 and 16) at a sweep of quantisation steps. At each PCA size we
take the smallest .aek file whose distortion (MSE, raw units) is at most PCA's, and report its
bytes against PCA's. Neither side counts its model (the PCA basis, the decoder). Also reported:
how close the entropy coder comes to the order-0 entropy of the quantised symbols.
Run: python -m bench compress
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from aekit import Autoencoder

STEPS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def _entropy_bits(symbols: np.ndarray) -> float:
    """Order-0 entropy of each column, summed over columns and rows."""
    total = 0.0
    for column in symbols.T:
        _, counts = np.unique(column, return_counts=True)
        p = counts / counts.sum()
        total += -np.sum(counts * np.log2(p))
    return float(total)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench compress")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    train, test = train_test_split(X, test_size=0.3, stratify=y, random_state=args.seed)

    points = []  # (latent, step, bytes, mse)
    coder = []
    for latent in (8, 16):
        ae = Autoencoder(latent_dim=latent, random_state=args.seed).fit(train)
        codes = ae.transform(test)
        for step in STEPS:
            data = ae.compress(test, step=step)
            report = ae.compression_report_
            points.append((latent, step, len(data), report["mse"]))
            symbols = np.round(codes / (step * ae.latent_std_))
            header = len(data) - _payload_bytes(data)
            coder.append(8 * _payload_bytes(data) / _entropy_bits(symbols))
            print(
                f"aekit latent {latent:>2} step {step:<5} {len(data):>6} bytes "
                f"({8 * len(data) / len(test):5.1f} bits/digit, header {header} B) "
                f"MSE {report['mse']:.3f}"
            )
    rows = []
    for k in (4, 8, 16, 24):
        pca = PCA(k, random_state=args.seed).fit(train)
        coefficients = pca.transform(test).astype(np.float16)
        mse = float(np.mean((pca.inverse_transform(coefficients.astype(np.float64)) - test) ** 2))
        fits = [p for p in points if p[3] <= mse]
        best = min(fits, key=lambda p: p[2]) if fits else None
        row = {"pca_k": k, "pca_bytes": coefficients.nbytes, "pca_mse": mse}
        if best:
            row.update(aekit_latent=best[0], aekit_step=best[1], aekit_bytes=best[2])
            row.update(aekit_mse=best[3], ratio=best[2] / coefficients.nbytes)
        rows.append(row)
        print(
            f"PCA {k:>2} float16: {coefficients.nbytes:>6} bytes, MSE {mse:.3f} -> "
            + (
                f"aekit {best[2]} bytes (latent {best[0]}, step {best[1]}, MSE {best[3]:.3f}), "
                f"ratio {best[2] / coefficients.nbytes:.3f}"
                if best
                else "aekit does not reach this distortion"
            )
        )
    gap = float(np.median(coder))
    print(f"entropy coder: payload / order-0 entropy of the symbols, median {gap:.3f}")
    return {"points": points, "rows": rows, "coder_over_entropy": gap, "test_digits": len(test)}


def _payload_bytes(data: bytes) -> int:
    import json
    import struct

    size = struct.unpack("<I", data[4:8])[0]
    return int(json.loads(data[8 : 8 + size])["payload_bytes"])
