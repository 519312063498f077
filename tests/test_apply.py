"""Putting runs to work: encode, reconstruct, score, generate, compress, probe."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from aekit import Autoencoder, ingest, load
from aekit.cli import main
from aekit.models.scaling import usable_std


@pytest.fixture(scope="module")
def table_run(tmp_path_factory, request):
    """A run trained by the CLI on a labelled table store (blobs: 3 classes, 6 features)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 4
    y = np.repeat(np.arange(3), 100)
    X = (centers[y] + rng.normal(size=(300, 6))).astype(np.float32)
    root = tmp_path_factory.mktemp("table")
    store = ingest(X, root / "blobs.zarr", labels=y, val_fraction=0.2, progress=False)
    code = main([
        "train", str(store.path), "--out", str(root / "run"), "--latent-dim", "2",
        "--set", "train.epochs=40", "--set", "log.progress=none",
    ])  # fmt: skip
    assert code == 0
    return root, store, X, y


def test_fit_calibrates_threshold_on_held_out_data(blobs):
    X, _ = blobs
    ae = Autoencoder(latent_dim=2, epochs=40, random_state=0, contamination=0.05).fit(X)
    # 18 samples, 0.9 of them above a 5 % threshold: recorded with a caution
    caution = ae.threshold_info_.pop("caution")
    assert ae.threshold_info_ == {
        "method": "contamination", "share": 0.05, "samples": 18,
        "score": "squared residual weighted per feature, plus the code's Mahalanobis "
                 "distance, of the final model and of its copy after epoch 10, each over its "
                 "median on training data, averaged",
        "data": "the validation split",
    }  # fmt: skip
    assert "set on 18 samples" in caution and "at least 200 normal samples" in caution
    labels = ae.predict(X)
    assert set(np.unique(labels)) <= {-1, 1}
    np.testing.assert_array_equal(labels == -1, ae.anomaly_score(X) > ae.threshold_)
    # Far-away points are anomalies; the decision function is negative exactly for them
    outliers = X[:5] + 50 * X.std(axis=0)
    assert (ae.predict(outliers) == -1).all()
    assert (ae.decision_function(outliers) < 0).all()


def test_calibrate_threshold_keeps_the_false_positive_rate(blobs):
    X, _ = blobs
    ae = Autoencoder(latent_dim=2, epochs=20, random_state=0).fit(X[:120])
    ae.calibrate_threshold(X[120:], fpr=0.1)
    assert ae.threshold_info_["method"] == "fpr"
    assert np.mean(ae.predict(X[120:]) == -1) <= 0.1
    with pytest.raises(ValueError, match="'fpr' parameter"):
        ae.calibrate_threshold(X, fpr=0.9)


@pytest.mark.parametrize("kind", ["dense", "vae"])
def test_feature_errors_sum_to_the_score(blobs, kind):
    X, _ = blobs
    ae = Autoencoder(latent_dim=2, kind=kind, epochs=5, random_state=0).fit(X)
    parts = ae.feature_errors(X)
    assert parts.shape == X.shape and (parts >= 0).all()
    error = ae.reconstruction_error(X)
    if kind == "dense":
        np.testing.assert_allclose(parts.sum(1), error, rtol=1e-5)
    else:  # the KL term is the rest: positive, not per feature
        assert (error > parts.sum(1)).all()


def test_encode_writes_npy_parquet_and_store_with_labels_and_ids(table_run):
    root, store, X, y = table_run
    ae = load(root / "run")
    codes = ae.transform(X)
    for name in ("codes.npy", "codes.parquet", "codes.zarr"):
        assert main(["encode", str(root / "run"), str(store.path), "--out", str(root / name)]) == 0
    np.testing.assert_allclose(np.load(root / "codes.npy"), codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(root / "codes.labels.npy"), y)
    ids = (root / "codes.ids.txt").read_text().splitlines()
    assert ids == [f"row {i + 1}" for i in range(store.n)]
    table = pq.read_table(root / "codes.parquet").to_pandas()
    assert list(table.columns) == ["id", "label", "z0", "z1"]
    assert list(table["id"]) == ids
    np.testing.assert_allclose(table[["z0", "z1"]].to_numpy(), codes, rtol=1e-5, atol=1e-6)
    from aekit import open_store

    out = open_store(root / "codes.zarr")
    np.testing.assert_array_equal(out.labels, y)
    np.testing.assert_array_equal(out.split, store.split)  # the split carries over
    np.testing.assert_array_equal(out.ids(np.arange(out.n)), store.ids(np.arange(store.n)))
    np.testing.assert_allclose(out.read(np.arange(out.n)), codes, rtol=1e-5, atol=1e-6)


def test_reconstruct_from_a_file_ingest_reads(table_run, tmp_path):
    root, _, X, _ = table_run
    np.save(tmp_path / "new.npy", X[:50])
    assert main(["reconstruct", str(root / "run"), str(tmp_path / "new.npy"),
                 "--out", str(tmp_path / "r.npy")]) == 0  # fmt: skip
    expected = load(root / "run").reconstruct(X[:50])
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), expected, rtol=1e-5, atol=1e-5)


def test_score_recalibrates_and_records_the_threshold(table_run, capsys):
    root, store, X, _ = table_run
    run = root / "run"
    out = root / "scores.parquet"
    before = (run / "model.json").read_text()
    # A new threshold serves this output only, and says so; the run keeps its own
    assert main(["score", str(run), str(store.path), "--out", str(out), "--fpr", "0.2"]) == 0
    assert "for this output only" in capsys.readouterr().out
    assert (run / "model.json").read_text() == before
    assert pq.read_table(out).to_pandas().anomaly.mean() > 0.1
    out.unlink()
    # --save-threshold keeps it; on 60 validation samples, a 5 % rate rests on 3: a warning
    args = ["--out", str(out), "--fpr", "0.05", "--save-threshold"]
    assert main(["score", str(run), str(store.path), *args]) == 0
    printed = capsys.readouterr()
    assert "too few for the rate to hold" in printed.err and "saved in the run" in printed.out
    saved = json.loads((run / "model.json").read_text())["threshold"]
    assert saved["method"] == "fpr" and saved["share"] == 0.05
    assert saved["data"] == f"the validation split of {store.path}"
    table = pq.read_table(out).to_pandas()
    assert [c for c in table.columns if c.startswith("error_")] == [f"error_{i}" for i in range(6)]
    # Each feature's part of the score, then the code's: together, the score
    parts = table.filter(like="error_").sum(axis=1) + table.code
    np.testing.assert_allclose(parts, table.score, rtol=1e-5)
    np.testing.assert_allclose(table.score, load(run).anomaly_score(X), rtol=1e-5)
    np.testing.assert_array_equal(table.anomaly, table.score > saved["value"])
    # On the held-out split it was calibrated on, at most 5 % are flagged
    val = np.isin(np.arange(store.n), store.val_index)
    assert table.anomaly[val].mean() <= 0.05


def test_apply_mistakes_exit_2_and_write_nothing(table_run, tmp_path, capsys):
    root, store, _, _ = table_run
    run = str(root / "run")
    out = tmp_path / "x.npy"
    cases = [
        (["encode", run, str(store.path), "--out", str(tmp_path / "x.csv")], "must end in"),
        (["score", run, str(store.path), "--out", str(out)], "must end in .parquet"),
        (["encode", str(tmp_path), str(store.path), "--out", str(out)], "holds no trained model"),
        (["encode", run, str(tmp_path / "nope"), "--out", str(out)], "does not exist"),
        (["generate", run, "--out", str(out)], "needs a variational run"),
    ]
    np.save(tmp_path / "wide.npy", np.zeros((4, 9), np.float32))
    cases.append((["encode", run, str(tmp_path / "wide.npy"), "--out", str(out)], "shape (9,)"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.npy"]


def test_probe_compares_latents_with_raw_features(table_run, capsys):
    root, store, _, _ = table_run
    assert main(["probe", str(root / "run"), str(store.path), "--labels", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == 3 and result["test_samples"] == len(store.val_index)
    # Well separated blobs: a few labels suffice on both
    assert result["latent_accuracy"] > 0.9 and result["raw_accuracy"] > 0.9
    assert main(["probe", str(root / "run"), str(store.path), "--labels", "500"]) == 2


@pytest.fixture(scope="module")
def digits_vae(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    images = (X / 16).astype(np.float32).reshape(-1, 8, 8, 1)
    root = tmp_path_factory.mktemp("vae")
    store = ingest(images[:600], root / "digits.zarr", labels=y[:600], progress=False)
    assert main([
        "train", str(store.path), "--out", str(root / "run"), "--kind", "vae",
        "--latent-dim", "4", "--set", "train.epochs=3", "--set", "log.progress=none",
    ]) == 0  # fmt: skip
    return root, store


def test_generate_and_interpolate(digits_vae):
    root, store = digits_vae
    run = str(root / "run")
    assert main(["generate", run, "--n", "10", "--seed", "3", "--out", str(root / "g.npy")]) == 0
    samples = np.load(root / "g.npy")
    assert samples.shape == (10, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1
    path = root / "path.npy"
    argv = ["generate", run, "--interpolate", str(store.path), "3", "7", "--steps", "5"]
    assert main([*argv, "--out", str(path)]) == 0
    steps = np.load(path)
    ends = load(run).reconstruct(store.read(np.array([3, 7])).astype(np.float32))
    np.testing.assert_allclose(steps[[0, -1]], ends, atol=1e-5)


def test_compress_round_trip_and_refusals(digits_vae, table_run, tmp_path, capsys):
    root, store = digits_vae
    run = str(root / "run")
    aek = tmp_path / "d.aek"
    assert main(["compress", run, str(store.path), "--out", str(aek), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bytes"] == aek.stat().st_size
    assert report["bits_per_sample"] < 8 * report["raw_bytes"] / store.n
    assert main(["decompress", run, str(aek), "--out", str(tmp_path / "d.npy")]) == 0
    decoded = np.load(tmp_path / "d.npy")
    original = store.read(np.arange(store.n))
    # The reported distortion is that of what decompress gives; PSNR's peak is the data's
    # range (digits scaled to [0, 1] peak at 1, not 255), and the standardised MSE divides by
    # the training split's spread as the model does
    mse = np.mean((decoded - original) ** 2)
    assert mse == pytest.approx(report["mse"], rel=1e-5)
    assert report["psnr_peak"] == pytest.approx(np.ptp(original), rel=1e-6)
    assert report["psnr"] == pytest.approx(10 * np.log10(np.ptp(original) ** 2 / mse), rel=1e-4)
    assert "clipped" not in capsys.readouterr().err
    # A step so fine that codes overflow the quantiser's range: said, not silent
    args = [run, str(store.path), "--out", str(tmp_path / "fine.aek"), "--step", "1e-6"]
    assert main(["compress", *args]) == 0
    assert "were clipped" in capsys.readouterr().err
    std = usable_std(store.stats["std"])
    standardised = np.mean(((decoded - original) / std) ** 2)
    assert report["mse_standardised"] == pytest.approx(standardised, rel=1e-4)

    # Decoding in another process, with another thread count, gives the same samples
    code = (
        "import sys, numpy as np, torch; torch.set_num_threads(1); import aekit;"
        "ae = aekit.load(sys.argv[1]); np.save(sys.argv[3], ae.decompress(open(sys.argv[2], "
        "'rb').read()))"
    )
    subprocess.run([sys.executable, "-c", code, run, aek, tmp_path / "e.npy"], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), decoded, rtol=0, atol=1e-6)

    data = bytearray(aek.read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "bad.aek").write_bytes(bytes(data))
    (tmp_path / "junk.aek").write_bytes(b"not a compressed file")
    other = str(table_run[0] / "run")
    cases = [
        ([run, str(tmp_path / "bad.aek")], "corrupted or truncated"),
        ([run, str(tmp_path / "junk.aek")], "not an aekit compressed file"),
        ([other, str(aek)], "compressed by another model"),
    ]
    for args, message in cases:
        assert main(["decompress", *args, "--out", str(tmp_path / "out.npy")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out.npy").exists()


def test_compression_beats_pca_float16_at_the_same_distortion():
    X, _ = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    train, test = X[:1300], X[1300:]
    ae = Autoencoder(latent_dim=16, epochs=60, random_state=0).fit(train)
    pca = PCA(16).fit(train)
    coefficients = pca.transform(test).astype(np.float16)
    pca_mse = np.mean((pca.inverse_transform(coefficients.astype(np.float64)) - test) ** 2)
    data = ae.compress(test, step=0.2)
    assert ae.compression_report_["mse"] <= pca_mse
    assert len(data) < 0.5 * coefficients.nbytes


def test_npy_companions_are_one_unit_and_ids_stay_one_per_line(tmp_path):
    from aekit.apply.outputs import Output

    out = tmp_path / "codes.npy"
    first = Output(out, 3, (2,), has_labels=True)
    first.write(np.ones((3, 2), np.float32), labels=np.array([0, 1, 2]), ids=np.array(["a"] * 3))
    first.commit()
    out.unlink()  # the user removes the output, and forgets its companions
    ids = np.array(["line\nbreak", "back\\slash", "plain", "cr\rhere"])
    second = Output(out, 4, (2,), has_labels=False)
    second.write(np.zeros((4, 2), np.float32), ids=ids)
    second.commit()
    assert np.load(out).shape == (4, 2)
    assert not (tmp_path / "codes.labels.npy").exists()  # the first output's labels are gone
    lines = (tmp_path / "codes.ids.txt").read_text().split("\n")[:-1]
    assert lines == ["line\\nbreak", "back\\\\slash", "plain", "cr\\rhere"]
    assert not list(tmp_path.glob(".*partial*"))


def test_a_table_with_the_runs_label_column_is_scored_and_labelled_by_name(tmp_path, capsys):
    rng = np.random.default_rng(1)
    names = np.array(["calm", "storm"])
    y = rng.integers(0, 2, 200)
    X = rng.normal(size=(200, 4)) + 3 * y[:, None]

    def table(path, rows, label=True):
        lines = ["a,b,c,d" + (",weather" if label else "")]
        for i in rows:
            cells = [f"{v:.5f}" for v in X[i]] + ([names[y[i]]] if label else [])
            lines.append(",".join(cells))
        path.write_text("\n".join(lines) + "\n")

    table(tmp_path / "train.csv", range(200))
    assert main(["ingest", str(tmp_path / "train.csv"), str(tmp_path / "s.zarr"),
                 "--label-column", "weather"]) == 0  # fmt: skip
    assert main(["train", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "run"),
                 "--latent-dim", "2", "--epochs", "3", "--quiet"]) == 0  # fmt: skip
    # New rows in another class order: the first is a 'storm', so it gets code 0 in their store
    rows = [int(np.flatnonzero(y == 1)[0]), *range(40)]
    table(tmp_path / "today.csv", rows)
    table(tmp_path / "new.csv", rows, label=False)
    capsys.readouterr()
    for name in ("today", "new"):
        out = tmp_path / f"{name}.parquet"
        code = main(
            ["score", str(tmp_path / "run"), str(tmp_path / f"{name}.csv"), "--out", str(out)]
        )
        assert code == 0, capsys.readouterr().err
        scored = pq.read_table(out).to_pandas()
        assert len(scored) == len(rows)
    assert list(scored.columns[:2]) == ["id", "score"]  # new.csv: no labels
    today = pq.read_table(tmp_path / "today.parquet").to_pandas()
    assert list(today["label"]) == list(names[y[rows]])
    np.testing.assert_allclose(today.score, scored.score, rtol=1e-6)

    # The names travel with the run: load, decompress and the ONNX-free outputs use them
    run = str(tmp_path / "run")
    assert list(load(run).feature_names_in_) == ["a", "b", "c", "d"]
    assert main(["compress", run, str(tmp_path / "s.zarr"), "--out", str(tmp_path / "s.aek")]) == 0
    assert (
        main(["decompress", run, str(tmp_path / "s.aek"), "--out", str(tmp_path / "d.parquet")])
        == 0
    )
    assert pq.read_table(tmp_path / "d.parquet").column_names == ["a", "b", "c", "d"]

    # A broken row: refused by default, left out and counted with --on-error skip
    text = (tmp_path / "today.csv").read_text().splitlines()
    text[3] = text[3].replace(text[3].split(",")[1], "n/a", 1)
    (tmp_path / "broken.csv").write_text("\n".join(text) + "\n")
    args = ["score", run, str(tmp_path / "broken.csv"), "--out", str(tmp_path / "b.parquet")]
    capsys.readouterr()
    assert main(args) == 2
    assert "row 3: column 'b' holds 'n/a'" in capsys.readouterr().err
    assert main([*args, "--on-error", "skip"]) == 0
    assert "left out 1 bad record(s) of" in capsys.readouterr().err
    assert pq.read_table(tmp_path / "b.parquet").num_rows == len(rows) - 1


def test_an_output_larger_than_the_free_disk_is_refused_before_its_first_byte(tmp_path):
    import shutil

    from aekit.apply.outputs import Output
    from aekit.errors import SettingError

    free = shutil.disk_usage(tmp_path).free
    n = free // (4 * 64) + 1_000  # float32 rows of 64 values: just past the free space
    with pytest.raises(SettingError, match=r"--out .*g\.npy: .* samples of shape \(64,\) needs"):
        Output(tmp_path / "g.npy", n, (64,), has_labels=False)
    Output(tmp_path / "g.npy", 1_000, (64,), has_labels=False).abort()
    assert list(tmp_path.iterdir()) == []


def test_score_shows_aekit_beside_pca_and_isolation_forest_where_the_samples_have_two_classes(
    tmp_path, capsys
):
    from sklearn.metrics import average_precision_score, roc_auc_score

    # Normal samples on a plane in 6 dimensions; 5 % off it, labelled 1 (the rarer class)
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(600, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)
    y = np.zeros(600, dtype=int)
    y[:30] = 1
    X[:30] += rng.normal(size=(30, 6)).astype(np.float32) * 2
    store = ingest(X, tmp_path / "s.zarr", labels=y, val_fraction=0.2, progress=False)
    assert main(["train", str(store.path), "--out", str(tmp_path / "run"),
                 "--set", "train.epochs=30", "--set", "log.progress=none"]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "scores.parquet"
    assert main(["score", str(tmp_path / "run"), str(store.path), "--out", str(out)]) == 0
    assert "aekit" in capsys.readouterr().out
    out.unlink()
    assert main(["score", str(tmp_path / "run"), str(store.path), "--out", str(out),
                 "--json"]) == 0  # fmt: skip
    figures = json.loads(capsys.readouterr().out)["detectors"]
    assert list(figures) == ["aekit", "PCA detector", "IsolationForest"]
    table = pq.read_table(out).to_pandas()
    anomalous = table.label.to_numpy() == 1
    assert figures["aekit"]["roc_auc"] == pytest.approx(roc_auc_score(anomalous, table.score))
    assert figures["aekit"]["average_precision"] == pytest.approx(
        average_precision_score(anomalous, table.score)
    )
    # Off the plane is what PCA's minor directions see: it finds them all
    assert figures["PCA detector"]["roc_auc"] > 0.99
    assert figures["aekit"]["roc_auc"] > 0.9
    assert 0.5 < figures["IsolationForest"]["roc_auc"] <= 1.0


def test_score_of_samples_without_two_classes_prints_no_comparison(table_run, capsys):
    root, store, _, _ = table_run  # three classes
    out = root / "three.parquet"
    assert main(["score", str(root / "run"), str(store.path), "--out", str(out), "--json"]) == 0
    assert "detectors" not in json.loads(capsys.readouterr().out)
