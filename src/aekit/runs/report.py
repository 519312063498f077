"""``RUN/report.html``: one self-contained page about a run, assembled from what it has.

Every figure is a Display from :mod:`aekit.analysis.plots`, rendered by
:mod:`aekit.analysis.page` into one file that loads nothing from anywhere else. Sections appear
only when the run has what they need: labels for clustering and colours, tables for
attributions, images for image grids, a variational model for samples. Figures are computed
on up to ``max_samples`` held-out samples (the store's validation split, or all of it when it
has none), read once.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit.analysis.page import Page, figure, paragraph, table
from aekit.atomic import write_text
from aekit.data.store import Store, exists, open_store
from aekit.errors import AekitError
from aekit.estimator import Autoencoder
from aekit.runs.folder import RunFolder
from aekit.runs.model import load


def _store_for(folder: RunFolder, store: str | Path | None) -> Store | None:
    if store is None:
        store = folder.training_store()
    if store is None:
        return None
    if not exists(store):
        raise AekitError(f"the store {store} is gone; pass the data with --store STORE.")
    return open_store(store)


def write_report(
    run: str | Path, store: str | Path | None = None, *, max_samples: int = 2000, seed: int = 0
) -> Path:
    """Write ``RUN/report.html`` for the run in folder ``run`` and return its path.

    Parameters
    ----------
    run : path-like
        A run folder (``model.json``, ``model.safetensors``; ``metrics.csv`` and
        ``config.toml`` when ``aekit train`` wrote it).
    store : path-like, optional
        Data to draw the figures from (default: the store the run was trained on). Without
        data, the report has the run and its curves only.
    max_samples : int
        Held-out samples the figures are computed on.
    """
    folder = RunFolder(run)
    ae = load(folder.path)
    history = folder.history()
    data = _store_for(folder, store)
    page = Page(f"aekit report: {folder.path.name}")
    samples = _samples(data, ae, max_samples, seed) if data is not None else None
    _run_section(page, folder.path, ae, history, data, samples)
    if history:
        _curves_section(page, ae, history)
    if samples is not None:
        _data_sections(page, ae, data, samples, seed)
    write_text(folder.report, page.render())
    return folder.report


@dataclass
class _Samples:
    """The held-out samples the figures use, and the baseline every section compares with:
    PCA of the latent's size, fitted on training samples, all in the model's standardised
    units (flattened)."""

    x: np.ndarray  # raw units, float32
    labels: np.ndarray | None
    split: str
    pca: Any
    standardised: np.ndarray  # the samples
    autoencoder: np.ndarray  # the model's reconstructions of them
    baseline: np.ndarray  # PCA's reconstructions of them


def _samples(store: Any, ae: Autoencoder, max_samples: int, seed: int) -> _Samples:
    import torch
    from sklearn.decomposition import PCA

    def standardise(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            scaler = ae.model_.scaler
            return (
                scaler(torch.from_numpy(x).to(scaler.mean.device)).reshape(len(x), -1).cpu().numpy()
            )

    rng = np.random.default_rng(seed)
    held_out = store.val_index if len(store.val_index) else np.arange(store.n)
    split = "validation split" if len(store.val_index) else "all samples"
    rows = np.sort(rng.choice(held_out, min(max_samples, len(held_out)), replace=False))
    train = store.train_index
    train_rows = np.sort(rng.choice(train, min(max_samples, len(train)), replace=False))
    x = store.read(rows).astype(np.float32)
    k = min(ae.latent_dim, len(train_rows), int(np.prod(ae.sample_shape_)))
    pca = PCA(k, random_state=0).fit(standardise(store.read(train_rows).astype(np.float32)))
    T = standardise(x)
    return _Samples(
        x=x,
        labels=store.labels[rows] if store.labels is not None else None,
        split=split,
        pca=pca,
        standardised=T,
        autoencoder=standardise(ae.reconstruct(x)),
        baseline=pca.inverse_transform(pca.transform(T)),
    )


def _run_section(
    page: Page, run: Path, ae: Autoencoder, history: list, data: Any, samples: _Samples | None
) -> None:
    description = json.loads((run / "model.json").read_text())
    n_params = sum(p.numel() for p in ae.model_.parameters())
    rows = [
        ("data", f"{data.path} ({data.n} samples of shape {tuple(data.sample_shape)})"
         if data is not None else "not available (pass --store)"),
        ("model", f"{ae.kind}, latent {ae.latent_dim}, {n_params:,} parameters, loss {ae.loss_}"),
    ]  # fmt: skip
    if ae.noise or ae.sparsity:
        rows.append(("objective", ", ".join(
            f"{k} {v}" for k, v in (("noise", ae.noise), ("sparsity", ae.sparsity)) if v
        )))  # fmt: skip
    if history:
        seconds = sum(h.get("seconds", 0.0) for h in history)
        speed = np.median([h["samples_per_s"] for h in history if "samples_per_s" in h] or [0])
        rows += [
            ("epochs", f"{len(history)}"),
            ("training time", f"{seconds:.1f} s"),
            ("throughput", f"{speed:,.0f} samples/s (median epoch)"),
        ]
    rows.append(("stopped because", str(description.get("stop_reason") or "unknown")))
    if hasattr(ae, "threshold_"):
        info = ae.threshold_info_
        rows.append(
            (
                "anomaly threshold",
                f"{ae.threshold_:.4g} ({info['method']} "
                f"{info['share']:g} on {info.get('data', 'held-out data')})",
            )
        )
    if samples is not None:
        T, pca = samples.standardised, samples.pca
        ae_mse = float(np.mean((samples.autoencoder - T) ** 2))
        pca_mse = float(np.mean((samples.baseline - T) ** 2))
        rows.append((
            "held-out error vs PCA",
            f"{ae_mse:.4g} vs {pca_mse:.4g} for PCA({pca.n_components_}), ratio "
            f"{ae_mse / pca_mse:.3f} (MSE, standardised units, {len(T)} samples of the "
            f"{samples.split})",
        ))  # fmt: skip
    page.add("The run", table(rows))


def _curves_section(page: Page, ae: Autoencoder, history: list) -> None:
    from aekit.analysis.metrics import read_curves
    from aekit.analysis.plots import LearningRateDisplay, LossCurveDisplay

    verdict, reading = read_curves(history, ae.loss_)
    monitored = "val_loss" if all("val_loss" in h for h in history) else "train_loss"
    best = int(np.argmin([h[monitored] for h in history])) + 1
    parts = [
        f"<p><span class='verdict'>{html.escape(verdict.capitalize())}.</span> "
        f"{html.escape(reading)}</p>",
        figure(LossCurveDisplay(history, best), "training and validation loss per epoch"),
    ]
    if any("lr" in h for h in history):
        parts.append(figure(LearningRateDisplay(history), "learning rate per epoch"))
    page.add("Loss curves", *parts)


def _data_sections(page: Page, ae: Autoencoder, store: Any, samples: _Samples, seed: int) -> None:
    from aekit.analysis import plots

    images = len(ae.sample_shape_) == 3
    x = samples.x
    names = (store.meta.get("source", {}).get("feature_names") or
             [f"feature {i}" for i in range(x.shape[-1])])  # fmt: skip
    scale = 1.0 / max(float(np.max(store.stats["max"])), 1e-12)  # images to [0, 1] for display

    # Reconstructions
    if images:
        k = min(10, len(x))
        grid = plots.ImageGridDisplay(
            {"original": x[:k] * scale, "reconstruction": ae.reconstruct(x[:k]) * scale},
            "Held-out samples and their reconstructions",
        )
        page.add("Reconstructions", figure(grid, "originals against reconstructions"))
    else:
        T = samples.standardised
        errors = ((samples.autoencoder - T) ** 2).mean(axis=0)
        display = plots.FeatureErrorDisplay(
            errors, names, ((samples.baseline - T) ** 2).mean(axis=0)
        )
        page.add(
            "Reconstructions",
            paragraph(
                "Which features the model reproduces worst, on held-out samples, beside PCA of "
                "the same size."
            ),
            figure(display, "reconstruction error per feature"),
        )

    # Latent space
    Z = ae.transform(x)
    shown, title, prefix = Z, f"{ae.latent_dim}-d latent", "z"
    if ae.latent_dim == 1:
        shown = np.column_stack([Z[:, 0], np.zeros(len(Z))])
    elif ae.latent_dim > 3:
        from sklearn.decomposition import PCA

        shown = PCA(2, random_state=seed).fit_transform(Z)
        title, prefix = f"2-D PCA of the {ae.latent_dim}-d latent", "PC"
    latent = plots.LatentDisplay(shown, samples.labels, store.class_names, title, prefix)
    page.add("Latent space", figure(latent, "latent space coloured by label"))

    if samples.labels is not None and len(np.unique(samples.labels)) > 1:
        _clustering_section(page, ae, Z, samples.labels, samples, seed)
    if not images and x.shape[1] <= 64:
        _attribution_section(page, ae, samples, names)
    _anomaly_section(page, ae, x, samples)
    if ae.model_.variational and images:
        _generation_section(page, ae, x, scale, seed)


def _clustering_section(
    page: Page, ae: Autoencoder, Z: np.ndarray, labels: np.ndarray, samples: _Samples, seed: int
) -> None:
    from aekit.analysis.metrics import cluster_agreement

    pca, T = samples.pca, samples.standardised
    n_classes = len(np.unique(labels))
    scores = {
        "autoencoder": cluster_agreement(Z, labels, n_classes, seed),
        f"PCA({pca.n_components_})": cluster_agreement(pca.transform(T), labels,
                                                       n_classes, seed),
    }  # fmt: skip
    rows = [
        (name, f"{s['kmeans_ari']:.3f}", f"{s['kmeans_nmi']:.3f}", f"{s['dbscan_ari']:.3f}",
         f"{s['dbscan_nmi']:.3f}", f"{s['dbscan_clusters']:.0f}",
         f"{100 * s['dbscan_noise_fraction']:.0f} %")
        for name, s in scores.items()
    ]  # fmt: skip
    page.add(
        "Clustering the latent space",
        paragraph(f"KMeans ({n_classes} clusters) and DBSCAN (radius from the data, no labels) "
                  "on the codes, scored against the labels; PCA of the same size beside it."),
        table(rows, ("representation", "KMeans ARI", "KMeans NMI", "DBSCAN ARI", "DBSCAN NMI",
                      "DBSCAN clusters", "DBSCAN noise")),
    )  # fmt: skip


def _attribution_section(page: Page, ae: Autoencoder, samples: _Samples, names: list[str]) -> None:
    from aekit.analysis.attribution import encoder_jacobians
    from aekit.analysis.metrics import influence_shares
    from aekit.analysis.plots import InfluenceDisplay

    pca = samples.pca
    shares = {  # tables only: the standardised samples are the model's inputs as they are
        "autoencoder": influence_shares(encoder_jacobians(ae.model_, samples.standardised)),
        f"PCA({pca.n_components_})": influence_shares(pca.components_),
    }
    page.add(
        "Feature attributions",
        figure(InfluenceDisplay(shares, names), "share of each feature in each latent dimension"),
    )


def _anomaly_section(page: Page, ae: Autoencoder, x: np.ndarray, samples: _Samples) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    from aekit.analysis.plots import RocDisplay, ScoreHistogramDisplay

    if not hasattr(ae, "threshold_"):
        return
    scores = ae.reconstruction_error(x)
    anomalous = None
    parts = []
    labels = samples.labels
    if labels is not None and len(np.unique(labels)) == 2:
        # Two classes: the rarer one is read as the anomaly
        values, counts = np.unique(labels, return_counts=True)
        anomalous = labels == values[np.argmin(counts)]
    flagged = float(np.mean(scores > ae.threshold_))
    parts.append(paragraph(f"{100 * flagged:.1f} % of these {len(scores)} held-out samples "
                           f"score above the threshold {ae.threshold_:.4g}."))  # fmt: skip
    parts.append(figure(ScoreHistogramDisplay(scores, ae.threshold_, anomalous),
                         "histogram of anomaly scores with the threshold"))  # fmt: skip
    if anomalous is not None:
        fpr, tpr, _ = roc_curve(anomalous, scores)
        auc = float(roc_auc_score(anomalous, scores))
        parts.append(
            paragraph("The store has two classes; the rarer is taken as the anomalous one.")
        )
        parts.append(figure(RocDisplay(fpr, tpr, auc), "ROC curve of the anomaly scores"))
    page.add("Anomaly scores", *parts)


def _generation_section(
    page: Page, ae: Autoencoder, x: np.ndarray, scale: float, seed: int
) -> None:
    from aekit.analysis.plots import ImageGridDisplay

    drawn = ae.sample(20, random_state=seed) * scale
    rows = {"samples": drawn[:10], "": drawn[10:]}
    for i in range(min(2, len(x) // 2)):
        rows[f"path {i + 1}"] = ae.interpolate(x[2 * i], x[-1 - 2 * i], steps=10) * scale
    page.add(
        "Generated samples",
        paragraph("Codes drawn from the prior N(0, I) and decoded; below, the decoded straight "
                  "lines between the codes of two held-out samples."),
        figure(ImageGridDisplay(rows, "Samples and interpolations"), "generated samples"),
    )  # fmt: skip
