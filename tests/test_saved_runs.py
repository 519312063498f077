"""Runs saved by earlier versions of aekit still load and answer as they did when saved.

``tests/data/runs-before-architecture`` holds two small runs written before the model's
description became one Architecture record (a dense model, and a variational convolutional one
on 8x8 images), with the codes, reconstructions and anomaly scores they gave for five samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import aekit

SAVED = Path(__file__).parent / "data" / "runs-before-architecture"


@pytest.mark.parametrize("name", ["dense", "vae-image"])
def test_a_run_saved_before_the_architecture_record_loads_and_answers_the_same(name):
    ae = aekit.load(SAVED / name, device="cpu")
    expected = np.load(SAVED / name / "expected.npz")
    x = expected["x"]
    np.testing.assert_allclose(ae.transform(x), expected["codes"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ae.reconstruct(x), expected["reconstruction"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ae.anomaly_score(x), expected["score"], rtol=1e-5, atol=1e-6)
    assert ae.model_.variational == (name == "vae-image")
