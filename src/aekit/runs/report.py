"""``RUN/report.html``: one self-contained page about a run, assembled from what it has.

Every figure is a Display from :mod:`aekit.analysis.plots`, rendered by
:mod:`aekit.analysis.page` into one file that loads nothing from anywhere else. Sections appear
only when the run has what they need: labels for clustering and colours, tables for
attributions, images for image grids, a variational model for samples.

Reconstruction figures use up to ``max_samples`` held-out samples (the store's validation split);
a store without one gets no held-out comparison, and says so. PCA, the baseline, is fitted on
training samples only. The latent space and its clustering use up to ``max_samples`` samples of
the whole store, as the demo's console does: clustering does not learn from the labels.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aekit.analysis.page import Page, figure, paragraph, table
from aekit.apply.batching import require_shape
from aekit.atomic import write_text
from aekit.data.store import Store, exists, open_store
from aekit.errors import AekitError
from aekit.estimator import Autoencoder
from aekit.models.scaling import scaled_by, usable_std
from aekit.runs.anomaly_report import anomaly_section
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
    run: str | Path,
    store: str | Path | None = None,
    *,
    max_samples: int = 2000,
    seed: int = 0,
    out: str | Path | None = None,
) -> Path:
    """Write ``RUN/report.html`` (or ``out``) for the run in folder ``run``; return its path.

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
    out : path-like, optional
        Where to write the page (default ``RUN/report.html``).
    """
    folder = RunFolder(run)
    ae = load(folder.path)
    history = folder.history()
    data = _store_for(folder, store)
    series = hasattr(ae, "window_length_")
    if data is not None and not series:
        require_shape(data, ae.sample_shape_)
    page = Page(f"aekit report: {folder.path.name}")
    samples, missing = None, None
    if data is not None and not series:
        try:
            samples = _samples(data, ae, max_samples, seed)
        except _NoFigures as exc:
            missing = f"No figures from the data: {exc}."
    _run_section(page, folder.path, ae, history, data, samples)
    if history:
        _curves_section(page, ae, history, samples)
    if samples is not None:
        training = data if store is None else folder.open_training_store()
        _data_sections(page, ae, data, samples, training, seed)
    elif series and data is not None:
        from aekit.runs.series_report import series_sections

        series_sections(page, ae, data, seed)
    elif missing:
        page.add("Data", paragraph(missing))
    destination = folder.report if out is None else Path(out)
    write_text(destination, page.render())
    return destination


@dataclass
class _Samples:
    """The samples the figures use, and the baseline every section compares with: PCA of the
    latent's size, fitted on training samples, all in the model's standardised units
    (flattened)."""

    x: np.ndarray  # raw units, float32: held-out samples (training ones when none are)
    labels: np.ndarray | None
    held_out: bool  # whether ``x`` is held out, or training samples for want of any
    pca: Any
    standardised: np.ndarray  # the samples
    autoencoder: np.ndarray  # the model's reconstructions of them
    baseline: np.ndarray  # PCA's reconstructions of them
    everyone: np.ndarray  # raw samples of the whole store: the latent space and clustering
    everyone_standardised: np.ndarray
    everyone_labels: np.ndarray | None

    @property
    def described(self) -> str:
        if self.held_out:
            return f"{len(self.x)} held-out samples (the validation split)"
        return f"{len(self.x)} training samples (the store has no validation split)"


class _NoFigures(Exception):
    """The data cannot support the figures (too few or constant training samples)."""


def _samples(store: Any, ae: Autoencoder, max_samples: int, seed: int) -> _Samples:
    from sklearn.decomposition import PCA

    # The units the model trains in (the store's training statistics, per feature or shared),
    # in which PCA, the careful user's baseline, is fitted too
    stats = scaled_by(ae.scale, store.stats)
    mean = np.asarray(stats["mean"], dtype=np.float64)
    std = usable_std(np.asarray(stats["std"], dtype=np.float64))

    def standardise(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).reshape(len(x), -1)

    rng = np.random.default_rng(seed)

    def draw(rows: np.ndarray) -> np.ndarray:
        return np.sort(rng.choice(rows, min(max_samples, len(rows)), replace=False))

    train_rows = draw(store.train_index)
    train = standardise(store.read(train_rows).astype(np.float32))
    if len(train_rows) < 2 or not np.any(train.std(axis=0) > 0):
        raise _NoFigures(
            f"{len(train_rows)} training sample(s), "
            f"{'all alike' if len(train_rows) > 1 else 'too few'}: nothing to compare with PCA"
        )
    k = min(ae.latent_dim, len(train_rows) - 1, train.shape[1])
    pca = PCA(k, random_state=0).fit(train)
    held_out = len(store.val_index) > 0
    rows = draw(store.val_index) if held_out else train_rows
    x = store.read(rows).astype(np.float32)
    T = standardise(x)
    everyone = draw(np.arange(store.n))
    everyone_x = store.read(everyone).astype(np.float32)
    labels = store.labels
    return _Samples(
        x=x,
        labels=labels[rows] if labels is not None else None,
        held_out=held_out,
        pca=pca,
        standardised=T,
        autoencoder=standardise(ae.reconstruct(x)),
        baseline=pca.inverse_transform(pca.transform(T)),
        everyone=everyone_x,
        everyone_standardised=standardise(everyone_x),
        everyone_labels=labels[everyone] if labels is not None else None,
    )


def _run_section(
    page: Page, run: Path, ae: Autoencoder, history: list, data: Any, samples: _Samples | None
) -> None:
    description = json.loads((run / "model.json").read_text())
    # The model's own weights: the early copy the anomaly score reads is not part of it
    n_params = sum(
        p.numel() for name, p in ae.model_.named_parameters() if not name.startswith("early.")
    )
    rows = [
        ("data", f"{data.path} ({data.n} samples of shape {tuple(data.sample_shape)})"
         if data is not None else "not available (pass --store)"),
        ("model", f"{ae.model_.architecture.describe()}, latent {ae.latent_dim}, "
                  f"{n_params:,} parameters, loss {ae.loss_}"),
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
                f"{info['share']:g} on {info.get('data', 'held-out data')})"
                + (f"; caution: {info['caution']}" if info.get("caution") else ""),
            )
        )
    if samples is not None:
        rows.append(("held-out error vs PCA", _versus_pca(samples)))
        if ae.model_.variational:
            rows.append(("loss terms", _elbo_terms(ae, samples)))
    page.add("The run", table(rows))


def loss_quantity(ae: Autoencoder) -> str:
    """What a run's loss curves measure, in words for an axis."""
    if ae.model_.variational:
        return "negative ELBO per sample: reconstruction + KL"
    if ae.loss_ == "bce":
        return "binary cross-entropy per value"
    return "MSE per feature, standardised units"


def _elbo_terms(ae: Autoencoder, samples: _Samples) -> str:
    """A variational model's loss on the samples, split into its two terms (codes at their
    mean, as evaluation takes them)."""
    import torch

    from aekit.objectives import Objective

    objective = Objective(beta=ae.beta)
    model = ae.model_.eval()
    device = next(model.parameters()).device
    reconstruction = kl = 0.0
    with torch.no_grad():
        for start in range(0, len(samples.x), 256):
            x = torch.from_numpy(samples.x[start : start + 256]).to(device)
            parts, divergence, _ = objective.terms(model, x)
            reconstruction += float(parts.sum(1).sum())
            kl += float(divergence.sum()) if divergence is not None else 0.0
    n = max(1, len(samples.x))
    return (
        f"reconstruction {reconstruction / n:.4g} + {ae.beta:g} x KL {kl / n:.4g} per sample "
        f"({samples.described}); the loss curves plot their sum"
    )


def _versus_pca(samples: _Samples) -> str:
    T, pca = samples.standardised, samples.pca
    if not samples.held_out:
        return "not measured: the store has no validation split, so no sample is held out"
    ae_mse = float(np.mean((samples.autoencoder - T) ** 2))
    pca_mse = float(np.mean((samples.baseline - T) ** 2))
    ratio = f"ratio {ae_mse / pca_mse:.3f}" if pca_mse > 0 else "PCA's error is zero"
    return (
        f"{ae_mse:.4g} vs {pca_mse:.4g} for PCA({pca.n_components_}) fitted on training "
        f"samples, {ratio} (MSE, standardised units, {samples.described})"
    )


def _curves_section(page: Page, ae: Autoencoder, history: list, samples: _Samples | None) -> None:
    from aekit.analysis.metrics import read_curves
    from aekit.analysis.plots import LearningRateDisplay, LossCurveDisplay

    # A negative ELBO says nothing by itself about how well the model reconstructs: its
    # rules of thumb read the reconstruction error measured on the samples instead
    reconstruction = None
    if ae.model_.variational and samples is not None:
        reconstruction = float(np.mean((samples.autoencoder - samples.standardised) ** 2))
    loss = "elbo" if ae.model_.variational else ae.loss_
    verdict, reading = read_curves(history, loss, reconstruction)
    monitored = "val_loss" if all("val_loss" in h for h in history) else "train_loss"
    best = int(np.argmin([h[monitored] for h in history])) + 1
    parts = [
        f"<p><span class='verdict'>{html.escape(verdict.capitalize())}.</span> "
        f"{html.escape(reading)}</p>",
        figure(
            LossCurveDisplay(history, best, loss_quantity(ae)),
            f"training and validation loss per epoch ({loss_quantity(ae)})",
        ),
    ]
    if any("lr" in h for h in history):
        parts.append(figure(LearningRateDisplay(history), "learning rate per epoch"))
    page.add("Loss curves", *parts)


def _data_sections(
    page: Page, ae: Autoencoder, store: Any, samples: _Samples, training: Any, seed: int
) -> None:
    from aekit.analysis import plots

    images = len(ae.sample_shape_) == 3
    x = samples.x
    names = (store.meta.get("source", {}).get("feature_names") or
             list(getattr(ae, "feature_names_in_", [])) or
             [f"feature {i}" for i in range(x.shape[-1])])  # fmt: skip
    scale = 1.0 / max(float(np.max(store.stats["max"])), 1e-12)  # images to [0, 1] for display

    # Reconstructions
    if images:
        shown = _across_classes(samples.labels, len(x), 10)
        grid = plots.ImageGridDisplay(
            {"original": x[shown] * scale, "reconstruction": ae.reconstruct(x[shown]) * scale},
            f"{'Held-out' if samples.held_out else 'Training'} samples and their reconstructions",
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
                f"Which features the model reproduces worst, on {samples.described}, beside "
                "PCA of the same size fitted on training samples. Worst: "
                + ", ".join(f"{names[i]} ({errors[i]:.3g})" for i in np.argsort(-errors)[:3])
                + "."
            ),
            figure(display, "reconstruction error per feature"),
        )

    # Latent space
    Z = ae.transform(samples.everyone)
    shown, title, prefix = Z, f"{ae.latent_dim}-d latent", "z"
    if ae.latent_dim == 1:
        shown = np.column_stack([Z[:, 0], np.zeros(len(Z))])
    elif ae.latent_dim > 3:
        from sklearn.decomposition import PCA

        shown = PCA(2, random_state=seed).fit_transform(Z)
        title, prefix = f"2-D PCA of the {ae.latent_dim}-d latent", "PC"
    labels = samples.everyone_labels
    latent = plots.LatentDisplay(shown, labels, store.class_names, title, prefix)
    page.add(
        "Latent space",
        paragraph(f"The codes of {len(Z)} samples drawn from the whole store."),
        figure(latent, "latent space coloured by label"),
    )
    if labels is not None and len(np.unique(labels)) > 1:
        drawn = plots.LatentDisplay(shown, None, None, title, prefix)
        _clustering_section(page, Z, labels, samples, seed, drawn)
    if not images and x.shape[1] <= 64:
        _attribution_section(page, ae, samples, names)
    anomaly_section(page, ae, samples, training, seed)
    if ae.model_.variational and images:
        _generation_section(page, ae, x, scale, seed)


def _across_classes(labels: np.ndarray | None, n: int, k: int) -> np.ndarray:
    """Up to ``k`` of ``n`` sample positions, taking each class in turn (a store sorted by
    class would otherwise show one class only)."""
    if labels is None:
        return np.arange(min(k, n))
    # each sample's rank within its class, then the classes' first samples, their second...
    rank = np.empty(n, dtype=np.int64)
    for value in np.unique(labels):
        where = np.flatnonzero(labels == value)
        rank[where] = np.arange(len(where))
    return np.lexsort((labels, rank))[:k]


def _clustering_section(
    page: Page, Z: np.ndarray, labels: np.ndarray, samples: _Samples, seed: int, drawn: Any
) -> None:
    """The clustering scores, and the codes as drawn above coloured by KMeans' clusters: where
    the scores and the picture of the classes disagree, this shows what KMeans found."""
    from aekit.analysis.metrics import cluster_agreement, kmeans_clusters

    pca, T = samples.pca, samples.everyone_standardised
    n_classes = len(np.unique(labels))
    clusters = kmeans_clusters(Z, n_classes, seed)  # scored and drawn
    scores = {
        "autoencoder": cluster_agreement(Z, labels, n_classes, seed, kmeans=clusters),
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
                  f"on the codes of the {len(Z)} samples above, scored against the labels; PCA "
                  "of the same size beside it."),
        table(rows, ("representation", "KMeans ARI", "KMeans NMI", "DBSCAN ARI", "DBSCAN NMI",
                      "DBSCAN clusters", "DBSCAN noise")),
        figure(replace(drawn, labels=clusters,
                       class_names=[f"cluster {i + 1}" for i in range(n_classes)],
                       title=f"{drawn.title}: KMeans' clusters"),
               "the latent space coloured by KMeans' clusters"),
    )  # fmt: skip


def _attribution_section(page: Page, ae: Autoencoder, samples: _Samples, names: list[str]) -> None:
    import torch

    from aekit.analysis.attribution import encoder_jacobians
    from aekit.analysis.metrics import influence_shares
    from aekit.analysis.plots import InfluenceDisplay

    pca = samples.pca
    scaler = ae.model_.scaler
    with torch.no_grad():  # the Jacobians are taken in the model's own input units
        inputs = scaler(torch.from_numpy(samples.x).to(scaler.mean.device)).cpu().numpy()
    shares = {  # tables only
        "autoencoder": influence_shares(encoder_jacobians(ae.model_, inputs)),
        f"PCA({pca.n_components_})": influence_shares(pca.components_),
    }
    page.add(
        "Feature attributions",
        figure(InfluenceDisplay(shares, names), "share of each feature in each latent dimension"),
    )


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
                  "lines between the codes of two of the samples above."),
        figure(ImageGridDisplay(rows, "Samples and interpolations"), "generated samples"),
    )  # fmt: skip
