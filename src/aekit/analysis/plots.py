"""Plots as Display objects: each holds the data it shows and draws only when asked.

matplotlib is imported inside ``plot`` so that importing aekit never pays for it, and figures are
built with ``matplotlib.figure.Figure`` rather than pyplot so that no GUI backend is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG under a temporary name and rename it, so no half-written file stays."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110)
    tmp.replace(path)
    return path


@dataclass
class LossCurveDisplay:
    """Training and validation loss per epoch, on a log scale."""

    history: Sequence[dict[str, float]]
    best_epoch: int | None = None
    quantity: str = "MSE, standardised units"  # what the loss is (see loss_quantity)

    def plot(self, ax: Any = None) -> Any:
        fig = None
        if ax is None:
            fig = _new_figure(6, 4)
            ax = fig.add_subplot()
        epochs = [h["epoch"] for h in self.history]
        ax.plot(epochs, [h["train_loss"] for h in self.history], label="train")
        if any("val_loss" in h for h in self.history):
            ax.plot(epochs, [h.get("val_loss", np.nan) for h in self.history], label="validation")
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch, color="grey", linestyle=":", label="weights kept")
        values = [h.get(k, np.nan) for h in self.history for k in ("train_loss", "val_loss")]
        # A log axis needs positive values: a Bernoulli VAE's loss is, a Gaussian one's may not be
        ax.set_yscale("log" if np.nanmin(values) > 0 else "linear")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"loss ({self.quantity})")
        ax.set_title("Loss curves")
        ax.legend()
        self.figure_ = fig if fig is not None else ax.figure
        return self


@dataclass
class LatentDisplay:
    """A 2-D or 3-D representation coloured by class.

    A 3-D latent is drawn once in 3-D and as its three 2-D projections; a 2-D one as one scatter.
    """

    Z: np.ndarray
    labels: np.ndarray | None = None
    class_names: Sequence[str] | None = None
    title: str = "latent space"
    axis_prefix: str = "z"

    def plot(self) -> Any:
        dims = self.Z.shape[1]
        if dims not in (2, 3):
            raise ValueError(f"LatentDisplay draws 2-D or 3-D latents; got {dims} dimensions.")
        fig = _new_figure(16 if dims == 3 else 5, 4)
        fig.suptitle(self.title)
        groups = self._groups()
        if dims == 3:
            ax3 = fig.add_subplot(1, 4, 1, projection="3d")
            for name, mask in groups:
                ax3.scatter(*self.Z[mask].T, s=10, label=name)
            ax3.set_xlabel(f"{self.axis_prefix}1")
            ax3.set_ylabel(f"{self.axis_prefix}2")
            ax3.set_zlabel(f"{self.axis_prefix}3")
            pairs = [(0, 1), (0, 2), (1, 2)]
        else:
            pairs = [(0, 1)]
        for k, (a, b) in enumerate(pairs):
            ax = fig.add_subplot(1, len(pairs) + (dims == 3), k + 1 + (dims == 3))
            for name, mask in groups:
                ax.scatter(self.Z[mask, a], self.Z[mask, b], s=10, label=name)
            ax.set_xlabel(f"{self.axis_prefix}{a + 1}")
            ax.set_ylabel(f"{self.axis_prefix}{b + 1}")
        if self.labels is not None:
            fig.axes[-1].legend(fontsize="small")
        self.figure_ = fig
        return self

    def _groups(self) -> list[tuple[str, np.ndarray]]:
        if self.labels is None:
            return [("all", np.ones(len(self.Z), dtype=bool))]
        groups = []
        for value in np.unique(self.labels):
            name = str(value)
            if self.class_names is not None:
                name = str(self.class_names[int(value)])
            groups.append((name, self.labels == value))
        return groups


@dataclass
class InfluenceDisplay:
    """Heatmaps of how much each input feature drives each latent dimension, one per method."""

    shares: dict[str, np.ndarray]  # method name -> (latent_dim, n_features)
    feature_names: Sequence[str]

    EXPLANATION = (
        "Each cell: mean |d latent / d feature| over the samples, features in standard "
        "deviations,\nas a share of the latent dimension's total (columns sum to 1). It measures "
        "what the whole encoder does, not one layer's weights."
    )

    def plot(self) -> Any:
        n = len(self.shares)
        fig = _new_figure(5 * n + 1, 0.32 * len(self.feature_names) + 2)
        axes = fig.subplots(1, n, squeeze=False)[0]
        image = None
        for ax, (method, S) in zip(axes, self.shares.items(), strict=True):
            image = ax.imshow(S.T, aspect="auto", cmap="viridis", vmin=0, vmax=float(S.max()))
            ax.set_xticks(range(S.shape[0]), [f"dim {j + 1}" for j in range(S.shape[0])])
            ax.set_yticks(range(len(self.feature_names)), list(self.feature_names))
            ax.set_title(method)
            for j in range(S.shape[0]):
                for i in range(S.shape[1]):
                    ax.text(
                        j,
                        i,
                        f"{S[j, i]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if S[j, i] < 0.6 * S.max() else "black",
                    )
        if image is not None:
            fig.colorbar(image, ax=list(axes), label="share of sensitivity")
        fig.suptitle("Which features drive each latent dimension")
        fig.supxlabel(self.EXPLANATION, fontsize=8)
        self.figure_ = fig
        return self


@dataclass
class LRRangeDisplay:
    """Smoothed loss against learning rate from a range test, with the suggested rate marked."""

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float

    def plot(self) -> Any:
        fig = _new_figure(6, 4)
        ax = fig.add_subplot()
        losses = np.asarray(self.losses, dtype=float)
        ax.plot(self.lrs, losses)
        at = int(np.argmin(np.abs(np.log(np.asarray(self.lrs) / self.suggestion))))
        ax.plot([self.lrs[at]], [losses[at]], "o", color="C3")
        ax.axvline(
            self.suggestion, color="C3", linestyle=":", label=f"suggested {self.suggestion:.2g}"
        )
        ax.set_xscale("log")
        # The test ends when the loss explodes; up to twice its starting value is where the
        # choice lies, and a log axis keeps that region from being a flat line
        finite = losses[np.isfinite(losses)]
        if len(finite) and finite.min() > 0:
            ax.set_yscale("log")
            ax.set_ylim(finite.min() / 1.2, max(finite.min() * 1.5, 2 * finite[0]))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed; cut at twice its start)")
        ax.set_title("Learning-rate range test")
        ax.legend()
        self.figure_ = fig
        return self


@dataclass
class LearningRateDisplay:
    """The learning rate per epoch, as the schedule set it."""

    history: Sequence[dict[str, float]]

    def plot(self) -> Any:
        fig = _new_figure(6, 2.6)
        ax = fig.add_subplot()
        ax.plot([h["epoch"] for h in self.history], [h["lr"] for h in self.history])
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.set_title("Learning rate")
        self.figure_ = fig
        return self


def _image_rows(ax_row: Any, images: np.ndarray, label: str) -> None:
    for ax, image in zip(ax_row, images, strict=False):
        picture = image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1)
        ax.imshow(picture, cmap="gray" if image.shape[-1] == 1 else None)
        ax.set_xticks([])
        ax.set_yticks([])
    ax_row[0].set_ylabel(label)


@dataclass
class ImageGridDisplay:
    """Rows of images, one label per row (originals against reconstructions, samples, paths).

    ``rows`` maps a row label to images of shape (n, H, W, C), scaled to [0, 1].
    """

    rows: dict[str, np.ndarray]
    title: str

    def plot(self) -> Any:
        n = max(len(images) for images in self.rows.values())
        fig = _new_figure(1.1 * n + 1, 1.2 * len(self.rows) + 0.5)
        axes = fig.subplots(len(self.rows), n, squeeze=False)
        for ax_row, (label, images) in zip(axes, self.rows.items(), strict=True):
            _image_rows(ax_row, images, label)
            for ax in ax_row[len(images) :]:
                ax.set_axis_off()
        fig.suptitle(self.title)
        self.figure_ = fig
        return self


@dataclass
class FeatureErrorDisplay:
    """Mean reconstruction error per feature (standardised units), largest first."""

    errors: np.ndarray
    feature_names: Sequence[str]
    baseline: np.ndarray | None = None  # the same measure for PCA of the same size

    def plot(self) -> Any:
        order = np.argsort(self.errors)[::-1]
        fig = _new_figure(7, 0.25 * len(order) + 1.5)
        ax = fig.add_subplot()
        y = np.arange(len(order))
        height = 0.4 if self.baseline is not None else 0.8
        ax.barh(y, self.errors[order], height=height, label="autoencoder")
        if self.baseline is not None:
            ax.barh(y + height, self.baseline[order], height=height, label="PCA")
            ax.legend()
        ax.set_yticks(y, [str(self.feature_names[i]) for i in order])
        ax.invert_yaxis()
        ax.set_xlabel("mean squared error, standardised units")
        ax.set_title("Reconstruction error per feature (held-out samples)")
        self.figure_ = fig
        return self


@dataclass
class ScoreHistogramDisplay:
    """Anomaly scores with the run's threshold; split by anomaly label when known."""

    scores: np.ndarray
    threshold: float
    anomalous: np.ndarray | None = None

    def plot(self) -> Any:
        fig = _new_figure(6, 3.5)
        ax = fig.add_subplot()
        bins = np.histogram_bin_edges(self.scores, bins=50)
        if self.anomalous is None:
            ax.hist(self.scores, bins=bins)
        else:
            ax.hist(self.scores[~self.anomalous], bins=bins, alpha=0.7, label="normal")
            ax.hist(self.scores[self.anomalous], bins=bins, alpha=0.7, label="anomalous")
        ax.axvline(self.threshold, color="black", linestyle="--", label="threshold")
        ax.set_yscale("log")
        ax.set_xlabel("anomaly score")
        ax.set_ylabel("samples")
        ax.set_title("Anomaly scores (held-out samples)")
        ax.legend()
        self.figure_ = fig
        return self


@dataclass
class RocDisplay:
    """ROC curve of anomaly scores against known anomaly labels."""

    fpr: np.ndarray
    tpr: np.ndarray
    auc: float

    def plot(self) -> Any:
        fig = _new_figure(4, 4)
        ax = fig.add_subplot()
        ax.plot(self.fpr, self.tpr, label=f"ROC-AUC {self.auc:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title("ROC")
        ax.legend(loc="lower right")
        self.figure_ = fig
        return self
