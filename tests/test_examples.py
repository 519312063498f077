"""The example networks in examples/ train end to end, as a user copying them would run them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from aekit import Autoencoder

EXAMPLES = Path(__file__).parent.parent / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_network_learns_the_table_as_pca_does():
    result = _example("table_network").main()
    # Standardised units: predicting every row's mean would score 1.0
    assert result["autoencoder"] < 0.5 and result["pca"] < 0.5
    assert result["autoencoder"] < 1.5 * result["pca"]


def test_the_image_network_learns_digits_and_keeps_their_shape():
    example = _example("image_network")
    result = example.main(epochs=4)
    digits = np.random.default_rng(0).random((40, 9, 7, 3)).astype(np.float32)  # odd sizes
    ae = Autoencoder(network=example.build, latent_dim=4, epochs=1, random_state=0).fit(digits)
    assert ae.reconstruct(digits).shape == digits.shape
    # Pixels in [0, 1] with variance about 0.19: well below guessing each pixel's mean
    assert result["autoencoder"] < 0.05


def test_the_series_network_finds_a_stuck_sensor_step_by_step():
    result = _example("series_network").main(epochs=3)
    assert result["window_length"] == 48  # the signal's period, found from the data
    assert result["roc_auc"] > 0.9
