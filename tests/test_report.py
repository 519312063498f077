"""The HTML report: sections from what the run has, checked in headless Chromium."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits

from aekit import ingest
from aekit.analysis.metrics import read_curves
from aekit.cli import main
from tests.browser import check_page

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _train(store: Path, out: Path, *args: str) -> Path:
    argv = ["train", str(store), "--out", str(out), "--set", "log.progress=none", *args]
    assert main(argv) == 0
    return out


def _sections(page: Path) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", page.read_text())


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """Breast cancer: a table with two classes (so ROC) and 30 named features."""
    root = tmp_path_factory.mktemp("report-table")
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_csv(root / "bc.csv", index=False)
    ingest(root / "bc.csv", root / "bc.zarr", label_column="target", val_fraction=0.3,
           progress=False)  # fmt: skip
    return _train(root / "bc.zarr", root / "run", "--latent-dim", "3", "--set", "train.epochs=30")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """Digits 0-2 as 8x8 images, a small convolutional VAE."""
    root = tmp_path_factory.mktemp("report-images")
    X, y = load_digits(n_class=3, return_X_y=True)
    ingest((X / 16).astype(np.float32).reshape(-1, 8, 8, 1), root / "d.zarr", labels=y,
           val_fraction=0.3, progress=False)  # fmt: skip
    return _train(root / "d.zarr", root / "run", "--kind", "vae", "--latent-dim", "4",
                  "--set", "train.epochs=8")  # fmt: skip


def _check_in_browser(page: Path, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    result = check_page(page, ARTIFACTS / f"{name}.png")
    assert result.images == page.read_text().count("<img ") and result.images >= 4
    assert result.broken_images == 0
    assert result.remote_requests == []
    shot = np.asarray(Image.open(result.screenshot).convert("L"), dtype=float)
    assert shot.std() > 10  # drawn, not a blank page


def test_browser_check_catches_remote_and_broken_images(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><img src='http://example.com/x.png'></body></html>")
    result = check_page(page, tmp_path / "bad.png", height=300)
    assert result.images == 1 and result.broken_images == 1
    assert result.remote_requests == ["http://example.com/x.png"]


def test_table_report(table_run, capsys):
    assert main(["report", str(table_run)]) == 0
    page = table_run / "report.html"
    assert capsys.readouterr().out.strip() == str(page)
    assert _sections(page) == [
        "The run", "Loss curves", "Reconstructions", "Latent space",
        "Clustering the latent space", "Feature attributions", "Anomaly scores",
    ]  # fmt: skip
    text = page.read_text()
    assert "held-out error vs PCA" in text
    _check_baselines(table_run, text)
    assert re.search(r"class='verdict'>(Still improving|Converged|Overfitting|Underfitting)", text)
    worst = re.search(r"Worst: ([\w ]+) \(", text).group(1)
    assert worst in load_breast_cancer().feature_names  # the source's names, not "feature 3"
    _check_in_browser(page, "report-table")


def _figures(text: str) -> dict[str, tuple[float, float]]:
    cell = r"<td class='num'>([\d.]+)</td>"
    rows = re.findall(rf"<tr><td>([\w ]+)</td>{cell}{cell}</tr>", text)
    return {name: (float(auc), float(ap)) for name, auc, ap in rows}


def _check_baselines(run: Path, text: str) -> None:
    """The anomaly section's table: aekit's figures on the held-out split, beside PCA's
    full-spectrum score, each computed here on its own."""
    from sklearn.decomposition import PCA
    from sklearn.metrics import average_precision_score, roc_auc_score

    from aekit import load
    from aekit.data.store import open_store

    store = open_store(run.parent / "bc.zarr")
    rows = np.sort(store.val_index)  # all of them: fewer than the report's 2,000
    x, malignant = store.read(rows), store.labels[rows] == 0  # the rarer class
    figures = _figures(text)
    assert set(figures) == {"aekit", "PCA detector", "IsolationForest"}
    score = load(run).anomaly_score(x)
    assert figures["aekit"] == (
        round(roc_auc_score(malignant, score), 3),
        round(average_precision_score(malignant, score), 3),
    )
    train = store.read(np.sort(store.train_index)).astype(np.float64)
    mean, std = train.mean(0), train.std(0)
    pca = PCA().fit((train - mean) / std)
    pca_score = (pca.transform((x - mean) / std) ** 2 / pca.explained_variance_).sum(1)
    assert figures["PCA detector"][0] == round(roc_auc_score(malignant, pca_score), 3)
    assert 0.5 < figures["IsolationForest"][0] <= 1.0


def test_the_anomaly_section_says_so_when_the_training_store_is_gone(table_run, tmp_path):
    training = table_run.parent / "bc.zarr"
    moved = tmp_path / "bc.zarr"
    training.rename(moved)
    try:
        assert main(["report", str(table_run), "--store", str(moved),
                     "--out", str(tmp_path / "r.html")]) == 0  # fmt: skip
    finally:
        moved.rename(training)
    text = (tmp_path / "r.html").read_text()
    assert "training store is gone" in text and not _figures(text)


def test_image_report_and_sections_follow_the_data(image_run, tmp_path):
    assert main(["report", str(image_run)]) == 0
    page = image_run / "report.html"
    sections = _sections(page)
    assert "Generated samples" in sections and "Feature attributions" not in sections
    # A VAE's loss is labelled as what it is, and split into its terms, which add up to the
    # validation loss of the weights kept (the report's samples are the validation split)
    text = page.read_text()
    assert "negative ELBO per sample" in text
    terms = re.search(r"reconstruction ([\d.e+-]+) \+ 1 x KL ([\d.e+-]+) per sample", text)
    rows = csv.DictReader((image_run / "metrics.csv").read_text().splitlines())
    best = min(float(r["val_loss"]) for r in rows)
    assert float(terms.group(1)) + float(terms.group(2)) == pytest.approx(best, rel=1e-3)
    _check_in_browser(page, "report-images")

    # Without labels: no clustering section, and the latent is not coloured
    X, _ = load_digits(n_class=3, return_X_y=True)
    ingest((X / 16).astype(np.float32).reshape(-1, 8, 8, 1), tmp_path / "u.zarr",
           progress=False)  # fmt: skip
    assert main(["report", str(image_run), "--store", str(tmp_path / "u.zarr")]) == 0
    assert "Clustering the latent space" not in _sections(page)


def test_without_held_out_data_the_report_compares_nothing_and_says_so(table_run, tmp_path):
    # All of the data in the training split: nothing is held out, so no held-out figure
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_csv(tmp_path / "bc.csv", index=False)
    ingest(tmp_path / "bc.csv", tmp_path / "all.zarr", label_column="target", val_fraction=0.0,
           progress=False)  # fmt: skip
    assert main(["report", str(table_run), "--store", str(tmp_path / "all.zarr")]) == 0
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (table_run / "report.html").read_text()))
    assert "not measured: the store has no validation split" in text
    assert "ratio" not in text and "held-out samples" not in text
    assert "training samples (the store has no validation split)" in text


def test_image_grids_show_every_class_of_a_store_sorted_by_class():
    from aekit.runs.report import _across_classes

    labels = np.repeat([0, 1, 2, 3, 4], 20)  # sorted, as an image folder by class is
    shown = _across_classes(labels, len(labels), 10)
    assert len(shown) == 10 and len(set(shown)) == 10
    assert np.bincount(labels[shown]).tolist() == [2, 2, 2, 2, 2]
    assert _across_classes(None, 4, 10).tolist() == [0, 1, 2, 3]


def test_report_mistakes_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no trained model" in capsys.readouterr().err


def _history(train, val):
    return [{"epoch": i + 1, "train_loss": t, "val_loss": v} for i, (t, v) in
            enumerate(zip(train, val, strict=True))]  # fmt: skip


def test_read_curves_verdicts():
    falling = list(np.geomspace(1.0, 0.05, 50))
    assert read_curves(_history(falling, falling))[0] == "still improving"
    flat = [0.1] * 50
    assert read_curves(_history(falling[:25] + [0.2] * 25, falling[:25] + flat[:25]))[0] == (
        "converged"
    )
    rising_val = falling[:20] + list(np.linspace(falling[19], 0.5, 30))
    assert read_curves(_history(falling, rising_val))[0] == "overfitting"
    assert read_curves(_history([0.9] * 30, [0.9] * 30))[0] == "underfitting"
    assert read_curves(_history([0.9] * 30, [0.9] * 30), "bce")[0] == "converged"
    # A VAE's negative ELBO in the hundreds says nothing of underfitting; its reconstruction does
    elbo = _history(falling[:25] + [0.2] * 25, falling[:25] + flat[:25])
    elbo = [{**h, "train_loss": 900 * h["train_loss"], "val_loss": 900 * h["val_loss"]}
            for h in elbo]  # fmt: skip
    assert read_curves(elbo, "elbo", reconstruction=0.3)[0] == "converged"
    verdict, reading = read_curves(elbo, "elbo", reconstruction=0.7)
    assert verdict == "underfitting" and "reconstruction error" in reading


def test_matplotlib_is_imported_only_when_drawing():
    code = (
        "import sys, numpy as np; import aekit.runs.report, aekit.analysis.plots as p;"
        "d = p.RocDisplay(np.r_[0, 1], np.r_[0, 1], 0.5);"
        "assert 'matplotlib' not in sys.modules; d.plot(); assert 'matplotlib' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("rows", [1, 40])
def test_a_run_on_constant_or_single_samples_gets_a_report_that_says_why_figures_are_missing(
    tmp_path, rows
):
    ingest(np.ones((rows, 4), dtype=np.float32), tmp_path / "c.zarr", val_fraction=0.0,
           progress=False)  # fmt: skip
    run = _train(tmp_path / "c.zarr", tmp_path / "run", "--epochs", "2")
    assert main(["report", str(run)]) == 0
    text = (run / "report.html").read_text()
    assert "No figures from the data" in text and "nothing to compare with PCA" in text


def test_a_report_written_again_says_it_replaced_the_earlier_one(table_run, tmp_path, capsys):
    assert main(["report", str(table_run)]) == 0  # there is now one to replace
    capsys.readouterr()
    assert main(["report", str(table_run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"replaced {table_run / 'report.html'} (written ")
    assert lines[-1] == str(table_run / "report.html")
    # --out writes elsewhere, and leaves the run's own report as it was
    before = (table_run / "report.html").stat().st_mtime_ns
    other = tmp_path / "fewer.html"
    assert main(["report", str(table_run), "--samples", "50", "--out", str(other)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(other)]
    assert "<html" in other.read_text()[:200].lower()
    assert (table_run / "report.html").stat().st_mtime_ns == before
    assert main(["report", str(table_run), "--out", str(tmp_path / "r.txt")]) == 2
    assert "must end in .html" in capsys.readouterr().err
    assert not (tmp_path / "r.txt").exists()


def test_series_report_draws_scores_over_time_beside_pca_and_the_worst_windows(tmp_path):
    t = np.arange(6000)
    rng = np.random.default_rng(0)
    signal = np.stack([np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 50)], axis=1)
    signal = (signal + 0.05 * rng.normal(size=signal.shape)).astype(np.float32)
    labels = np.zeros(6000, dtype=np.int64)
    labels[5500:5540] = 1  # in the held-out end: a stuck sensor
    signal[5500:5540, 0] = signal[5500, 0]
    ingest(signal, tmp_path / "s.zarr", labels=labels, series=True, progress=False)
    run = _train(tmp_path / "s.zarr", tmp_path / "run", "--window-length", "50",
                 "--set", "train.epochs=4")  # fmt: skip
    assert main(["report", str(run)]) == 0
    page = run / "report.html"
    assert _sections(page) == ["The run", "Loss curves", "Scores over time", "Worst windows"]
    text = page.read_text()
    aekit_auc = float(re.search(r"aekit: ROC-AUC / AUC-PR per step</td><td[^>]*>([\d.]+)", text)[1])
    assert "PCA, same windows: ROC-AUC / AUC-PR per step" in text
    assert aekit_auc > 0.9  # the stuck stretch stands out over 6,000 steps
    _check_in_browser(page, "report-series")
