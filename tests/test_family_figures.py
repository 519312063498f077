"""The model family's figures on digits (issue: each kind beats its baseline). Slow: about two
minutes on 2 cores; run with ``pytest -m slow``."""

from __future__ import annotations

import pytest

from bench import digits

pytestmark = pytest.mark.slow


def test_dense_and_conv_reconstruct_held_out_digits_at_most_0_6_of_pca_error():
    for row in digits.reconstruction(seed=0):
        assert row["dense_ratio"] <= 0.6, row
        assert row["conv_ratio"] <= 0.6, row


def test_denoising_gains_more_psnr_than_pca_projection():
    result = digits.denoising(seed=0)
    assert result["psnr_gain_autoencoder"] > result["psnr_gain_pca"] > 0


def test_vae_samples_look_more_like_digits_than_a_gaussian_in_pca_space():
    result = digits.generation(seed=0)
    assert result["vae_confidence"] > result["pca_gaussian_confidence"]
