"""The anomaly threshold of a trained model, set on held-out normal data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aekit.anomaly import anomaly_score
from aekit.data.stats import RunningStats
from aekit.errors import SettingError
from aekit.memory import GrowingArray
from aekit.models import AutoencoderModule
from aekit.objectives import Objective
from aekit.params import Real, invalid

_SHARE = Real(0, 0.5, low_open=True, high_open=False)

# Fewer calibration samples than this above the threshold make its false-positive rate a guess:
# with k of them, the rate seen on new normal data varies by about 1/sqrt(k) of itself
STABLE_ABOVE = 10


@dataclass
class Calibration:
    """A threshold on the anomaly score and how it was chosen.

    ``latent_std`` is the spread of each code dimension on the same data: the unit of the
    quantiser of :mod:`aekit.apply.compress`.
    """

    threshold: float
    info: dict[str, Any]
    latent_std: np.ndarray


def score_name(model: AutoencoderModule) -> str:
    """What the model's anomaly score is, in words (see :mod:`aekit.anomaly`)."""
    if model.score_weighted:
        what = "squared residual weighted per feature, plus the code's Mahalanobis distance"
    else:
        what = "negative ELBO" if model.variational else "reconstruction error"
    if model.early is None:
        return what
    return (
        f"{what}, of the final model and of its copy after epoch {model.early_epoch}, each "
        "over its median on training data, averaged"
    )


def calibrate(
    model: AutoencoderModule,
    beta: float,
    batches: Iterable[torch.Tensor],
    *,
    fpr: float | None = None,
    contamination: float | None = None,
) -> Calibration:
    """Set the threshold at the upper ``fpr`` (or ``contamination``) quantile of the anomaly
    scores of ``batches`` (raw samples on the model's device).

    ``fpr`` is the share of these normal samples to flag (the false-positive rate aimed at);
    ``contamination`` the share of anomalies they are believed to hold. One of them is given.
    """
    if (fpr is None) == (contamination is None):
        raise SettingError("give fpr or contamination, not both.")
    method, share = ("fpr", fpr) if fpr is not None else ("contamination", contamination)
    assert share is not None  # one of the two is given (checked above)
    if not _SHARE.check(share):
        raise invalid(method, _SHARE.describe(), share)
    objective = Objective(None, None, beta)
    # The exact quantile keeps each sample's score (4 bytes); the codes only their moments
    errors = GrowingArray(np.float32)
    codes = RunningStats(model.latent_dim)
    with torch.no_grad():
        for x in batches:
            errors.append(anomaly_score(objective, model, x).float().cpu().numpy())
            codes.update(model.encode(x).float().cpu().numpy())
    if not len(errors):
        raise SettingError("calibrating a threshold needs at least one sample.")
    scores = errors.values()
    threshold, info = _threshold(scores, method, float(share), score_name(model))
    latent_std = np.maximum(codes.std, 1e-8).astype(np.float32)
    return Calibration(threshold, info, latent_std)


def _threshold(
    scores: np.ndarray, method: str, share: float, score: str, unit: str = "samples"
) -> tuple[float, dict[str, Any]]:
    """The upper ``share`` quantile of ``scores`` and how it was chosen."""
    # 'higher' keeps the flagged share of the calibration data at most the asked share
    threshold = float(np.quantile(scores, 1 - share, method="higher"))
    info: dict[str, Any] = {
        "method": method,
        "share": share,
        "samples": len(scores),
        "score": score,
    }
    if unit != "samples":  # what the count counts
        info["unit"] = unit
    above = len(scores) * share
    if above < STABLE_ABOVE:
        enough = int(np.ceil(STABLE_ABOVE / share))
        how = (
            f"calibrate on at least {enough} normal {unit} (aekit score --{method} {share:g} "
            "--normal SRC)"
            if unit == "samples"
            else f"hold out at least {enough} normal {unit} (a larger --val-fraction at ingest)"
        )
        info["caution"] = (
            f"set on {len(scores)} {unit}, of which {above:.3g} lie above a {method} of "
            f"{share:g}: too few for the rate to hold on new data; {how}"
        )
    return threshold, info


def with_threshold(calibration: Calibration, scores: np.ndarray, share: float) -> Calibration:
    """``calibration`` with its threshold set on the scores of time steps instead (a series:
    see :mod:`aekit.training.series`), at the upper ``share`` (contamination) quantile."""
    if not len(scores):
        raise SettingError("calibrating a threshold needs at least one time step.")
    score = f"{calibration.info['score']}, per time step (the mean over its windows)"
    threshold, info = _threshold(scores, "contamination", share, score, "time steps")
    return Calibration(
        threshold, {**info, "data": calibration.info.get("data")}, calibration.latent_std
    )
