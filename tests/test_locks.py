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


# --- nothing beside a destination is followed or matched blindly ---------------------------


def test_a_link_planted_at_the_lock_is_refused_and_its_target_left_alone(store, tmp_path, capsys):
    assert main(["train", str(store), "--out", str(tmp_path / "run"), "--epochs", "1"]) == 0
    target = tmp_path / "bashrc"
    target.write_text("export PATH\n")
    (tmp_path / ".codes.npy.lock").symlink_to(target)
    capsys.readouterr()
    argv = ["encode", str(tmp_path / "run"), str(store), "--out", str(tmp_path / "codes.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / '.codes.npy.lock'} is a symbolic link; aekit writes its own" in err
    assert target.read_text() == "export PATH\n"
    assert not (tmp_path / "codes.npy").exists()


def test_a_name_with_pattern_characters_sweeps_only_its_own_partials(store, tmp_path):
    # 'gb*.zarr' once matched the live partial of another command's gb1.zarr, and removed it
    others = tmp_path / ".gb1.zarr.partial-0badc0de"
    others.mkdir()
    own = tmp_path / ".gb*.zarr.partial-0badc0de"
    own.mkdir()
    np.save(tmp_path / "x.npy", np.zeros((10, 2), np.float32))
    assert main(["ingest", str(tmp_path / "x.npy"), str(tmp_path / "gb*.zarr")]) == 0
    assert others.is_dir() and not own.exists()


def test_a_link_planted_at_a_run_file_is_not_written_through(store, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(store), "--out", str(run), "--epochs", "2", "--quiet"]
    argv += ["--set", "checkpoint.every_steps=1"]
    assert main(argv) == 0
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("keep me\n")
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(outside)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2  # the same command, resumed: the log is rewritten
    err = capsys.readouterr().err
    assert f"{run / 'metrics.csv'} is a symbolic link; aekit writes its own files" in err
    assert outside.read_text() == "keep me\n"
