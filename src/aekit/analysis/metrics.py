"""Measures of a learned representation, as pure functions of arrays."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.neighbors import NearestNeighbors

# DBSCAN's density threshold: a point needs this many neighbours (itself included) to be a core.
DBSCAN_MIN_SAMPLES = 5


def dbscan_eps(Z: np.ndarray, min_samples: int = DBSCAN_MIN_SAMPLES) -> float:
    """A label-free radius for DBSCAN: the median distance to the ``min_samples``-th neighbour.

    The median of the k-distance curve sits below its knee, so dense regions become clusters and
    the sparse fringe becomes noise, without looking at any label.
    """
    k = min(min_samples, len(Z) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z)
    return float(np.median(distances[:, k]))


def scaled_codes(Z: np.ndarray) -> np.ndarray:
    """``Z`` centred and divided by its overall spread: one scale for every dimension.

    Not per dimension: that would blow a dimension the model left unused (a VAE's collapsed
    unit, a PCA component of noise) up to the spread of the informative ones, and clusters
    would then follow noise. A scatter of the codes showed two classes apart while KMeans on
    codes standardised per dimension scored an ARI near 0.
    """
    centred = Z - Z.mean(axis=0)
    spread = float(np.sqrt(np.mean(centred**2)))
    return centred / spread if spread > 0 else centred


def kmeans_clusters(Z: np.ndarray, n_clusters: int, random_state: int = 0) -> np.ndarray:
    """KMeans' cluster of each code (see :func:`scaled_codes` for the units)."""
    kmeans = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state)
    return kmeans.fit_predict(scaled_codes(Z))


def cluster_agreement(
    Z: np.ndarray,
    labels: np.ndarray,
    n_clusters: int,
    random_state: int = 0,
    kmeans: np.ndarray | None = None,
) -> dict[str, float]:
    """How well KMeans and DBSCAN on a representation recover known classes.

    ``Z`` is put in the units of :func:`scaled_codes` first. ``kmeans``: the clusters of
    :func:`kmeans_clusters` on ``Z`` where the caller has them already (a report draws them).
    Returns ARI and NMI for both algorithms, and DBSCAN's number of clusters and noise fraction.
    """
    if kmeans is None:
        kmeans = kmeans_clusters(Z, n_clusters, random_state)
    Z = scaled_codes(Z)
    dbscan = DBSCAN(eps=dbscan_eps(Z), min_samples=DBSCAN_MIN_SAMPLES).fit_predict(Z)
    return {
        "kmeans_ari": float(adjusted_rand_score(labels, kmeans)),
        "kmeans_nmi": float(normalized_mutual_info_score(labels, kmeans)),
        "dbscan_ari": float(adjusted_rand_score(labels, dbscan)),
        "dbscan_nmi": float(normalized_mutual_info_score(labels, dbscan)),
        "dbscan_clusters": float(len(set(dbscan) - {-1})),
        "dbscan_noise_fraction": float(np.mean(dbscan == -1)),
    }


def influence_shares(jacobians: np.ndarray) -> np.ndarray:
    """Share of each input feature in moving each latent dimension.

    Parameters
    ----------
    jacobians : ndarray of shape (n_samples, latent_dim, n_features) or (latent_dim, n_features)
        Derivatives of each latent coordinate with respect to each standardised input, at each
        sample (a linear map such as PCA has one Jacobian for all samples).

    Returns
    -------
    ndarray of shape (latent_dim, n_features)
        Mean absolute derivative over samples, each row scaled to sum to 1. For a nonlinear
        encoder the weights of its first layer say little, since later layers mix and gate them;
        the local derivative measures what the whole encoder does with each feature.
    """
    J = np.abs(np.asarray(jacobians, dtype=np.float64))
    if J.ndim == 3:
        J = J.mean(axis=0)
    totals = J.sum(axis=1, keepdims=True)
    return J / np.where(totals > 0, totals, 1.0)


def read_curves(
    history: list[dict[str, float]], loss: str = "mse", reconstruction: float | None = None
) -> tuple[str, str]:
    """A verdict on training curves and its explanation in plain words.

    The verdict is one of ``still improving``, ``overfitting``, ``underfitting``, ``converged``,
    by rules of thumb: the monitored loss still fell by more than 1 % over the last fifth of
    the epochs; the validation loss ended more than 5 % above its best while the training loss
    kept falling; the reconstruction error stayed above half of the variance of standardised
    data (a model that learned little beyond the mean); otherwise converged.

    The last rule reads ``reconstruction`` (MSE per feature in standardised units, measured on
    samples) where given, else the training loss when that is such an MSE (``loss="mse"``). A
    variational model's loss is a negative ELBO, which no such rule applies to: pass ``loss``
    ``"elbo"`` and its reconstruction error.
    """
    if not history:
        return "no history", "The run recorded no epochs."
    key = "val_loss" if all("val_loss" in h for h in history) else "train_loss"
    monitored = np.array([h[key] for h in history], dtype=float)
    train = np.array([h["train_loss"] for h in history], dtype=float)
    n = len(history)
    best = int(np.argmin(monitored))
    window = max(2, n // 5)
    recent = monitored[-window:]
    drop = (recent[0] - recent.min()) / max(abs(recent[0]), 1e-12) if n > 2 else 1.0
    rise = (monitored[-1] - monitored[best]) / max(abs(monitored[best]), 1e-12)
    train_falling = train[-1] < train[best] * 0.99 if best < n - 1 else False
    if key == "val_loss" and rise > 0.05 and train_falling:
        return "overfitting", (
            f"The validation loss reached its best at epoch {best + 1} and ended {100 * rise:.0f} "
            "% above it while the training loss kept falling: the model is learning the "
            "training samples themselves. The best epoch's weights are the ones kept; more data, "
            "more noise (denoising) or weight decay would help."
        )
    error, what = (
        (reconstruction, "The reconstruction error (MSE per feature) is")
        if reconstruction is not None
        else (float(train[-1]), "The training loss ended at")
    )
    if (reconstruction is not None or loss == "mse") and error > 0.5:
        return "underfitting", (
            f"{what} {error:.3g}, more than half of the data's variance "
            "in standardised units: the model reproduces little beyond the mean. A larger "
            "latent, wider hidden layers or a higher learning rate would help."
        )
    if drop > 0.01 and best >= n - window:
        return "still improving", (
            f"The {key.replace('_', ' ')} fell by {100 * drop:.1f} % over the last {window} "
            "epochs and was still at its best at the end: training longer (more epochs) "
            "would likely lower it further."
        )
    return "converged", (
        f"The {key.replace('_', ' ')} changed by less than 1 % over the last {window} epochs "
        f"(best at epoch {best + 1} of {n}): more epochs would not help; a different model "
        "size might."
    )
