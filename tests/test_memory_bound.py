"""Peak memory of ingest and encode, measured in a fresh process, against stated bounds: what a
store's chunk needs, whatever the data's shape (narrow columns once cost 0.4 kB a row)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from aekit.data.store import CHUNK_BYTES, CHUNK_ROWS

# Runs one aekit command and prints two peaks of its anonymous memory (RssAnon, sampled every
# 5 ms) in KiB: while its training epochs ran (0 for other commands), and over the whole
# command. RssAnon is the process's own memory, not the pages of the files it maps (a source
# read through a memory map is resident while read, and the kernel takes those pages back).
# The training code is loaded for 'train' only: torch would add 200 MB to an ingest's peak
PEAK = """
import re, sys, threading, time
from aekit.cli import main
peak, epochs = [0], [0]
def rss_anon():
    return int(re.search(r"RssAnon:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
def watch():
    while True:
        peak[0] = max(peak[0], rss_anon())
        time.sleep(0.005)
threading.Thread(target=watch, daemon=True).start()
if sys.argv[1] == "train":
    import aekit.training.fitting as fitting
    train = fitting.train
    def timed_train(*args, **kwargs):
        state = train(*args, **kwargs)
        epochs[0] = max(peak[0], rss_anon())
        return state
    fitting.train = timed_train
code = main(sys.argv[1:])
print(epochs[0], max(peak[0], rss_anon()))
sys.exit(code)
"""
MB = 1 << 20


def phase_peaks(*args: object) -> tuple[int, int]:
    """The peak RssAnon, in bytes, of the command's training epochs and of the whole command."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *map(str, args)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    epochs, whole = map(int, done.stdout.split()[-2:])
    return epochs * 1024, whole * 1024


def peak_bytes(*args: object) -> int:
    """The peak RssAnon, in bytes, of the whole command."""
    return phase_peaks(*args)[1]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """The peak of ingesting 10 rows: the interpreter and its imports."""
    root = tmp_path_factory.mktemp("baseline")
    np.save(root / "tiny.npy", np.zeros((10, 1), np.float32))
    return peak_bytes("ingest", root / "tiny.npy", root / "tiny.zarr")


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((8_000_000, 1), np.float32), ((1_000_000, 64), np.float32), ((6_000, 32, 32, 3), np.uint8)],
    ids=["narrow", "wide", "images"],
)
def test_ingest_holds_about_one_chunk_whatever_the_shape(tmp_path, baseline, shape, dtype):
    data = np.random.default_rng(0).integers(0, 255, size=shape).astype(dtype)
    np.save(tmp_path / "x.npy", data)
    peak = peak_bytes("ingest", tmp_path / "x.npy", tmp_path / "x.zarr")
    # The chunk being filled and Zarr's copies of it as it writes (at most 32 MB of samples and
    # 1M rows, plus 17 bytes a row of id, split and label), and a block of the source with its
    # training rows (as much again): measured 3.5 to 4.3 such chunks (sampled every 5 ms).
    # Narrow data took 3.2 GB here before ids were numbers.
    row_bytes = data[0].nbytes
    rows = min(CHUNK_BYTES // row_bytes, CHUNK_ROWS)
    assert peak - baseline < 6 * rows * (row_bytes + 17), (peak / MB, baseline / MB)


def test_encode_to_a_store_holds_no_more_than_to_an_npy(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "small.npy", rng.normal(size=(2_000, 16)).astype(np.float32))
    np.save(tmp_path / "big.npy", rng.normal(size=(1_000_000, 16)).astype(np.float32))
    for name in ("small", "big"):
        assert peak_bytes("ingest", tmp_path / f"{name}.npy", tmp_path / f"{name}.zarr") > 0
    run = tmp_path / "run"
    assert peak_bytes("train", tmp_path / "small.zarr", "--out", run, "--epochs", "1", "--quiet")
    npy = peak_bytes("encode", run, tmp_path / "big.zarr", "--out", tmp_path / "codes.npy")
    store = peak_bytes("encode", run, tmp_path / "big.zarr", "--out", tmp_path / "codes.zarr")
    # A store's codes wait for a whole chunk (2M rows of 2 floats here), 20 MB at most; a list
    # of small per-batch arrays had cost 1.5 GB against 0.5 GB for 2M rows
    assert store < npy + 64 * MB, (store / MB, npy / MB)


@pytest.mark.slow  # about 40 s (millions of rows); CI runs it after the default run (.ci/run)
@pytest.mark.parametrize("shape", [(8_000_000, 1), (2_000_000, 16)], ids=["8Mx1", "2Mx16"])
def test_ingest_and_encode_of_millions_of_rows_stay_under_400_mb(tmp_path, shape):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "big.npy", rng.normal(size=shape).astype(np.float32))
    np.save(tmp_path / "small.npy", rng.normal(size=(2_000, shape[1])).astype(np.float32))
    peaks = {"ingest": peak_bytes("ingest", tmp_path / "big.npy", tmp_path / "big.zarr")}
    assert peak_bytes("ingest", tmp_path / "small.npy", tmp_path / "small.zarr") > 0
    run = tmp_path / "run"
    assert peak_bytes("train", tmp_path / "small.zarr", "--out", run, "--epochs", "1", "--quiet")
    for suffix in ("npy", "zarr"):
        out = tmp_path / f"codes.{suffix}"
        peaks[f"encode to .{suffix}"] = peak_bytes(
            "encode", run, tmp_path / "big.zarr", "--out", out
        )
    # Every row was encoded, and named: the ids' last line is the last record
    assert np.load(tmp_path / "codes.npy", mmap_mode="r").shape[0] == shape[0]
    with open(tmp_path / "codes.ids.txt", "rb") as ids:
        ids.seek(-20, 2)
        assert ids.read().split(b"\n")[-2] == f"row {shape[0]}".encode()
    # The bound on the process's own memory, imports (torch, about 250 MB) included; the
    # 8M-row encode peaked at 576 MB when its in-order stream held row and window numbers
    assert max(peaks.values()) <= 400 * MB, {k: round(v / MB) for k, v in peaks.items()}


@pytest.fixture(scope="module")
def wide_stores(tmp_path_factory):
    """Stores of 200,000 and 20,000 x 784 float32 (627 and 63 MB) of the same low-rank data."""
    root = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(0)
    data = np.lib.format.open_memmap(root / "large.npy", "w+", np.float32, (200_000, 784))
    basis = rng.normal(size=(16, 784)).astype(np.float32)
    for start in range(0, len(data), 20_000):
        data[start : start + 20_000] = rng.normal(size=(20_000, 16)).astype(np.float32) @ basis
    np.save(root / "small.npy", data[:20_000])
    del data
    stores = {}
    for name in ("large", "small"):
        assert peak_bytes("ingest", root / f"{name}.npy", root / f"{name}.zarr") > 0
        (root / f"{name}.npy").unlink()
        stores[name] = root / f"{name}.zarr"
    return stores


@pytest.mark.slow  # about 2 minutes; CI runs it after the default run (.ci/run)
@pytest.mark.parametrize("order", ["global", "block"])
@pytest.mark.parametrize(
    "model", [["--hidden", "none", "--latent-dim", "128"], []], ids=["784-128-784", "defaults"]
)
def test_training_ends_within_the_memory_of_its_epochs(tmp_path, wide_stores, order, model):
    # The early copy's medians, the threshold's calibration and the closing summary, after the
    # epoch: calibrating 20,000 rows in batches of 4096 had added 14 % to the epoch's peak in
    # block order (kilobytes per calibrated row)
    epochs, whole = phase_peaks(
        "train", wide_stores["large"], "--out", tmp_path / "run", "--epochs", "1",
        "--batch-size", "256", "--shuffle", order, "--quiet", *model,
    )  # fmt: skip
    assert 0 < epochs <= whole <= 1.10 * epochs, (epochs / MB, whole / MB)


@pytest.mark.slow  # about 1 minute
def test_scoring_grows_by_bytes_per_row_not_kilobytes(tmp_path, wide_stores):
    # A new threshold on every row, then every row's score and per-feature parts (a column per
    # feature): the rows beyond the small store's cost 6.8 KB each in calibration before, and
    # a Parquet row group per batch kept kilobytes more per row until the file was closed
    run = tmp_path / "run"
    assert peak_bytes("train", wide_stores["small"], "--out", run, "--epochs", "1", "--quiet")
    peaks = {}
    for name, store in wide_stores.items():
        out = tmp_path / f"{name}.parquet"
        args = ("score", run, store, "--out", out, "--fpr", "0.01", "--normal", store)
        peaks[name] = peak_bytes(*args)
    per_row = (peaks["large"] - peaks["small"]) / 180_000
    # Parquet's footer keeps each row group's column statistics: a few hundred bytes a row
    # group of about 10,000 rows here, for each of the 786 columns
    assert per_row < 500, {name: round(peak / MB) for name, peak in peaks.items()}
