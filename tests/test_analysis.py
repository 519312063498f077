from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

from aekit import Autoencoder
from aekit.analysis.attribution import encoder_jacobians
from aekit.analysis.metrics import cluster_agreement, influence_shares, kmeans_clusters
from aekit.analysis.plots import InfluenceDisplay, LatentDisplay, LossCurveDisplay, save_figure
from aekit.models import Architecture, build_model


def test_influence_of_a_linear_map_is_its_normalised_absolute_weights():
    W = np.array([[1.0, -3.0, 0.0], [0.5, 0.5, -1.0]])
    expected = np.array([[0.25, 0.75, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(influence_shares(W), expected)
    # The same map seen at many samples gives the same shares
    np.testing.assert_allclose(influence_shares(np.stack([W] * 4)), expected)


def test_encoder_jacobians_of_a_linear_encoder_are_its_weights():
    torch.manual_seed(0)
    model = build_model(
        Architecture("dense", (4,), 2, hidden=(), activation="tanh"), np.zeros(4), np.ones(4)
    )
    X = np.random.default_rng(0).normal(size=(5, 4))
    J = encoder_jacobians(model, X)
    weight = model.to_code.weight.detach().numpy()
    assert J.shape == (5, 2, 4)
    np.testing.assert_allclose(J, np.broadcast_to(weight, J.shape), rtol=1e-6)


def test_encoder_jacobians_match_finite_differences_for_a_nonlinear_encoder():
    torch.manual_seed(0)
    model = build_model(
        Architecture("dense", (3,), 2, hidden=(8,), activation="tanh"), np.zeros(3), np.ones(3)
    ).double()
    x = np.array([[0.3, -0.2, 0.9]])
    J = encoder_jacobians(model.float(), x)[0]
    eps = 1e-3
    for i in range(3):
        step = np.zeros(3)
        step[i] = eps
        with torch.no_grad():
            hi = model.encode_normalized(torch.tensor(x + step, dtype=torch.float32))
            lo = model.encode_normalized(torch.tensor(x - step, dtype=torch.float32))
        np.testing.assert_allclose(J[:, i], ((hi - lo) / (2 * eps)).numpy()[0], atol=1e-3)


def test_cluster_agreement_is_perfect_on_separated_blobs_whatever_the_units():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 50)
    Z = np.eye(3)[y] * 10 + rng.normal(scale=0.3, size=(150, 3))
    scores = cluster_agreement(Z, y, 3)
    assert scores["kmeans_ari"] == 1.0
    # The median k-distance radius leaves the sparser fringe of each blob as noise, by design
    assert scores["dbscan_clusters"] == 3 and scores["dbscan_noise_fraction"] < 0.3
    assert scores["dbscan_ari"] > 0.6
    assert cluster_agreement(Z * 1000, y, 3) == scores
    # Clusters handed over (the report's, drawn beside the table) are the ones scored
    assert cluster_agreement(Z, y, 3, kmeans=kmeans_clusters(Z, 3)) == scores
    assert cluster_agreement(Z, y, 3, kmeans=np.zeros(150, dtype=int))["kmeans_ari"] == 0.0


def test_clusters_follow_the_informative_codes_not_the_units_a_model_left_unused():
    # A VAE's nearly collapsed units (spread 0.13-0.2 against 0.9 for the others here) carry
    # noise; standardised one by one they outweighed the rest, and KMeans' ARI on breast
    # cancer fell to -0.008 beside a scatter that showed the two classes apart
    X, y = load_breast_cancer(return_X_y=True)
    ae = Autoencoder(kind="vae", latent_dim=8, random_state=0).fit(X.astype(np.float32))
    Z = ae.transform(X.astype(np.float32))
    assert cluster_agreement(Z, y, 2)["kmeans_ari"] > 0.5


def test_displays_draw_and_save_png(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e} for e in range(1, 6)]
    rng = np.random.default_rng(0)
    displays = {
        "loss.png": LossCurveDisplay(history, best_epoch=4),
        "latent3.png": LatentDisplay(rng.normal(size=(30, 3)), np.arange(30) % 3, ["a", "b", "c"]),
        "latent2.png": LatentDisplay(rng.normal(size=(30, 2))),
        "influence.png": InfluenceDisplay({"m": np.full((2, 3), 1 / 3)}, ["f1", "f2", "f3"]),
    }
    for name, display in displays.items():
        path = save_figure(display.plot().figure_, tmp_path / name)
        assert path.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(displays)
