"""``aekit export``: ONNX files that give PyTorch's answers in onnxruntime, on held-out data."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from aekit import Autoencoder, load
from aekit.cli import main
from aekit.runs import save_model

DIGITS, DIGIT_LABELS = load_digits(return_X_y=True)


def _saved(ae, run):
    run.mkdir()
    save_model(ae, run)


def _run(path):
    return lambda name, **feed: ort.InferenceSession(str(path / f"{name}.onnx")).run(None, feed)


def _close(got, expected, rtol=1e-5):
    # Relative to the largest magnitude: codes and errors pass through zero
    scale = max(float(np.abs(expected).max()), 1e-12)
    assert float(np.abs(got - expected).max()) <= rtol * scale


@pytest.mark.parametrize(
    ("kind", "images"),
    # The VAE on images: a conv body with the variational head and the KL term in the score;
    # a user's network (LayerNorm, dropout: tests/networks.py), variational too
    [("dense", False), ("conv", True), ("vae", True), ("tests.networks:table_net", False)],
    ids=["dense", "conv", "vae", "user network"],
)
def test_exported_files_agree_with_pytorch_on_held_out_data(tmp_path, kind, images):
    X = DIGITS.astype(np.float32)
    if images:
        X = X.reshape(-1, 8, 8, 1)
    train, held_out = X[:1200], X[1200:]
    family = {"network": kind, "variational": True} if ":" in kind else {"kind": kind}
    ae = Autoencoder(latent_dim=4, epochs=4, random_state=0, **family).fit(train)
    _saved(ae, tmp_path / "run")

    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "onnx")]) == 0
    run = _run(tmp_path / "onnx")
    codes = run("encoder", x=held_out)[0]
    _close(codes, ae.transform(held_out))
    score, flag = run("scorer", x=held_out)
    _close(score, ae.anomaly_score(held_out))
    np.testing.assert_array_equal(flag, ae.predict(held_out) == -1)
    assert 0 < flag.sum() < len(flag)  # the comparison is exercised both ways
    _close(run("decoder", code=codes)[0], ae.inverse_transform(codes))
    # Any batch size, one sample included
    for n in (1, 37):
        _close(run("encoder", x=held_out[:n])[0], ae.transform(held_out[:n]))

    described = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert described["files"]["encoder.onnx"]["inputs"][0]["shape"] == ["batch", *X.shape[1:]]
    assert described["threshold"]["value"] == ae.threshold_
    assert described["threshold"]["method"] == "contamination"


def test_export_carries_the_feature_names_of_a_cli_run(tmp_path):
    frame = pd.DataFrame(DIGITS[:, :12], columns=[f"px {i}" for i in range(12)])
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["ingest", str(tmp_path / "t.csv"), str(tmp_path / "t.zarr")]) == 0
    run = tmp_path / "run"
    argv = ["train", str(tmp_path / "t.zarr"), "--out", str(run), "--set", "train.epochs=2"]
    assert main([*argv, "--quiet"]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "onnx"), "--json"]) == 0
    described = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert described["feature_names"] == list(frame.columns)
    readme = (tmp_path / "onnx" / "README.txt").read_text()
    assert "px 11" in readme and "scorer.onnx" in readme
    ae = load(run)
    score = _run(tmp_path / "onnx")("scorer", x=frame.to_numpy(np.float32))[0]
    _close(score, ae.anomaly_score(frame.to_numpy()))


def test_a_part_that_cannot_be_exported_exits_2_naming_it_and_leaves_nothing(
    tmp_path, monkeypatch, capsys
):
    ae = Autoencoder(latent_dim=2, epochs=1, random_state=0).fit(DIGITS[:200, :10])
    _saved(ae, tmp_path / "run")
    real = torch.onnx.export

    def refuse_the_decoder(module, *args, **kwargs):
        if getattr(module, "method", None) == "decode":
            raise RuntimeError("unsupported operator aten::frobnicate\nmore detail")
        return real(module, *args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", refuse_the_decoder)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "the decoder cannot be exported to ONNX: unsupported operator aten::frobnicate" in err
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

    monkeypatch.undo()
    (tmp_path / "taken").mkdir()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
