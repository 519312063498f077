from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit import Autoencoder
from aekit.errors import DataError

FAST = {"epochs": 20, "patience": 5, "random_state": 0}


@parametrize_with_checks([Autoencoder(epochs=3, patience=2, random_state=0)])
def test_scikit_learn_compatibility(estimator, check):
    # Every check passes; the latents' float32 dtype is declared through the estimator's tags.
    check(estimator)


def test_fit_transform_inverse_shapes(blobs):
    X, _ = blobs
    ae = Autoencoder(latent_dim=3, **FAST).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (180, 3)
    assert ae.inverse_transform(Z).shape == X.shape
    assert ae.score_samples(X).shape == (180,)


def test_reconstructions_come_back_in_raw_units(blobs):
    X, _ = blobs
    ae = Autoencoder(latent_dim=3, epochs=200, random_state=0).fit(X)
    X_hat = ae.inverse_transform(ae.transform(X))
    # Feature 3 lives around 1e4 with spread ~4e3: a model that forgot to de-standardise would
    # return values near 0, and a sigmoid output could not exceed 1.
    assert abs(X_hat[:, 3].mean() - X[:, 3].mean()) < 0.05 * X[:, 3].std()
    relative = np.mean((X_hat - X) ** 2, axis=0) / X.var(axis=0)
    # 3 of 6 noise directions must be dropped by a 3-d code, so some error remains
    assert relative.max() < 0.25


def test_scale_invariance_the_model_owns_its_scaling(blobs):
    X, _ = blobs
    Z1 = Autoencoder(latent_dim=2, **FAST).fit(X).transform(X)
    X2 = X * 7.0 + 3.0
    Z2 = Autoencoder(latent_dim=2, **FAST).fit(X2).transform(X2)
    np.testing.assert_allclose(Z1, Z2, atol=1e-3)


def test_pixels_held_as_a_table_train_as_the_image_with_a_shared_scale():
    """scale='shared' gives a table the one mean and std an image channel of the same values
    gets, so digits as a (n, 64) table train bitwise as the 8x8 images; 'feature' (the default)
    standardises each column by its own statistics."""
    X = load_digits().data.astype(np.float32)[:400]
    settings = dict(latent_dim=4, epochs=2, random_state=0)
    table = Autoencoder(scale="shared", **settings).fit(X)
    image = Autoencoder(**settings).fit(X.reshape(-1, 8, 8, 1))
    assert torch.equal(table.model_.scaler.std, image.model_.scaler.std.expand(64))
    assert torch.equal(table.model_.scaler.mean, image.model_.scaler.mean.expand(64))
    reconstructed = image.inverse_transform(image.transform(X.reshape(-1, 8, 8, 1)))
    np.testing.assert_array_equal(
        table.inverse_transform(table.transform(X)), reconstructed.reshape(len(X), 64)
    )
    # Per column, the 90 % training split's spread: near each column's own over all rows
    per_column = Autoencoder(**settings).fit(X).model_.scaler.std.numpy()
    spread = np.where(X.std(0) > 0, X.std(0), 1.0)
    np.testing.assert_allclose(per_column, spread, rtol=0.15, atol=0.1)
    assert per_column.max() > 5 * np.median(per_column[per_column < 1])  # edges vs centre


def test_same_seed_gives_bitwise_same_latents(blobs):
    X, _ = blobs
    Z1 = Autoencoder(latent_dim=3, **FAST).fit(X).transform(X)
    Z2 = Autoencoder(latent_dim=3, **FAST).fit(X).transform(X)
    assert np.array_equal(Z1, Z2)
    Z3 = Autoencoder(latent_dim=3, **{**FAST, "random_state": 1}).fit(X).transform(X)
    assert not np.array_equal(Z1, Z3)


@pytest.mark.parametrize(
    ("kind", "images", "extra"),
    [
        ("dense", False, {}),
        ("dense", False, {"noise": "gaussian:0.2"}),
        ("dense", False, {"noise": "mask:0.3", "sparsity": "kl:0.05:0.1"}),
        ("dense", False, {"noise": "saltpepper:0.1", "sparsity": "l1:0.01"}),
        ("conv", True, {"noise": "gaussian:0.1"}),
        ("vae", False, {}),
        ("vae", True, {"noise": "mask:0.2"}),
    ],
)
def test_the_same_seed_gives_bitwise_the_same_weights_for_every_kind_and_objective(
    kind, images, extra
):
    X = load_digits().data[:300].astype(np.float32)
    X = X.reshape(-1, 8, 8) if images else X
    fits = [
        Autoencoder(kind=kind, latent_dim=3, epochs=2, batch_size=64, random_state=seed, **extra)
        .fit(X)
        .model_.state_dict()
        for seed in (0, 0, 1)
    ]
    assert all(torch.equal(fits[0][k], fits[1][k]) for k in fits[0])
    assert not all(torch.equal(fits[0][k], fits[2][k]) for k in fits[0])


def test_dataframe_input_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    wine = load_wine(as_frame=True)
    ae = Autoencoder(latent_dim=2, **FAST).fit(wine.data)
    assert list(ae.feature_names_in_) == list(wine.data.columns)
    assert ae.transform(wine.data).shape == (178, 2)
    assert isinstance(wine.data, pd.DataFrame)


def test_early_stopping_stops_after_patience(blobs):
    X, _ = blobs
    ae = Autoencoder(latent_dim=1, epochs=400, patience=3, learning_rate=0.05, random_state=0)
    ae.fit(X)
    val = [h["val_loss"] for h in ae.history_]
    assert len(val) < 400 and ae.stop_reason_.startswith("early stopping")
    assert len(val) == int(np.argmin(val)) + 1 + 3


def test_the_schedule_sets_the_learning_rate_as_aekit_train_does(blobs):
    X, _ = blobs
    fixed = dict(epochs=6, patience=0, learning_rate=0.01, random_state=0)
    lrs = {
        schedule: [h["lr"] for h in Autoencoder(schedule=schedule, **fixed).fit(X).history_]
        for schedule in ("constant", "cosine")
    }
    assert lrs["constant"] == [0.01] * 6
    assert lrs["cosine"] == sorted(lrs["cosine"], reverse=True) and lrs["cosine"][-1] < 1e-6


def test_linear_autoencoder_matches_pca_error():
    X, _ = load_wine(return_X_y=True)
    Xs = StandardScaler().fit_transform(X)
    pca = PCA(3).fit(Xs)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(Xs)) - Xs) ** 2)
    ae = Autoencoder(
        latent_dim=3,
        hidden=(),
        epochs=1500,
        patience=100,
        validation_fraction=0,
        learning_rate=3e-3,
        random_state=0,
    ).fit(Xs)
    # Standardising already-standardised data is the identity up to ddof, so the errors compare
    assert ae.reconstruction_error(Xs).mean() == pytest.approx(pca_mse, rel=0.02)


def test_works_inside_a_pipeline_and_clones(blobs):
    X, _ = blobs
    pipe = make_pipeline(StandardScaler(), Autoencoder(latent_dim=2, **FAST))
    assert pipe.fit_transform(X).shape == (180, 2)
    cloned = clone(Autoencoder(latent_dim=4, hidden=(8, 4)))
    assert cloned.get_params()["hidden"] == (8, 4)
    assert not hasattr(cloned, "model_")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"latent_dim": 0}, "The 'latent_dim' parameter of Autoencoder must be an int from 1 to "),
        (
            {"latent_dim": 2.5},
            "'latent_dim' parameter of Autoencoder must be an int from 1 to 1048576. Got 2.5",
        ),
        ({"hidden": "64"}, "The 'hidden' parameter of Autoencoder must be a sequence of ints"),
        ({"hidden": (64, 0)}, "The 'hidden' parameter of Autoencoder must be a sequence of ints"),
        (
            {"activation": "sigmoid"},
            "The 'activation' parameter of Autoencoder must be 'auto' or one of",
        ),
        (
            {"epochs": 0},
            "The 'epochs' parameter of Autoencoder must be 'auto' or an int >= 1. Got 0",
        ),
        (
            {"batch_size": -1},
            "The 'batch_size' parameter of Autoencoder must be 'auto' or an int >= 1.",
        ),
        (
            {"learning_rate": 0.0},
            "'learning_rate' parameter of Autoencoder must be a float in the range (0, inf)",
        ),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter of Autoencoder must be"),
        (
            {"patience": -1},
            "The 'patience' parameter of Autoencoder must be 'auto' or an int >= 0. Got -1",
        ),
        ({"device": "tpu"}, "The 'device' parameter of Autoencoder must be one of"),
        (
            {"schedule": "step"},
            "The 'schedule' parameter of Autoencoder must be one of ['constant', 'cosine', ",
        ),
    ],
)
def test_bad_parameters_name_the_parameter_range_and_value(blobs, params, message):
    X, _ = blobs
    with pytest.raises(ValueError, match=re.escape(message)):
        Autoencoder(**params).fit(X)


def test_nan_input_is_refused(blobs):
    X, _ = blobs
    X = X.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Autoencoder(**FAST).fit(X)


def test_transform_checks_the_number_of_features(blobs):
    X, _ = blobs
    ae = Autoencoder(**FAST).fit(X)
    with pytest.raises(ValueError, match="features"):
        ae.transform(X[:, :4])
    with pytest.raises(ValueError, match=r"latents of shape \(n_samples, 2\)"):
        ae.inverse_transform(np.zeros((3, 5)))


@pytest.mark.parametrize(
    "method",
    ["transform", "inverse_transform", "reconstruct", "denoise", "score_samples", "feature_errors"],
)
def test_an_unfitted_estimator_says_so(method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(Autoencoder(), method)(np.zeros((2, 2), dtype=np.float32))


def test_score_samples_is_higher_for_normal_points(blobs):
    X, _ = blobs
    ae = Autoencoder(latent_dim=2, epochs=100, random_state=0).fit(X)
    outliers = X[:10] + 8 * X.std(axis=0)
    assert ae.score_samples(X).mean() > ae.score_samples(outliers).max()


def test_fit_names_a_path_that_holds_no_store(tmp_path):
    # A string path was once taken for samples: "could not convert string to float"
    for missing in (str(tmp_path / "nope.zarr"), tmp_path / "nope.zarr"):
        with pytest.raises(DataError, match=r"nope.zarr does not exist: no store there"):
            Autoencoder().fit(missing)
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"x.npy is not a store; ingest it first"):
        Autoencoder().fit(tmp_path / "x.npy")
