"""A user's own network (tests/networks.py, not aekit's) goes everywhere a built-in kind goes:
streamed fit, early stopping, exact resume after SIGKILL, the anomaly threshold, denoising,
generation, compression, the report, and saving and loading without pickle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import aekit
from aekit import Autoencoder
from aekit.cli import main
from aekit.data.ingest import ingest
from aekit.errors import AekitError
from aekit.runs import save_model
from aekit.training.checkpoint import latest_checkpoint
from tests import networks

AEKIT = [sys.executable, "-m", "aekit"]
TABLE_NET = "tests.networks:table_net"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4)) @ rng.normal(size=(4, 16)) + 0.1 * rng.normal(size=(3000, 16))
    X[:30] += 6 * rng.normal(size=(30, 16))  # a few anomalies among the rows
    return ingest(X.astype(np.float32), tmp_path_factory.mktemp("u") / "s.zarr", progress=False)


def test_a_network_from_the_user_fits_a_store_and_answers_every_method(store, tmp_path):
    ae = Autoencoder(
        network=networks.table_net, network_kwargs={"width": 24}, latent_dim=3, epochs=30,
        patience=2, random_state=0,
    ).fit(store.path)  # fmt: skip
    assert ae.stop_reason_.startswith("early stopping")  # it acted, before the 30 epochs
    assert isinstance(ae.model_.features[2], nn.LayerNorm)  # the user's own layers
    X = store.read(np.arange(200))
    assert ae.transform(X).shape == (200, 3)
    normal = X[30:]
    errors = ((ae.reconstruct(normal) - normal) ** 2).mean()
    assert errors < 0.2 * normal.var()  # it learned the data's structure, not an average
    scores = ae.anomaly_score(X)
    assert scores[:30].mean() > 3 * np.median(scores[30:])  # the planted rows stand out
    assert (ae.predict(X[:30]) == -1).mean() > 0.5 and np.isfinite(ae.threshold_)
    restored = ae.decompress(ae.compress(normal, step=0.02))
    assert restored.shape == normal.shape and ((restored - normal) ** 2).mean() < 2 * errors

    save_model(ae, tmp_path)  # saved by import path, loaded by importing it
    saved = json.loads((tmp_path / "model.json").read_text())
    assert saved["architecture"]["family"] == TABLE_NET
    assert saved["architecture"]["network_kwargs"] == {"width": 24}
    loaded = aekit.load(tmp_path)
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))
    np.testing.assert_array_equal(loaded.anomaly_score(X), scores)
    assert loaded.history_ == ae.history_ and loaded.n_iter_ == ae.n_iter_ > 0


def test_a_network_building_the_built_in_layers_trains_bitwise_as_the_built_in(store):
    # Being the user's costs nothing: same layers, same seed, the same weights to the last bit
    common = {"latent_dim": 3, "epochs": 3, "random_state": 0, "activation": "gelu"}
    built_in = Autoencoder(kind="dense", hidden=(16, 8), **common).fit(store.path)
    users = Autoencoder(
        network=networks.dense_layers, network_kwargs={"hidden": [16, 8]}, **common
    ).fit(store.path)
    for (name, a), (_, b) in zip(
        built_in.model_.state_dict().items(), users.model_.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_users_network_can_be_variational_denoising_and_generate(store):
    X = store.read(np.arange(300))
    ae = Autoencoder(
        network=TABLE_NET, variational=True, noise="gaussian:0.1", latent_dim=3, epochs=3,
        random_state=0,
    ).fit(X)  # fmt: skip
    assert ae.model_.variational and hasattr(ae.model_, "to_logvar")
    assert ae.sample(5, random_state=1).shape == (5, 16)
    np.testing.assert_array_equal(ae.sample(5, random_state=1), ae.sample(5, random_state=1))
    assert ae.denoise(X[:10]).shape == (10, 16)


def test_a_lambda_fits_and_predicts_and_saving_it_says_how(store, tmp_path):
    def build(shape, latent_dim):
        return networks.table_net(shape, latent_dim, width=8)

    X = store.read(np.arange(300))
    ae = Autoencoder(network=build, latent_dim=2, epochs=2, random_state=0).fit(X)
    assert ae.transform(X).shape == (300, 2)
    with pytest.raises(AekitError, match="define it at the top level of a module"):
        save_model(ae, tmp_path)
    assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize(
    ("network", "kwargs", "says"),
    [
        ("tests.networks:nothing_here", None, "cannot be imported"),
        ("no_such_package.nets:build", None, "cannot be imported"),
        (TABLE_NET, {"depth": 3}, "check network_kwargs against its signature"),
        ("tests.networks:wrong_output", None, "must return a flat vector per sample"),
        (TABLE_NET, {"width": 10**9}, "make the network smaller"),  # counted on the meta device
    ],
    ids=["missing function", "missing module", "refused kwargs", "unflat features", "too big"],
)
def test_a_network_that_cannot_work_is_refused_naming_it(network, kwargs, says):
    X = np.random.default_rng(0).random((50, 6, 6, 1)).astype(np.float32)
    with pytest.raises(AekitError, match=says):
        Autoencoder(network=network, network_kwargs=kwargs, epochs=1).fit(X)


def _train(argv: list[str]) -> subprocess.Popen:
    # From the repository's root: 'tests.networks' imports there, as a user's package would
    return subprocess.Popen([*AEKIT, "train", *argv], cwd=Path(__file__).parent.parent)


def test_the_command_line_trains_resumes_bitwise_and_applies_a_users_network(store, tmp_path):
    argv = [
        str(store.path), "--network", TABLE_NET, "--set", "model.network_kwargs={width=24}",
        "--epochs", "3", "--batch-size", "64", "--latent-dim", "3", "--seed", "0", "--quiet",
        "--set", "checkpoint.every_steps=10",
    ]  # fmt: skip
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _train([*argv, "--out", str(whole)]).wait(timeout=300) == 0
    with _train([*argv, "--out", str(killed)]) as proc:
        steps = -(-len(store.train_index) // 64)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            last = (
                latest_checkpoint(killed / "checkpoints")
                if (killed / "checkpoints").is_dir()
                else None
            )
            if last is not None and int(last.stem.split("-")[1]) >= int(steps * 1.3):
                break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _train(["--out", str(killed), "--resume", "--quiet"]).wait(timeout=300) == 0
    assert (killed / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert 'network = "tests.networks:table_net"' in (whole / "config.toml").read_text()

    codes, scores = tmp_path / "codes.npy", tmp_path / "scores.parquet"
    cwd = Path.cwd()
    os.chdir(Path(__file__).parent.parent)
    try:
        assert main(["encode", str(whole), str(store.path), "--out", str(codes)]) == 0
        assert main(["score", str(whole), str(store.path), "--out", str(scores)]) == 0
        assert main(["report", str(whole), "--store", str(store.path)]) == 0
        assert (
            main(["compress", str(whole), str(store.path), "--out", str(tmp_path / "c.aek")]) == 0
        )
    finally:
        os.chdir(cwd)
    np.testing.assert_allclose(
        np.load(codes), aekit.load(whole).transform(store.path), rtol=1e-5, atol=1e-6
    )
    assert "network tests.networks:table_net" in (whole / "report.html").read_text()


def test_weights_that_do_not_fit_the_rebuilt_network_are_named(store, tmp_path):
    X = store.read(np.arange(300))
    ae = Autoencoder(network=TABLE_NET, network_kwargs={"width": 8}, epochs=1).fit(X)
    save_model(ae, tmp_path)
    description = json.loads((tmp_path / "model.json").read_text())
    description["architecture"]["network_kwargs"] = {"width": 12}  # the code changed since
    (tmp_path / "model.json").write_text(json.dumps(description))
    with pytest.raises(AekitError, match=r"features\.1\.weight: \(8, 16\) saved, \(12, 16\) built"):
        aekit.load(tmp_path)


def test_a_family_registered_by_another_package_is_a_kind(store, tmp_path):
    # An installed plugin: a distribution whose entry point names its factory
    site = tmp_path / "site"
    dist = site / "their_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: their-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[aekit.families]\ntheirs = {TABLE_NET}\n")
    root = Path(__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(root)])}
    result = subprocess.run(
        [*AEKIT, "train", str(store.path), "--out", str(tmp_path / "run"), "--kind", "theirs",
         "--epochs", "1", "--quiet"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "run" / "model.json").read_text())
    assert saved["architecture"]["family"] == "theirs"
    # Without the plugin, the kind is unknown, and said so
    del env["PYTHONPATH"]
    (tmp_path / "theirs.toml").write_text('[model]\nkind = "theirs"\n')
    result = subprocess.run(
        [*AEKIT, "validate", str(tmp_path / "theirs.toml")], env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "'model.kind'" in result.stderr and "conv" in result.stderr


def test_variational_is_a_setting_of_any_family_and_vae_still_means_the_usual_body(store, tmp_path):
    common = [str(store.path), "--epochs", "1", "--quiet", "--latent-dim", "2"]
    assert main(["train", *common, "--out", str(tmp_path / "v"), "--variational"]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "vae"), "--kind", "vae"]) == 0
    for run in ("v", "vae"):
        architecture = json.loads((tmp_path / run / "model.json").read_text())["architecture"]
        assert architecture["family"] == "dense" and architecture["variational"] is True
    assert "variational = true" in (tmp_path / "v" / "config.toml").read_text()
    assert aekit.load(tmp_path / "v").sample(3).shape == (3, 16)
