"""Models move between devices: trained on a GPU, loaded, unpickled and scored on a CPU."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine

from aekit import Autoencoder, load
from aekit.runs import save_model

X = load_wine().data.astype(np.float32)
CUDA = torch.cuda.is_available()


def _saved(ae, run):
    run.mkdir()
    save_model(ae, run)
    return run


def test_a_run_whose_settings_name_a_gpu_loads_and_scores_on_a_machine_without_one(tmp_path):
    ae = Autoencoder(latent_dim=2, epochs=3, device="cpu", random_state=0).fit(X)
    run = _saved(ae, tmp_path / "run")
    # What a run trained with --device cuda saves: its weights are device-free safetensors, its
    # settings name the GPU
    description = json.loads((run / "model.json").read_text())
    description["params"]["device"] = "cuda"
    (run / "model.json").write_text(json.dumps(description))

    loaded = load(run) if not CUDA else load(run, device="cpu")
    assert next(loaded.model_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded.anomaly_score(X), ae.anomaly_score(X))
    np.testing.assert_array_equal(loaded.predict(X), ae.predict(X))
    if not CUDA:
        with pytest.raises(Exception, match="no CUDA device"):
            load(run, device="cuda")


def test_a_pickled_estimator_holds_its_model_on_the_cpu_and_answers_the_same():
    ae = Autoencoder(latent_dim=2, epochs=3, random_state=0).fit(X)
    state = ae.__getstate__()
    assert all(t.device.type == "cpu" for t in state["model_"].state_dict().values())
    assert state["model_"] is not ae.model_  # pickling never moves the user's model
    again = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(again.transform(X), ae.transform(X))
    assert again.to("cpu") is again
    assert pickle.loads(pickle.dumps(Autoencoder(latent_dim=4))).latent_dim == 4  # unfitted


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_trained_on_the_gpu_loaded_and_scored_on_the_cpu(tmp_path):
    ae = Autoencoder(latent_dim=2, epochs=3, device="cuda", random_state=0).fit(X)
    assert next(ae.model_.parameters()).device.type == "cuda"
    gpu_scores = ae.anomaly_score(X)
    run = _saved(ae, tmp_path / "run")
    on_cpu = load(run, device="cpu")
    np.testing.assert_allclose(on_cpu.anomaly_score(X), gpu_scores, rtol=1e-4, atol=1e-6)
    unpickled = pickle.loads(pickle.dumps(ae))
    assert next(unpickled.model_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(unpickled.anomaly_score(X), gpu_scores, rtol=1e-4, atol=1e-6)
    back = unpickled.to("cuda")
    np.testing.assert_allclose(back.anomaly_score(X), gpu_scores, rtol=1e-5, atol=1e-7)
