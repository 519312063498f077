"""Two detectors beside aekit's anomaly score wherever the scored data have labels.

A user should see on their own data whether the autoencoder earns its cost. Both detectors are
fitted on the same sample of training rows (at most ``FIT_ROWS``, drawn by a seed, so memory
stays bounded whatever the store's size), in units standardised by that sample, and score the
same rows as aekit:

- **PCA as an anomaly detector**: each sample's projection on every principal direction,
  squared and divided by that direction's variance, summed (PyOD's ``PCA`` score, built on
  scikit-learn's PCA). A deviation along a direction in which normal samples hardly vary counts
  for much. Directions without variance (a constant feature) are left out rather than divided
  by zero.
- **scikit-learn's IsolationForest** with its defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from aekit.models.scaling import usable_std

FIT_ROWS = 10_000
NAMES = ("PCA detector", "IsolationForest")


def training_sample(store: Any, seed: int, rows: int = FIT_ROWS) -> np.ndarray:
    """At most ``rows`` training samples of ``store``, drawn by ``seed``, flattened. (n, F)"""
    index = np.asarray(store.train_index)
    picked = np.random.default_rng(seed).choice(len(index), min(rows, len(index)), replace=False)
    x = store.read(np.sort(index[picked]))
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


class Baselines:
    """The two detectors, fitted on ``train`` (n, F) raw samples."""

    def __init__(self, train: np.ndarray, seed: int = 0) -> None:
        from sklearn.decomposition import PCA
        from sklearn.ensemble import IsolationForest

        train = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
        self.mean = train.mean(0)
        self.std = usable_std(train.std(0))
        z = self._standardise(train)
        self.pca = PCA(svd_solver="full").fit(z)
        variance = self.pca.explained_variance_
        self.kept = variance > 1e-10 * max(float(variance.max(initial=0.0)), 1e-300)
        self.forest = IsolationForest(random_state=seed).fit(z)

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return (x - self.mean) / self.std

    def scores(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Each detector's anomaly scores of raw samples ``x``, higher for more anomalous."""
        z = self._standardise(x)
        projected = self.pca.transform(z)[:, self.kept]
        pca = (projected**2 / self.pca.explained_variance_[self.kept]).sum(1)
        return {"PCA detector": pca, "IsolationForest": -self.forest.score_samples(z)}


def anomalous_class(labels: np.ndarray | None) -> np.ndarray | None:
    """Which samples are anomalies, where ``labels`` hold two classes: the rarer one. None
    without labels or with another number of classes."""
    if labels is None:
        return None
    values, counts = np.unique(labels, return_counts=True)
    if len(values) != 2:
        return None
    return np.asarray(labels) == values[np.argmin(counts)]


def agreement(scores: dict[str, np.ndarray], anomalous: np.ndarray) -> dict[str, dict[str, float]]:
    """ROC-AUC and average precision of each detector's ``scores`` against ``anomalous``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        name: {
            "roc_auc": float(roc_auc_score(anomalous, s)),
            "average_precision": float(average_precision_score(anomalous, s)),
        }
        for name, s in scores.items()
    }


def compare(
    scores: np.ndarray,
    anomalous: np.ndarray,
    samples: Iterable[np.ndarray],
    training: Any,
    seed: int = 0,
) -> tuple[dict[str, dict[str, float]], int]:
    """aekit's ``scores`` and the two detectors' against ``anomalous``: the detectors fitted on
    a sample of ``training`` (a store's training split), scored on ``samples`` (raw batches, in
    the order of ``scores``). Returns the figures per detector and the rows fitted on."""
    fit_on = training_sample(training, seed)
    detectors = Baselines(fit_on, seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    for x in samples:
        for name, values in detectors.scores(x).items():
            parts[name].append(values)
    every = {"aekit": scores, **{name: np.concatenate(v) for name, v in parts.items()}}
    return agreement(every, anomalous), len(fit_on)
