"""Real processes under torchrun (gloo on CPU): equal results, resume across world sizes, and
failures that end the job instead of hanging it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aekit.data.ingest import ingest
from aekit.training.checkpoint import latest_checkpoint, load_checkpoint

AEKIT = [sys.executable, "-m", "aekit"]
# The default trim ('early'): the first of the 3 epochs leaves out each global batch's outliers
COMMON = [
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--latent-dim",
    "8",
    "--hidden",
    "128",
    "--seed",
    "0",
    "--quiet",
    "--set",
    "checkpoint.every_steps=10",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    # 10,801 training rows: odd, so that two processes pad each epoch's last batch
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12_001, 8)) @ rng.normal(size=(8, 64)) + 0.1 * rng.normal(
        size=(12_001, 64)
    )
    return ingest(X, tmp_path_factory.mktemp("d") / "s.zarr", val_fraction=0.1, progress=False)


@pytest.fixture(scope="module")
def single(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    subprocess.run(
        [*AEKIT, "train", str(store.path), "--out", str(out), *COMMON], check=True, timeout=300
    )
    return out


def _val_losses(run: Path) -> list[float]:
    rows = csv.DictReader((run / "metrics.csv").read_text().splitlines())
    return [float(r["val_loss"]) for r in rows]


def _kill_mid_epoch_two(proc: subprocess.Popen, out: Path, steps_per_epoch: int) -> None:
    target = int(steps_per_epoch * 1.3)
    deadline = time.time() + 240
    while time.time() < deadline:
        folder = out / "checkpoints"
        last = latest_checkpoint(folder) if folder.is_dir() else None
        if last is not None and int(last.stem.split("-")[1]) >= target:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every worker, without warning
    proc.wait()


def test_two_processes_reach_the_validation_loss_of_one(store, single, tmp_path):
    out = tmp_path / "two"
    # Not --quiet (which prints no summary), so that rank 0 alone is seen printing it
    loud = [a for a in COMMON if a != "--quiet"] + ["--set", "log.progress=none"]
    result = subprocess.run(
        [*AEKIT, "train", str(store.path), "--out", str(out), "--nproc", "2", *loud],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("trained 3 epochs") == 1, result.stdout
    assert result.stdout.count(f"next: aekit report {out}") == 1, result.stdout
    # The same global batches, each weighed as one process weighs it, the first epoch's
    # outliers judged over the global batch: the losses differ only by the order of sums
    assert json.loads((out / "model.json").read_text())["early_epoch"] == 1
    one, two = _val_losses(single), _val_losses(out)
    assert len(two) == 3
    assert np.allclose(two, one, rtol=1e-4, atol=0), (one, two)
    assert {p.name for p in out.iterdir()} >= {"config.toml", "metrics.csv", "model.safetensors"}


def test_padding_of_an_uneven_epoch_does_not_count_in_the_loss(tmp_path):
    # The case: digits, 1,611 training rows, 20 epochs of batch 64. Two processes pad
    # each epoch's last batch (27 rows) with a repeated row; counted, it took the final
    # validation loss from 0.13571 to 0.14779 (and epoch 1 from 0.141464 to 0.142425). The
    # default trim's first 5 epochs leave out the outliers of the real rows alone
    store = ingest(load_digits().data.astype(np.float32), tmp_path / "d.zarr", progress=False)
    assert len(store.train_index) % 2 and len(store.train_index) % 64
    common = ["--latent-dim", "8", "--epochs", "20", "--batch-size", "64", "--seed", "0",
              "--device", "cpu", "--quiet"]  # fmt: skip
    losses = []
    for nproc in ("1", "2"):
        out = tmp_path / f"run{nproc}"
        args = [*AEKIT, "train", str(store.path), "--out", str(out), "--nproc", nproc, *common]
        subprocess.run(args, check=True, timeout=300, capture_output=True)
        losses.append(_val_losses(out))
    # Two processes sum in another order, and 20 epochs grow that rounding: their later epochs
    # differ from one process's by up to 1.3e-4 (relative); with the padded rows counted in the
    # mean, the last epoch's loss was 9 % higher (0.1459 against 0.1338)
    assert np.allclose(losses[1], losses[0], rtol=1e-3, atol=0), losses


def test_two_processes_train_a_users_network_as_one_does(store, tmp_path):
    # A network from tests/networks.py, by import path (the processes start in the repository's
    # root, where it imports); without dropout, whose masks each rank draws apart
    user = ["--network", "tests.networks:table_net", "--set", "model.network_kwargs={dropout=0.0}"]
    losses = []
    for nproc in ("1", "2"):
        out = tmp_path / f"run{nproc}"
        args = [*AEKIT, "train", str(store.path), "--out", str(out), "--nproc", nproc, *COMMON]
        subprocess.run([*args, *user], check=True, timeout=300, cwd=Path(__file__).parents[1])
        losses.append(_val_losses(out))
    assert len(losses[1]) == 3 and np.allclose(losses[1], losses[0], rtol=1e-4, atol=0), losses


@pytest.mark.parametrize(("first", "then"), [(2, 1), (1, 2)])
def test_a_run_resumes_with_another_number_of_processes(store, single, tmp_path, first, then):
    out = tmp_path / "run"
    steps_per_epoch = -(-len(store.train_index) // 64)
    with subprocess.Popen(
        [*AEKIT, "train", str(store.path), "--out", str(out), "--nproc", str(first), *COMMON],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        _kill_mid_epoch_two(proc, out, steps_per_epoch)
    position = load_checkpoint(latest_checkpoint(out / "checkpoints"))["position"]
    assert position["epoch"] == 1 and 0 < position["batch"] < steps_per_epoch, position

    result = subprocess.run(
        [*AEKIT, "train", "--out", str(out), "--resume", "--quiet", "--nproc", str(then)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The same global batches in the same order: the run ends where the single one did
    losses, reference = _val_losses(out), _val_losses(single)
    assert len(losses) == 3
    assert abs(losses[-1] - reference[-1]) / reference[-1] < 0.01, (losses, reference)


def _workers(launcher_pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[3]) == launcher_pid and b"aekit" in cmdline:
            found.append(int(entry.name))
    return found


def _torchrun(store, out: Path, restarts: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            f"--max-restarts={restarts}",
            "--monitor-interval=0.5",
            "-m",
            "aekit",
            "train",
            str(store.path),
            "--out",
            str(out),
            *COMMON,
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_one_worker_after_first_checkpoint(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.time() + 240
    while time.time() < deadline and not (
        (out / "checkpoints").is_dir() and latest_checkpoint(out / "checkpoints")
    ):
        time.sleep(0.005)
    workers = _workers(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)


def _finish(proc: subprocess.Popen, timeout: float) -> str:
    """The job's output once it ends; on a hang, kill the whole process group and fail."""
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the job did not end within {timeout} s")
    return output


def test_a_rank_that_dies_ends_the_job_instead_of_hanging(store, tmp_path):
    out = tmp_path / "run"
    with _torchrun(store, out, restarts=0) as proc:
        _kill_one_worker_after_first_checkpoint(proc, out)
        output = _finish(proc, 120)  # a hang fails here; how fast the job ends is no test's figure
    assert proc.returncode != 0
    assert "Signal 9 (SIGKILL)" in output or "exitcode" in output
    assert not (out / "model.safetensors").exists()


def test_torchrun_elastic_restart_resumes_from_the_last_checkpoint(store, single, tmp_path):
    out = tmp_path / "run"
    with _torchrun(store, out, restarts=1) as proc:
        _kill_one_worker_after_first_checkpoint(proc, out)
        output = _finish(proc, 180)
    assert proc.returncode == 0, output[-3000:]
    losses = _val_losses(out)
    assert len(losses) == 3
    assert abs(losses[-1] - _val_losses(single)[-1]) / _val_losses(single)[-1] < 0.01
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize("order", ["global", "block"])
def test_two_processes_train_on_series_windows_as_one_does(tmp_path, order):
    """Windows cut from a series store at batch time, gathered (global order) or from blocks
    and their halos (block order): two processes split each global batch of windows as they
    split rows, and reach one process's validation losses."""
    steps = np.arange(9_001)
    series = np.stack([np.sin(steps / 7), np.cos(steps / 11), np.sin(steps / 3)], axis=1)
    noisy = series + 0.05 * np.random.default_rng(0).normal(size=series.shape)
    store = ingest(noisy.astype(np.float32), tmp_path / "m.zarr", series=True, progress=False)
    # (This store is one block; halos across blocks are tested in process, test_series.py)
    windows = ["--window-length", "24", "--window-stride", "3", "--shuffle", order]
    losses = []
    for nproc in ("1", "2"):
        out = tmp_path / f"run{nproc}"
        args = [*AEKIT, "train", str(store.path), "--out", str(out), "--nproc", nproc, *COMMON]
        subprocess.run([*args, *windows], check=True, timeout=300)
        windows_used = json.loads((out / "model.json").read_text())["windows"]
        assert (windows_used["length"], windows_used["stride"]) == (24, 3)
        losses.append(_val_losses(out))
    assert len(losses[1]) == 3 and np.allclose(losses[1], losses[0], rtol=1e-4, atol=0), losses
