"""The anomaly score decodes a code held within the training codes' range."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from aekit import Autoencoder, load
from aekit.data.arrays import ArrayBatches
from aekit.models.base import UNBOUNDED
from aekit.runs import save_model
from aekit.runs.folder import RunFolder
from aekit.training import code_range


def _line(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Samples spread along one direction of 5 features (plus a little noise), and the
    direction: a shape a 1-dimensional code captures."""
    rng = np.random.default_rng(0)
    direction = rng.normal(size=5)
    direction /= np.linalg.norm(direction)
    X = rng.normal(size=(n, 1)) * direction + 0.05 * rng.normal(size=(n, 5))
    return X.astype(np.float32), direction.astype(np.float32)


def _unbounded_errors(ae: Autoencoder, X: np.ndarray) -> np.ndarray:
    """The scores ``ae`` would give without its code range."""
    low, high = ae.model_.code_low.clone(), ae.model_.code_high.clone()
    ae.model_.code_low.fill_(-UNBOUNDED)
    ae.model_.code_high.fill_(UNBOUNDED)
    try:
        return ae.reconstruction_error(X)
    finally:
        ae.model_.code_low.copy_(low)
        ae.model_.code_high.copy_(high)


def test_a_sample_far_out_along_the_data_is_scored_from_the_edge_of_the_normal_codes():
    X, direction = _line()
    ae = Autoencoder(latent_dim=1, random_state=0).fit(X)
    codes = ae.transform(X)[:, 0]
    low, high = ae.model_.code_low.item(), ae.model_.code_high.item()
    assert np.mean(codes < low) > 0.005 and np.mean(codes > high) > 0.005  # set from the fit

    far = np.stack([6 * direction, -6 * direction])  # normal in shape, only farther out
    bounded, unbounded = ae.reconstruction_error(far), _unbounded_errors(ae, far)
    # Decoded as it is, its code is extrapolated: part of its distance is reconstructed. From
    # the edge, the whole distance to the most extreme normal samples counts.
    assert np.all(bounded > 2 * unbounded)
    assert np.all(ae.predict(far) == -1)
    inside = (codes >= low) & (codes <= high)
    np.testing.assert_array_equal(
        ae.reconstruction_error(X[inside]), _unbounded_errors(ae, X[inside])
    )
    # Reconstructions are not scores: they decode the code as it is
    np.testing.assert_allclose(ae.reconstruct(far), ae.inverse_transform(ae.transform(far)))
    parts = ae.feature_errors(far)  # the parts of the bounded score
    np.testing.assert_allclose(parts.sum(axis=1), bounded, rtol=1e-5)


def test_the_range_is_the_2nd_to_98th_percentile_of_at_most_max_samples_codes(monkeypatch):
    X, _ = _line(300)
    ae = Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
    model = ae.model_
    source = ArrayBatches(torch.from_numpy(X), np.arange(len(X)), 32, seed=3)
    code_range.set_code_range(model, source, torch.device("cpu"))
    expected = np.percentile(ae.transform(X), [2, 98], axis=0)
    np.testing.assert_allclose(model.code_low.numpy(), expected[0], rtol=1e-5)
    np.testing.assert_allclose(model.code_high.numpy(), expected[1], rtol=1e-5)

    monkeypatch.setattr(code_range, "MAX_SAMPLES", 50)
    code_range.set_code_range(model, source, torch.device("cpu"))
    first = torch.cat(list(source.batches(0))).numpy()[:50]  # the first epoch's order
    expected = np.percentile(ae.transform(first), [2, 98], axis=0)
    np.testing.assert_allclose(model.code_low.numpy(), expected[0], rtol=1e-5)
    np.testing.assert_allclose(model.code_high.numpy(), expected[1], rtol=1e-5)


def test_a_saved_model_keeps_its_range_and_one_saved_without_it_scores_unbounded(tmp_path):
    X, direction = _line()
    ae = Autoencoder(latent_dim=1, epochs=5, random_state=0).fit(X)
    far = np.stack([6 * direction])
    save_model(ae, tmp_path)
    np.testing.assert_array_equal(load(tmp_path).reconstruction_error(far),
                                  ae.reconstruction_error(far))  # fmt: skip

    # A model saved before the range was kept: its file lacks the two tensors
    weights = str(RunFolder(tmp_path).weights)
    tensors = load_file(weights)
    assert {"code_low", "code_high"} <= tensors.keys()
    save_file({k: v for k, v in tensors.items() if not k.startswith("code_")}, weights)
    old = load(tmp_path)
    assert (old.model_.code_low == -UNBOUNDED).all() and (old.model_.code_high == UNBOUNDED).all()
    np.testing.assert_array_equal(old.reconstruction_error(far), _unbounded_errors(ae, far))
