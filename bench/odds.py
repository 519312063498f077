"""Anomaly detection on 28 tabular sets: aekit with defaults against PyOD's detectors.

Data: the 17 ODDS sets (``../shared/data/odds/*.mat``, keys ``X`` and ``y``, 1 = anomaly) and 11
ADBench sets (``../shared/data/adbench/*.npz``), none of which is among the ODDS files. Seeds 0-4,
fixed before looking at any figure. One protocol for all 28, ADBench's: for each set and seed a
stratified 60/40 split, the training part capped at 10,000 rows drawn at random (so that the
large sets stay affordable), the test part whole, under two protocols:

- *unsupervised* (PyOD's benchmark): every detector is fitted on the training part, anomalies
  included, and scored on the test part;
- *novelty*: fitted on the training part's normal samples only, scored on the same test part.

Detectors: aekit's ``Autoencoder()`` with defaults (``-score_samples``, raw features: it
standardises itself), and PyOD's IForest, ECOD, PCA and AutoEncoder with their defaults, on
features standardised with the training part's mean and deviation, as PyOD's benchmark does.
Figures: ROC-AUC and average precision on the test part, the mean over seeds per set, then the
mean over sets; the sets where aekit is more than 0.05 below the best baseline are named, and
for every detector the sets where it is more than 0.05 below the best of the others.
PyOD is a bench-only dependency (``pip install pyod``).
Settings are chosen with ``--dev``: each seed's (capped) training part is split again (60/40,
stratified), fitted on the first part and scored on the second, so the test parts stay unseen.
Run: python -m bench odds [--seeds 5] [--sets cardio,thyroid] [--param latent_dim=8] [--dev]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from aekit import Autoencoder
from bench.common import parameter

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
ODDS = (
    "arrhythmia cardio glass ionosphere letter lympho mnist musk optdigits pendigits pima "
    "satellite satimage-2 shuttle vertebral vowels wbc"
).split()
# ADBench's "Classical" sets beside the ODDS ones, by their names without the number
ADBENCH = {
    "ALOI": "1_ALOI",
    "annthyroid": "2_annthyroid",
    "campaign": "5_campaign",
    "celeba": "8_celeba",
    "cover": "10_cover",
    "donors": "11_donors",
    "smtp": "34_smtp",
    "SpamBase": "35_SpamBase",
    "thyroid": "38_thyroid",
    "Waveform": "41_Waveform",
    "yeast": "47_yeast",
}
SETS = ODDS + list(ADBENCH)
TRAIN_CAP = 10_000  # training rows at most, drawn at random (ADBench's cap)
PROTOCOLS = ("unsupervised", "novelty")
BASELINES = ("IForest", "ECOD", "PCA", "AutoEncoder")


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name in ADBENCH:
        with np.load(DATA / "adbench" / f"{ADBENCH[name]}.npz", allow_pickle=False) as data:
            X, y = data["X"], data["y"]
    else:
        from scipy.io import loadmat

        data = loadmat(DATA / "odds" / f"{name}.mat")
        X, y = data["X"], data["y"]
    return np.asarray(X, dtype=np.float64), np.asarray(y).ravel().astype(int)


def split(X: np.ndarray, y: np.ndarray, seed: int, dev: bool = False) -> tuple:
    """(X_train, X_test, y_train, y_test) of one seed: stratified 60/40, the training part
    capped at ``TRAIN_CAP`` random rows; with ``dev``, that part split again 60/40."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, random_state=seed, stratify=y
    )
    if len(X_train) > TRAIN_CAP:
        keep = np.sort(np.random.default_rng(seed).choice(len(X_train), TRAIN_CAP, replace=False))
        X_train, y_train = X_train[keep], y_train[keep]
    if dev:  # choices are made here: the training part split again, the test part unseen
        X_train, X_test, y_train, y_test = train_test_split(
            X_train, y_train, test_size=0.4, random_state=1000 + seed, stratify=y_train
        )
    return X_train, X_test, y_train, y_test


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    from sklearn.preprocessing import StandardScaler  # as PyOD's benchmark (near-zero std: 1)

    scaler = StandardScaler().fit(train)
    return [scaler.transform(a) for a in (train, *others)]


def _pyod(name: str, seed: int):
    import torch

    if name == "IForest":
        from pyod.models.iforest import IForest

        return IForest(random_state=seed)
    if name == "ECOD":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "PCA":
        from pyod.models.pca import PCA

        return PCA(random_state=seed)
    from pyod.models.auto_encoder import AutoEncoder

    torch.manual_seed(seed)
    return AutoEncoder(random_state=seed, verbose=0)


def scores(detector: str, fit_on: np.ndarray, test: np.ndarray, seed: int, params: dict) -> tuple:
    """Anomaly scores of ``test`` (higher: more anomalous) and the fit's seconds."""
    started = time.perf_counter()
    if detector == "aekit":
        ae = Autoencoder(random_state=seed, **params).fit(fit_on.astype(np.float32))
        result = -ae.score_samples(test.astype(np.float32))
    else:
        train_std, test_std = _standardise(fit_on, test)
        model = _pyod(detector, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(train_std)
            result = model.decision_function(test_std)
    # PyOD's PCA divides by each component's variance: a (near) constant feature gives inf.
    # The ranking is what counts, so an infinite score ranks above every finite one
    big = np.finfo(np.float64).max
    result = np.nan_to_num(np.asarray(result, dtype=np.float64), posinf=big, neginf=-big)
    return result, time.perf_counter() - started


def run_set(
    name: str,
    seeds: int,
    detectors: list[str],
    params: dict,
    protocols: list[str],
    dev: bool = False,
) -> list[dict]:
    X, y = load(name)
    rows = []
    for seed in range(seeds):
        X_train, X_test, y_train, y_test = split(X, y, seed, dev)
        for protocol in protocols:
            fit_on = X_train if protocol == "unsupervised" else X_train[y_train == 0]
            for detector in detectors:
                s, seconds = scores(detector, fit_on, X_test, seed, params)
                rows.append(
                    {
                        "set": name,
                        "seed": seed,
                        "protocol": protocol,
                        "detector": detector,
                        "roc_auc": float(roc_auc_score(y_test, s)),
                        "ap": float(average_precision_score(y_test, s)),
                        "seconds": seconds,
                    }
                )
    return rows


def _mean(rows: list[dict], key: str, **where: str) -> float:
    values = [r[key] for r in rows if all(r[k] == v for k, v in where.items())]
    return float(np.mean(values)) if values else float("nan")


def sets_behind(
    rows: list[dict], sets: list[str], detectors: list[str], protocol: str, margin: float = 0.05
) -> dict[str, list[str]]:
    """For each detector, the sets where its mean ROC-AUC is more than ``margin`` below the
    best of the other detectors: aekit's goal, asked of every detector in the run."""
    auc = {
        (name, d): _mean(rows, "roc_auc", set=name, protocol=protocol, detector=d)
        for name in sets
        for d in detectors
    }
    return {
        d: [
            name
            for name in sets
            if auc[name, d] < max(auc[name, other] for other in detectors if other != d) - margin
        ]
        for d in detectors
        if len(detectors) > 1
    }


def summarise(rows: list[dict], sets: list[str], detectors: list[str], protocols) -> dict:
    summary: dict = {}
    for protocol in protocols:
        print(f"\n{protocol}: ROC-AUC / average precision, mean of seeds; seconds per fit")
        print(f"{'set':12s}" + "".join(f"{d:>20s}" for d in detectors))
        losses = []
        for name in sets:
            cells = []
            for d in detectors:
                auc = _mean(rows, "roc_auc", set=name, protocol=protocol, detector=d)
                ap = _mean(rows, "ap", set=name, protocol=protocol, detector=d)
                sec = _mean(rows, "seconds", set=name, protocol=protocol, detector=d)
                cells.append(f"{auc:.3f}/{ap:.3f} {sec:5.1f}s")
            print(f"{name:12s}" + "".join(f"{c:>20s}" for c in cells))
        behind = sets_behind(rows, sets, detectors, protocol)
        for name in behind.get("aekit", []):  # aekit's goal: the best baseline, named
            auc = {
                d: _mean(rows, "roc_auc", set=name, protocol=protocol, detector=d)
                for d in detectors
            }
            best = max(value for d, value in auc.items() if d != "aekit")
            losses.append(f"{name} ({auc['aekit']:.3f} vs best {best:.3f})")
        means = {
            d: float(
                np.mean(
                    [_mean(rows, "roc_auc", set=s, protocol=protocol, detector=d) for s in sets]
                )
            )
            for d in detectors
        }
        aps = {
            d: float(
                np.mean([_mean(rows, "ap", set=s, protocol=protocol, detector=d) for s in sets])
            )
            for d in detectors
        }
        print(
            "mean over sets: "
            + ", ".join(f"{d} {means[d]:.3f}/{aps[d]:.3f}" for d in detectors)
            + f"\naekit more than 0.05 below the best baseline on: {', '.join(losses) or 'none'}"
        )
        far_behind = sets_behind(rows, sets, detectors, protocol, margin=0.1)
        for margin, table in ((0.05, behind), (0.1, far_behind)):
            if table:  # the same rule for every detector: how hard it is to meet
                print(f"more than {margin} below the best other detector:")
                for d, names in table.items():
                    print(f"  {d:12s} {len(names):2d}  {', '.join(names)}")
        summary[protocol] = {
            "roc_auc": means,
            "ap": aps,
            "losses": losses,
            "behind": behind,
            "behind_0.1": far_behind,
        }
    return summary


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench odds")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--no-pyod", action="store_true", help="aekit only")
    parser.add_argument("--only-pyod", action="store_true", help="the baselines only")
    parser.add_argument(
        "--dev",
        action="store_true",
        help="score a stratified 40 %% of each training part, fitted on the rest: for choosing "
        "settings without looking at the test parts",
    )
    parser.add_argument(
        "--param", action="append", default=[], help="an Autoencoder parameter, e.g. latent_dim=8"
    )
    args = parser.parse_args(argv)
    sets, protocols = args.sets.split(","), args.protocols.split(",")
    detectors = ([] if args.only_pyod else ["aekit"]) + ([] if args.no_pyod else list(BASELINES))
    params = dict(parameter(p) for p in args.param)
    rows: list[dict] = []
    for name in sets:
        started = time.perf_counter()
        rows += run_set(name, args.seeds, detectors, params, protocols, args.dev)
        print(f"  {name}: {time.perf_counter() - started:.0f} s", flush=True)
    summary = summarise(rows, sets, detectors, protocols)
    return {"params": params, "dev": args.dev, "rows": rows, "summary": summary}
