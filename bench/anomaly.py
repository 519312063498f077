"""Anomaly detection: aekit's Autoencoder against PyOD's AutoEncoder, both with defaults.

Cases (scikit-learn's bundled data): digits with class 0, 1 or 7 as the anomaly at 5 %
contamination, breast cancer with malignant as the anomaly at 10 %. For each case and seed the
normal samples are split 60/40 into train and test, and anomalies are added to the test set
only, at the contamination rate (novelty detection: the detectors learn what normal looks
like). Each detector is fitted on the train set and scored by ROC-AUC on the test set; both see
the same splits. PyOD is an optional bench dependency (pip install pyod).
Run: python -m bench anomaly [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import roc_auc_score

from aekit import Autoencoder

CASES = [("digits-0", 0.05), ("digits-1", 0.05), ("digits-7", 0.05), ("breast-cancer", 0.10)]


def case_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and a boolean anomaly flag for one case."""
    if name == "breast-cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return X.astype(np.float32), y == 0  # 0 is malignant
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y == int(name.split("-")[1])


def novelty_split(
    anomalous: np.ndarray, contamination: float, seed: int, train_share: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Train rows (normal samples only) and test rows (the other normal samples, with
    anomalies added so that they make up ``contamination`` of the test set)."""
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(~anomalous))
    outliers = rng.permutation(np.flatnonzero(anomalous))
    n_train = round(train_share * len(normal))
    k = round(contamination / (1 - contamination) * (len(normal) - n_train))
    if k > len(outliers):
        raise ValueError("not enough anomalies for this contamination")
    test = rng.permutation(np.concatenate([normal[n_train:], outliers[:k]]))
    return normal[:n_train], test


def _pyod_scores(X_train: np.ndarray, X_test: np.ndarray, contamination: float, seed: int):
    import torch
    from pyod.models.auto_encoder import AutoEncoder as PyODAutoEncoder

    torch.manual_seed(seed)
    detector = PyODAutoEncoder(contamination=contamination, random_state=seed, verbose=0)
    detector.fit(X_train)
    return detector.decision_function(X_test)  # higher is more anomalous


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench anomaly")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-pyod", action="store_true", help="aekit only (PyOD not installed)")
    args = parser.parse_args(argv)
    rows = []
    for name, contamination in CASES:
        X, anomalous = case_data(name)
        for seed in range(args.seeds):
            train, test = novelty_split(anomalous, contamination, seed)
            t0 = time.perf_counter()
            ae = Autoencoder(contamination=contamination, random_state=seed).fit(X[train])
            ae_auc = roc_auc_score(anomalous[test], -ae.score_samples(X[test]))
            row = {"case": name, "seed": seed, "aekit": ae_auc}
            row["aekit_seconds"] = time.perf_counter() - t0
            if not args.no_pyod:
                t0 = time.perf_counter()
                scores = _pyod_scores(X[train], X[test], contamination, seed)
                row["pyod"] = roc_auc_score(anomalous[test], scores)
                row["pyod_seconds"] = time.perf_counter() - t0
            rows.append(row)
            print(
                f"{name:<14} seed {seed}  aekit {ae_auc:.3f}"
                + (f"  pyod {row['pyod']:.3f}" if "pyod" in row else ""),
                flush=True,
            )
    result: dict = {"rows": rows, "cases": {}}
    for name, _ in CASES:
        mine = [r for r in rows if r["case"] == name]
        result["cases"][name] = {
            k: float(np.mean([r[k] for r in mine])) for k in ("aekit", "pyod") if k in mine[0]
        }
    for k in ("aekit", "pyod"):
        if k in rows[0]:
            result[f"mean_{k}"] = float(np.mean([c[k] for c in result["cases"].values()]))
    print(
        "mean ROC-AUC over cases: "
        + ", ".join(
            f"{k} {result[f'mean_{k}']:.3f}" for k in ("aekit", "pyod") if f"mean_{k}" in result
        )
    )
    return result
