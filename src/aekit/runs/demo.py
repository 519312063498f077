"""The Wine walkthrough done right: an autoencoder and PCA, measured side by side."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from aekit.analysis.attribution import encoder_jacobians
from aekit.analysis.metrics import cluster_agreement, influence_shares
from aekit.analysis.plots import InfluenceDisplay, LatentDisplay, LossCurveDisplay, save_figure
from aekit.atomic import write_text
from aekit.estimator import Autoencoder

LATENT_DIM = 3
TEST_FRACTION = 0.3


@dataclass
class WineComparison:
    """Everything the walkthrough measured for one seed: the figures and what to draw them from."""

    summary: dict[str, Any]
    history: list[dict[str, float]]
    codes: dict[str, np.ndarray]
    shares: dict[str, np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    feature_names: list[str]
    model: Any = None  # the fitted Autoencoder
    test_rows: np.ndarray | None = None  # the held-out wines' row numbers


def wine_comparison(seed: int = 0) -> WineComparison:
    """Fit an autoencoder with a 3-d code to raw Wine data and compare it with PCA(3).

    Both methods see the same 70 % stratified training split. Reconstruction error is measured on
    the held-out 30 % in units standardised by the training split; clustering is scored on the
    codes of all samples against the three cultivars.
    """
    wine = load_wine()
    X, y = wine.data, wine.target
    train_rows, test_rows = train_test_split(
        np.arange(len(X)), test_size=TEST_FRACTION, stratify=y, random_state=seed
    )
    X_train, X_test = X[train_rows], X[test_rows]

    # The autoencoder takes raw units: it standardises internally
    started = time.perf_counter()
    ae = Autoencoder(latent_dim=LATENT_DIM, random_state=seed).fit(X_train)
    fit_seconds = time.perf_counter() - started

    # The baseline as a careful user would run it: standardise, then PCA
    scaler = StandardScaler().fit(X_train)
    pca = PCA(n_components=LATENT_DIM, random_state=seed).fit(scaler.transform(X_train))

    # Held-out error of both, in the same standardised units
    T = scaler.transform(X_test)
    ae_mse = float(np.mean((scaler.transform(ae.inverse_transform(ae.transform(X_test))) - T) ** 2))
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(T)) - T) ** 2))

    codes = {"autoencoder": ae.transform(X), "PCA": pca.transform(scaler.transform(X))}
    n_classes = len(wine.target_names)
    clusters = {name: cluster_agreement(Z, y, n_classes, seed) for name, Z in codes.items()}
    model_scaler = ae.model_.scaler
    X_model_units = model_scaler(
        torch.as_tensor(X, dtype=torch.float32, device=model_scaler.mean.device)
    )
    X_model_units = X_model_units.cpu().numpy()
    shares = {
        "autoencoder": influence_shares(encoder_jacobians(ae.model_, X_model_units)),
        "PCA": influence_shares(pca.components_),
    }
    best_epoch = int(np.argmin([h["val_loss"] for h in ae.history_])) + 1
    summary = {
        "dataset": "wine (scikit-learn), raw units",
        "n_samples": len(X),
        "n_features": X.shape[1],
        "latent_dim": LATENT_DIM,
        "seed": seed,
        "split": {"train": len(X_train), "test": len(X_test), "stratified": True},
        "autoencoder": {
            "heldout_mse": ae_mse,
            **clusters["autoencoder"],
            "epochs_run": len(ae.history_),
            "best_epoch": best_epoch,
            "stop_reason": ae.stop_reason_,
            "fit_seconds": fit_seconds,
            "influence": shares["autoencoder"].round(4).tolist(),
        },
        "pca": {
            "heldout_mse": pca_mse,
            **clusters["PCA"],
            "explained_variance_ratio": pca.explained_variance_ratio_.round(4).tolist(),
            "influence": shares["PCA"].round(4).tolist(),
        },
        "heldout_mse_ratio_autoencoder_to_pca": ae_mse / pca_mse,
        "feature_names": list(wine.feature_names),
    }
    return WineComparison(
        summary,
        ae.history_,
        codes,
        shares,
        y,
        list(wine.target_names),
        list(wine.feature_names),
        ae,
        test_rows,
    )


def wine_demo(out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Run :func:`wine_comparison`, write its plots and ``summary.json`` to ``out_dir``.

    Returns the summary, which names the files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = wine_comparison(seed)
    summary = result.summary
    best_epoch = summary["autoencoder"]["best_epoch"]
    files = {
        "loss_curves": save_figure(
            LossCurveDisplay(result.history, best_epoch).plot().figure_, out / "loss_curves.png"
        ),
        "influence": save_figure(
            InfluenceDisplay(result.shares, result.feature_names).plot().figure_,
            out / "influence.png",
        ),
    }
    for (name, Z), prefix in zip(result.codes.items(), ["z", "PC"], strict=True):
        display = LatentDisplay(
            Z, result.labels, result.class_names, f"Wine, 3-d {name} code", prefix
        )
        path = out / f"latent_{name.lower()}.png"
        files[f"latent_{name.lower()}"] = save_figure(display.plot().figure_, path)
    summary["files"] = {key: path.name for key, path in files.items()}

    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    summary["report"] = str(_write_run(out, result))
    return summary


def _write_run(out: Path, result: WineComparison) -> Path:
    """Save the demo's model and curves as a run folder, the wines as a store whose validation
    split is the demo's held-out 30 %, and write the run's HTML report; return its path."""
    import shutil

    from aekit.data.ingest import ingest
    from aekit.runs.model import save_model
    from aekit.runs.report import write_report
    from aekit.training.callbacks import CSVLogger

    save_model(result.model, out)
    CSVLogger.write(out / "metrics.csv", result.history)
    store = out / "wine.zarr"
    shutil.rmtree(store, ignore_errors=True)  # the demo's own output of an earlier run
    wine = load_wine()
    labels = np.asarray(wine.target_names)[result.labels]
    ingest(
        wine.data,
        store,
        labels=labels,
        feature_names=wine.feature_names,
        validation_rows=result.test_rows,
        progress=False,
    )
    return write_report(out, store)


def summary_table(summary: dict[str, Any]) -> str:
    """The demo's figures as a plain-text table, autoencoder beside PCA."""
    rows = [
        ("held-out MSE (standardised units)", "heldout_mse", "{:.4f}"),
        ("KMeans ARI vs cultivars", "kmeans_ari", "{:.3f}"),
        ("KMeans NMI vs cultivars", "kmeans_nmi", "{:.3f}"),
        ("DBSCAN ARI vs cultivars", "dbscan_ari", "{:.3f}"),
        ("DBSCAN clusters found", "dbscan_clusters", "{:.0f}"),
        ("DBSCAN noise fraction", "dbscan_noise_fraction", "{:.2f}"),
    ]
    ae, pca = summary["autoencoder"], summary["pca"]
    lines = [f"{'measure':<36}{'autoencoder':>13}{'PCA(3)':>10}"]
    for label, key, fmt in rows:
        lines.append(f"{label:<36}{fmt.format(ae[key]):>13}{fmt.format(pca[key]):>10}")
    return "\n".join(lines)


def wine_over_seeds(seeds: Sequence[int]) -> dict[str, Any]:
    """The walkthrough's headline figures for several seeds, with their medians.

    Returns per-seed rows (KMeans ARI of both methods, held-out MSE of both and their ratio) and
    the median of each column.
    """
    rows = []
    for seed in seeds:
        s = wine_comparison(seed).summary
        rows.append(
            {
                "seed": seed,
                "ae_kmeans_ari": s["autoencoder"]["kmeans_ari"],
                "pca_kmeans_ari": s["pca"]["kmeans_ari"],
                "ae_heldout_mse": s["autoencoder"]["heldout_mse"],
                "pca_heldout_mse": s["pca"]["heldout_mse"],
                "mse_ratio": s["heldout_mse_ratio_autoencoder_to_pca"],
                "fit_seconds": s["autoencoder"]["fit_seconds"],
            }
        )
    medians = {key: float(np.median([r[key] for r in rows])) for key in rows[0] if key != "seed"}
    return {"rows": rows, "median": medians}
