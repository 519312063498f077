"""The report's anomaly section: held-out samples' scores against the run's threshold and,
where they have two classes, aekit's ROC-AUC and average precision beside two detectors fitted
on the run's training rows (:mod:`aekit.analysis.baselines`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aekit.analysis.baselines import anomalous_class, compare
from aekit.analysis.page import Page, figure, paragraph, table


def anomaly_section(page: Page, ae: Any, samples: Any, training: Any, seed: int) -> None:
    """Add the section for ``samples`` (the report's held-out samples); ``training``: the run's
    training store, None when it is gone."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from aekit.analysis.plots import RocDisplay, ScoreHistogramDisplay

    if not hasattr(ae, "threshold_"):
        return
    scores = ae.anomaly_score(samples.x)
    anomalous = anomalous_class(samples.labels)
    flagged = float(np.mean(scores > ae.threshold_))
    parts = [
        paragraph(f"{100 * flagged:.1f} % of the {samples.described} score above the threshold "
                  f"{ae.threshold_:.4g}."),
        figure(ScoreHistogramDisplay(scores, ae.threshold_, anomalous),
               "histogram of anomaly scores with the threshold"),
    ]  # fmt: skip
    if anomalous is not None:  # two classes among the samples, so both present
        parts.append(
            paragraph("The store has two classes; the rarer is taken as the anomalous one.")
        )
        parts += _beside_baselines(scores, anomalous, samples.x, training, seed)
        fpr, tpr, _ = roc_curve(anomalous, scores)
        auc = float(roc_auc_score(anomalous, scores))
        parts.append(figure(RocDisplay(fpr, tpr, auc), "ROC curve of the anomaly scores"))
    page.add("Anomaly scores", *parts)


def _beside_baselines(
    scores: np.ndarray, anomalous: np.ndarray, x: np.ndarray, training: Any, seed: int
) -> list[str]:
    if training is None:
        return [paragraph("The run's training store is gone, so PCA and IsolationForest, "
                          "fitted on its training rows, are not shown beside aekit.")]  # fmt: skip
    figures, fitted_on = compare(scores, anomalous, [x], training, seed)
    rows = [
        (name, f"{f['roc_auc']:.3f}", f"{f['average_precision']:.3f}")
        for name, f in figures.items()
    ]
    return [
        paragraph(
            f"aekit beside two detectors fitted on {fitted_on} training samples of "
            f"{training.path} (standardised): PCA as an anomaly detector (each sample's "
            "projection on every principal direction over that direction's variance, summed) "
            "and scikit-learn's IsolationForest, scoring the same samples."
        ),
        table(rows, ("detector", "ROC-AUC", "average precision")),
    ]
