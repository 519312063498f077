"""Series anomalies per time point: NASA's SMAP and MSL telemetry, every entity.

Each entity (a spacecraft channel) has a train series, free of labelled anomalies, and a test
series with labelled anomalous stretches (Hundman et al., KDD 2018). Every detector is fitted
on the train series and scores each step of the test series, in one run:

- aekit: ``Autoencoder(window_length="auto")``, its defaults otherwise (per-step score: each
  step's error averaged over the windows that cover it);
- PCA on the same windows (standardised by the train series' statistics, flattened), as many
  components as aekit's code, each window's per-step squared error mapped to steps the same way;
- IForest (PyOD, bench extra) on the same windows, each window's score given to its steps and
  averaged the same way;
- raw: each step's squared distance from the training mean (standardised), averaged the same
  way.

Per entity: ROC-AUC and average precision (AUC-PR) over the test steps, and wall seconds per
detector.

``--dev`` leaves every test series untouched, for choosing settings: each detector is fitted on
the first three quarters of the train series and scores the last quarter, into which three
stretches of made-up anomalies go on the telemetry channel (column 0), each a twentieth of that
quarter long: a level shift of two standard deviations, noise of one, and a flat line held at
the stretch's first value.

The data: ``../shared/data/smap_msl/SMAP.tar.gz`` (unpacked into a temporary folder), or
``--data`` an unpacked ``SMAP`` folder.
Run: python -m bench smap [--dev] [--every N] [--limit N] [--no-pyod] [--param KEY=VALUE]
"""

from __future__ import annotations

import argparse
import ast
import csv
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, roc_auc_score

from aekit import Autoencoder
from aekit.data.series import StepMeans, cut_windows, window_rows, window_starts
from bench.common import parameter

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "smap_msl" / "SMAP.tar.gz"
CHUNK = 512  # windows scored at once by the baselines


def entities(folder: Path) -> list[dict]:
    """Each entity's name, spacecraft and test labels (1 inside a labelled stretch)."""
    out = []
    with open(folder / "labeled_anomalies.csv", newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["num_values"])
            labels = np.zeros(n, dtype=np.int8)
            for a, b in ast.literal_eval(row["anomaly_sequences"]):
                labels[a : b + 1] = 1
            out.append({"name": row["chan_id"], "spacecraft": row["spacecraft"], "labels": labels})
    return out


def windows_of(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The windows flattened, as PCA and IForest read them."""
    return cut_windows(x, starts, length).reshape(len(starts), -1)


def baseline_scores(
    train: np.ndarray, test: np.ndarray, length: int, components: int, seed: int, pyod: bool
) -> dict[str, tuple[np.ndarray, float]]:
    """Per-step scores of the test series and seconds, for PCA, IForest and raw."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    train_z, test_z = (train - mean) / std, (test - mean) / std
    out: dict[str, tuple[np.ndarray, float]] = {}
    train_starts = window_starts(len(train), length, 1)
    test_starts = window_starts(len(test), length, 1)

    t0 = time.perf_counter()
    pca = PCA(components, random_state=seed).fit(windows_of(train_z, train_starts, length))
    means = StepMeans(len(test))
    for a in range(0, len(test_starts), CHUNK):
        starts = test_starts[a : a + CHUNK]
        w = windows_of(test_z, starts, length)
        error = (w - pca.inverse_transform(pca.transform(w))) ** 2
        means.add(starts, error.reshape(len(starts), length, -1).sum(-1))
    out["pca"] = (means.result()[:, 0], time.perf_counter() - t0)

    if pyod:
        from pyod.models.iforest import IForest

        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        fit_on = rng.choice(train_starts, size=min(len(train_starts), 4096), replace=False)
        forest = IForest(random_state=seed).fit(windows_of(train_z, np.sort(fit_on), length))
        means = StepMeans(len(test))
        for a in range(0, len(test_starts), CHUNK):
            starts = test_starts[a : a + CHUNK]
            scores = forest.decision_function(windows_of(test_z, starts, length))
            means.add(starts, np.repeat(scores[:, None], length, axis=1))
        out["iforest"] = (means.result()[:, 0], time.perf_counter() - t0)

    t0 = time.perf_counter()
    step = (test_z**2).sum(1)
    means = StepMeans(len(test))
    means.add(test_starts, step[window_rows(test_starts, length)])
    out["raw"] = (means.result()[:, 0], time.perf_counter() - t0)
    return out


def dev_split(train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first three quarters of a train series, its last quarter with made-up anomalies on
    channel 0, and their labels (see the module's docstring)."""
    cut = len(train) * 3 // 4
    fit, tail = train[:cut], train[cut:].copy()
    labels = np.zeros(len(tail), dtype=np.int8)
    rng = np.random.default_rng(seed)
    spread = max(float(fit[:, 0].std()), 1e-3)
    span = max(len(tail) // 20, 10)
    for k, a in enumerate(rng.choice(np.arange(0, len(tail) - span, span), 3, replace=False)):
        stretch = slice(int(a), int(a) + span)
        if k == 0:
            tail[stretch, 0] += 2 * spread * rng.choice([-1, 1])
        elif k == 1:
            tail[stretch, 0] += rng.normal(0, spread, span).astype(np.float32)
        else:
            tail[stretch, 0] = tail[stretch.start, 0]
        labels[stretch] = 1
    return fit, tail, labels


def run_entity(
    folder: Path, entity: dict, seed: int, pyod: bool, dev: bool, settings: dict
) -> dict:
    train = np.load(folder / "train" / f"{entity['name']}.npy").astype(np.float32)
    if dev:
        train, test, labels = dev_split(train, seed)
    else:
        test = np.load(folder / "test" / f"{entity['name']}.npy").astype(np.float32)
        labels = entity["labels"][: len(test)]
    t0 = time.perf_counter()
    ae = Autoencoder(window_length="auto", random_state=seed, **settings).fit(train)
    scores = {"aekit": (ae.anomaly_score(test), 0.0)}
    scores["aekit"] = (scores["aekit"][0], time.perf_counter() - t0)
    scores.update(baseline_scores(train, test, ae.window_length_, ae.latent_dim, seed, pyod))
    row: dict = {
        "entity": entity["name"],
        "spacecraft": entity["spacecraft"],
        "train_steps": len(train),
        "test_steps": len(test),
        "channels": train.shape[1],
        "window_length": ae.window_length_,
        "window_stride": ae.window_stride_,
        "anomalous_share": float(labels.mean()),
    }
    for name, (score, seconds) in scores.items():
        row[name] = {
            "roc_auc": float(roc_auc_score(labels, score)),
            "auc_pr": float(average_precision_score(labels, score)),
            "seconds": round(seconds, 2),
        }
    return row


def summary(rows: list[dict], detectors: list[str]) -> dict:
    out = {}
    for group in ("SMAP", "MSL", "all"):
        mine = [r for r in rows if group in ("all", r["spacecraft"])]
        if mine:
            out[group] = {
                d: {
                    m: float(np.mean([r[d][m] for r in mine]))
                    for m in ("roc_auc", "auc_pr", "seconds")
                }
                for d in detectors
            }
            out[group]["entities"] = len(mine)
    return out


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench smap")
    parser.add_argument("--data", type=Path, help="an unpacked SMAP folder")
    parser.add_argument("--limit", type=int, default=0, help="the first N entities only")
    parser.add_argument("--every", type=int, default=1, help="every Nth entity only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pyod", action="store_true", help="without IForest (PyOD)")
    parser.add_argument(
        "--dev", action="store_true", help="made-up anomalies in the train series' last quarter"
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="an Autoencoder setting other than the default (a study)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    settings = dict(parameter(text) for text in args.param)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.data
        if folder is None:
            with tarfile.open(ARCHIVE) as archive:
                archive.extractall(scratch, filter="data")
            folder = Path(scratch) / "SMAP"
        todo = entities(folder)
        todo = todo[:: args.every]
        todo = todo[: args.limit] if args.limit else todo
        rows = []
        for entity in todo:
            row = run_entity(folder, entity, args.seed, not args.no_pyod, args.dev, settings)
            rows.append(row)
            detectors = [k for k in ("aekit", "pca", "iforest", "raw") if k in row]
            print(
                f"{row['entity']:<7} W={row['window_length']:<3} "
                + "  ".join(
                    f"{d} {row[d]['roc_auc']:.3f}/{row[d]['auc_pr']:.3f} {row[d]['seconds']:.1f}s"
                    for d in detectors
                ),
                flush=True,
            )
    result = {
        "protocol": "dev" if args.dev else "test",
        "settings": settings,
        "rows": rows,
        "summary": summary(rows, detectors),
    }
    for group, means in result["summary"].items():
        print(
            f"{group} ({means['entities']}): "
            + "  ".join(
                f"{d} {means[d]['roc_auc']:.3f}/{means[d]['auc_pr']:.3f}" for d in detectors
            )
        )
    return result
