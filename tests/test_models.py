from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import aekit
from aekit import Autoencoder
from aekit.models import Architecture, build_model
from aekit.objectives import Noise, Objective, Sparsity, kl_divergence, kl_sparsity


def _model(kind, shape, output="standardized"):
    torch.manual_seed(0)
    c = shape[-1]
    settings = SimpleNamespace(
        kind=kind, latent_dim=3, hidden=(16,), conv_channels=(8, 16), activation="gelu"
    )
    architecture = Architecture.from_settings(settings, shape, output)
    return build_model(architecture, np.zeros(c), np.ones(c), low=np.zeros(c), high=np.ones(c))


@pytest.mark.parametrize(
    ("kind", "shape"),
    [
        ("dense", (12,)),
        ("dense", (8, 8, 1)),
        ("conv", (8, 8, 1)),
        ("conv", (33, 17, 3)),
        ("vae", (12,)),
        ("vae", (16, 16, 3)),
    ],
)
def test_shapes_and_gradient_flow(kind, shape):
    model = _model(kind, shape)
    x = torch.rand(4, *shape)
    assert model.encode(x).shape == (4, 3)
    assert model(x).shape == (4, *shape)
    model.train()
    Objective(Noise("gaussian", 0.1), Sparsity("l1", 1e-3))(model, x).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_kl_divergence_matches_the_hand_computed_value():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # 0.5 * sum(sigma^2 + mu^2 - 1 - log sigma^2) = 0.5 * ((1 + 1 - 1 - 0) + (4 + 0 - 1 - ln 4))
    expected = 0.5 * (1 + 3 - math.log(4.0))
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).abs().max() == 0


def test_kl_sparsity_of_half_active_units():
    value = kl_sparsity(torch.zeros(10, 4), 0.05).item()
    assert value == pytest.approx(4 * (0.05 * math.log(0.1) + 0.95 * math.log(1.9)), rel=1e-5)


def test_noise_corrupts_as_documented():
    model = _model("dense", (5000,))
    scaler = model.scaler  # raw range [0, 1], std 1: standardised units equal raw units
    x = torch.zeros(1, 5000)
    gauss = Noise.parse("gaussian:0.3").apply(x, scaler)
    assert gauss.std().item() == pytest.approx(0.3, rel=0.05)
    masked = Noise.parse("mask:0.25").apply(torch.ones(1, 5000), scaler)
    assert (masked == 0).float().mean().item() == pytest.approx(0.25, abs=0.03)
    sp = Noise.parse("saltpepper:0.2").apply(torch.full((1, 5000), 0.5), scaler)
    assert set(torch.unique(sp).tolist()) == {0.0, 0.5, 1.0}
    for bad in ("gaussian", "blur:0.1", "mask:2"):
        with pytest.raises(ValueError, match="noise is KIND:LEVEL"):
            Noise.parse(bad)


def test_denoising_trains_on_corrupted_inputs_and_evaluates_clean():
    model = _model("dense", (12,))
    objective = Objective(Noise("gaussian", 1.0))
    x = torch.rand(8, 12)
    model.eval()
    assert objective(model, x).item() == objective(model, x).item()  # no noise in evaluation
    model.train()
    assert objective(model, x).item() != objective(model, x).item()


def test_sparsity_settings_parse_and_shrink_the_code():
    assert Sparsity.parse("l1:1e-4") == Sparsity("l1", 1e-4)
    assert Sparsity.parse("kl:0.05:1e-3") == Sparsity("kl", 1e-3, 0.05)
    with pytest.raises(ValueError, match="l1:WEIGHT or kl:TARGET:WEIGHT"):
        Sparsity.parse("kl:2:1")
    X = np.random.default_rng(0).normal(size=(300, 10)).astype(np.float32)
    plain = Autoencoder(latent_dim=4, epochs=30, random_state=0).fit(X)
    sparse = Autoencoder(latent_dim=4, epochs=30, sparsity="l1:0.5", random_state=0).fit(X)
    assert np.abs(sparse.transform(X)).mean() < 0.5 * np.abs(plain.transform(X)).mean()


def test_loss_auto_picks_bce_for_data_in_unit_range_and_says_so():
    X = np.random.default_rng(0).random((200, 6)).astype(np.float32)
    ae = Autoencoder(latent_dim=2, epochs=5, random_state=0).fit(X)
    assert ae.loss_ == "bce" and ae.model_.output == "bernoulli"
    X_hat = ae.inverse_transform(ae.transform(X))
    assert X_hat.min() >= 0 and X_hat.max() <= 1
    assert Autoencoder(latent_dim=2, epochs=2).fit(X * 5).loss_ == "mse"
    with pytest.raises(ValueError, match=r"'bce', which needs data in \[0, 1\]"):
        Autoencoder(loss="bce", epochs=2).fit(X * 5)


def test_conv_needs_images_of_a_workable_size():
    X = np.random.default_rng(0).random((20, 12)).astype(np.float32)
    with pytest.raises(ValueError, match="the conv kind needs image samples"):
        Autoencoder(kind="conv", epochs=1).fit(X)
    tiny = np.random.default_rng(0).random((20, 2, 2)).astype(np.float32)
    with pytest.raises(ValueError, match="too small for 2 downsampling stages"):
        Autoencoder(kind="conv", epochs=1).fit(tiny)


def test_vae_transform_is_the_mean_code_and_sample_generates(tmp_path):
    X = np.random.default_rng(0).random((100, 8, 8)).astype(np.float32) * 16
    vae = Autoencoder(latent_dim=3, kind="vae", epochs=3, random_state=0).fit(X)
    assert np.array_equal(vae.transform(X[:5]), vae.transform(X[:5]))
    assert vae.sample(7, random_state=1).shape == (7, 8, 8, 1)
    assert np.array_equal(vae.sample(2, random_state=1), vae.sample(2, random_state=1))
    assert np.isfinite(vae.score_samples(X[:5])).all()
    with pytest.raises(ValueError, match="sample needs a generative model"):
        Autoencoder(epochs=1).fit(X.reshape(100, -1)).sample(2)


@pytest.mark.parametrize("kind", ["conv", "vae"])
def test_saved_conv_and_vae_models_load_back(tmp_path, kind):
    from aekit.runs import save_model

    X = np.random.default_rng(0).random((60, 9, 7, 3)).astype(np.float32) * 255
    ae = Autoencoder(latent_dim=4, kind=kind, epochs=2, random_state=0).fit(X)
    save_model(ae, tmp_path)
    loaded = aekit.load(tmp_path)
    np.testing.assert_array_equal(loaded.transform(X[:4]), ae.transform(X[:4]))
    with pytest.raises(ValueError, match=r"samples of shape \(9, 7, 3\)"):
        loaded.transform(X[:4, :8])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "gan"}, "The 'kind' parameter of Autoencoder must be one of"),
        ({"noise": "blur:1"}, "The 'noise' parameter of Autoencoder must be None or a string"),
        ({"sparsity": "l2:1"}, "The 'sparsity' parameter of Autoencoder must be None or a str"),
        ({"conv_channels": ()}, "The 'conv_channels' parameter of Autoencoder must be a seq"),
        ({"loss": "mae"}, "The 'loss' parameter of Autoencoder must be one of"),
        ({"beta": -1}, "The 'beta' parameter of Autoencoder must be a float in the range"),
    ],
)
def test_bad_family_parameters_name_the_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        Autoencoder(**params).fit(np.ones((10, 3)))
