"""One writer per destination: a second is refused naming the first, a dead one's lock is taken
over, and the partials a stopped writer left are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from aekit import ingest
from aekit.atomic import exclusive
from aekit.cli import main


@pytest.fixture
def store(tmp_path):
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    return ingest(X, tmp_path / "s.zarr", progress=False).path


@pytest.mark.parametrize("command", ["train", "encode"])
def test_a_second_writer_is_refused_and_named(command, store, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(store), "--out", str(run), "--epochs", "1", "--quiet"]
    if command == "encode":
        assert main(argv) == 0
        run = tmp_path / "codes.npy"
        argv = ["encode", str(tmp_path / "run"), str(store), "--out", str(run)]
    with exclusive(run):  # another writer of the destination, alive
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"being written by another aekit process (PID {os.getpid()})" in err
    assert not run.exists() or command == "train"
    assert main(argv) == 0  # once it is gone, the destination is free
    assert not list(tmp_path.glob(".*.lock"))


def test_the_lock_of_a_killed_writer_is_taken_over(store, tmp_path):
    run = tmp_path / "run"
    with subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom aekit.atomic import exclusive\n"
         f"with exclusive({str(run)!r}):\n    print('held', flush=True)\n    time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (tmp_path / ".run.lock").exists()  # left behind, with the dead PID in it
    assert main(["train", str(store), "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    assert (run / "model.safetensors").exists() and not (tmp_path / ".run.lock").exists()


def test_partials_a_stopped_command_left_are_removed_and_reported(store, tmp_path, capsys):
    stale = tmp_path / ".new.zarr.partial-0badc0de"
    (stale / "x").mkdir(parents=True)
    (stale / "x" / "c").write_bytes(bytes(1000))
    unrelated = tmp_path / ".other.zarr.partial-0badc0de"
    unrelated.mkdir()
    X = np.zeros((10, 2), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["ingest", str(tmp_path / "x.npy"), str(tmp_path / "new.zarr")]) == 0
    assert not stale.exists() and unrelated.exists()  # only the destination's own partials
    assert "removed 1 partial file(s)" in capsys.readouterr().err
