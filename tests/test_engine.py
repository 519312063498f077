from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.config import load_config, to_toml
from aekit.data.ingest import ingest
from aekit.errors import AekitError
from aekit.training.checkpoint import latest_checkpoint, load_checkpoint

AEKIT = [sys.executable, "-m", "aekit"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, 128))
    X = rng.normal(size=(20_000, 8)) @ basis + 0.1 * rng.normal(size=(20_000, 128))
    return ingest(X, tmp_path_factory.mktemp("s") / "s.zarr", val_fraction=0.1, progress=False)


def _metrics(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))


def _train_args(store, out, *extra: str) -> list[str]:
    return [
        "train",
        *extra,
        str(store.path),
        "--out",
        str(out),
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--hidden",
        "256",
        "--latent-dim",
        "8",
        "--schedule",
        "onecycle",
        "--quiet",
        "--set",
        "checkpoint.every_steps=10",
    ]


@pytest.mark.parametrize(
    "order",
    [
        [],  # auto: this small store is shuffled globally
        ["--shuffle", "block", "--set", "data.shuffle_window=1"],  # one 4 MiB block a window
    ],
    ids=["global", "block"],
)
def test_a_run_killed_mid_epoch_resumes_to_bitwise_the_same_weights(store, tmp_path, order):
    steps_per_epoch = -(-len(store.train_index) // 64)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([*AEKIT, *_train_args(store, whole, *order)], check=True, timeout=600)

    with subprocess.Popen([*AEKIT, *_train_args(store, killed, *order)]) as proc:
        # Kill without warning in the middle of the second epoch
        target = int(steps_per_epoch * 1.3)
        deadline = time.time() + 300
        while time.time() < deadline:
            last = (
                latest_checkpoint(killed / "checkpoints")
                if (killed / "checkpoints").exists()
                else None
            )
            if last is not None and int(last.stem.split("-")[1]) >= target:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    payload = load_checkpoint(latest_checkpoint(killed / "checkpoints"))
    position = payload["position"]
    assert position["epoch"] == 1 and 0 < position["batch"] < steps_per_epoch, position
    assert not (killed / "model.safetensors").exists()

    subprocess.run(
        [*AEKIT, "train", "--out", str(killed), "--resume", "--quiet"], check=True, timeout=600
    )
    assert (killed / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    for a, b in zip(_metrics(whole), _metrics(killed), strict=True):
        assert (a["epoch"], a["train_loss"], a["val_loss"], a["lr"]) == (
            b["epoch"],
            b["train_loss"],
            b["val_loss"],
            b["lr"],
        )


def test_a_kill_while_a_checkpoint_is_written_leaves_the_previous_one_usable(
    store, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    assert main([*_train_args(store, run)[:-2], "--epochs", "1"]) == 0
    previous = latest_checkpoint(run / "checkpoints")

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process is stopped in the middle of the write

    monkeypatch.setattr(torch, "save", dying_save)
    from aekit.training.checkpoint import Checkpointer

    with pytest.raises(KeyboardInterrupt):
        state = type(
            "S",
            (),
            {
                "model": torch.nn.Linear(1, 1),
                "step": 10**6,
                "history": [],
                "loss_sum": 0.0,
                "sample_count": 0,
                "settle": lambda: None,
                "optimizer": torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1),
            },
        )()
        Checkpointer(run / "checkpoints", [], {}).save(state, epoch=0, batch=1)  # type: ignore[arg-type]
    monkeypatch.undo()
    assert latest_checkpoint(run / "checkpoints") == previous
    assert load_checkpoint(previous)["position"]["epoch"] == 1
    assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0


def test_divergence_stops_with_exit_3_naming_the_step_and_keeps_the_last_good_checkpoint(
    store, tmp_path
):
    run = tmp_path / "run"
    result = subprocess.run(
        [
            *AEKIT,
            "train",
            str(store.path),
            "--out",
            str(run),
            "--learning-rate",
            "1e6",
            "--batch-size",
            "256",
            "--quiet",
            "--set",
            "checkpoint.every_steps=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3
    line = result.stderr.strip()
    assert "the loss became" in line and "at step" in line and "learning rate" in line
    assert len(line.splitlines()) == 1
    last = latest_checkpoint(run / "checkpoints")
    assert str(last) in line
    weights = load_checkpoint(last)["model"]
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_schedules_change_the_learning_rate_as_they_should(store, tmp_path):
    lrs = {}
    for schedule in ("cosine", "onecycle", "plateau", "constant"):
        run = tmp_path / schedule
        assert (
            main(
                [
                    "train",
                    str(store.path),
                    "--out",
                    str(run),
                    "--epochs",
                    "4",
                    "--batch-size",
                    "512",
                    "--schedule",
                    schedule,
                    "--quiet",
                    "--set",
                    "train.plateau_patience=1",
                    "--set",
                    "train.learning_rate=0.05",
                ]
            )
            == 0
        )
        lrs[schedule] = [float(r["lr"]) for r in _metrics(run)]
    assert lrs["constant"] == [0.05] * 4
    assert lrs["cosine"][-1] < 1e-6 and lrs["cosine"] == sorted(lrs["cosine"], reverse=True)
    assert lrs["onecycle"][-1] < 1e-4 and max(lrs["onecycle"]) <= 0.05
    assert min(lrs["plateau"]) <= 0.05 and all(
        v in (0.05, 0.025, 0.0125, 0.00625) for v in lrs["plateau"]
    )


def test_load_rebuilds_the_model_from_safetensors_without_pickle(store, tmp_path):
    run = tmp_path / "run"
    assert main(["train", str(store.path), "--out", str(run), "--epochs", "2", "--quiet"]) == 0
    ae = aekit.load(run)
    X = store.read(np.arange(5))
    Z = ae.transform(X)
    assert Z.shape == (5, 2) and np.isfinite(Z).all()
    assert np.allclose(ae.inverse_transform(Z).mean(), X.mean(), atol=3 * X.std())
    assert {p.name for p in run.iterdir()} == {
        "config.toml",
        "metrics.csv",
        "checkpoints",
        "model.safetensors",
        "model.json",
    }
    with pytest.raises(AekitError, match="holds no trained model"):
        aekit.load(tmp_path)


def test_no_reader_of_a_run_unpickles():
    source = Path(aekit.__file__).parent
    for path in source.rglob("*.py"):
        text = path.read_text()
        assert "pickle.load" not in text, path
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"


def test_config_files_flags_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nlatent_dim = 4\n[train]\nepochs = 7\n")
    config = load_config(
        path,
        {"train.epochs": 9},
        ["train.learning_rate=3e-4", "model.hidden=[32, 8]", "data.store=x.zarr"],
    )
    assert (config.model.latent_dim, config.train.epochs) == (4, 9)
    assert config.train.learning_rate == 3e-4 and config.model.hidden == [32, 8]
    assert config.data.store == "x.zarr"
    assert load_config(None, None, None).model_dump() != config.model_dump()
    saved = tmp_path / "saved.toml"
    saved.write_text(to_toml(config))
    assert load_config(saved) == config


@pytest.mark.parametrize(
    ("text", "sets", "message"),
    [
        ("[train]\nepoch = 3\n", [], "unknown key 'train.epoch'; known keys here: epochs,"),
        ("[train]\nepochs = '3'\n", [], "'train.epochs' should be 'auto' or an int >= 1; got '3'"),
        (
            "[train]\nepochs = 3\n",
            ["train.epochs=abc"],
            "'train.epochs' should be 'auto' or an int >= 1",
        ),
        (
            "[model]\nhidden = 64\n",
            [],
            "'model.hidden' should be a sequence of ints from 1 to 1048576 (empty for none) "
            "or 'auto'; got 64",
        ),
        ("[nope]\nx = 1\n", [], "unknown key 'nope'; known keys here: data, model, train"),
        ("[train\n", [], "not valid TOML"),
    ],
)
def test_config_mistakes_name_the_key(tmp_path, capsys, text, sets, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    args = ["validate", str(path)] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_shipped_configs_validate_and_start_with_their_command(capsys):
    configs = sorted((Path(__file__).parents[1] / "configs").iterdir())
    assert configs
    for path in configs:
        assert path.read_text().startswith("# aekit ")
        assert main(["validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out


def test_resuming_needs_a_run_and_a_new_run_needs_a_fresh_folder(store, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "none holds no run to resume (no config.toml); give the store" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", str(store.path), "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    assert main(["train", str(store.path), "--out", str(run), "--epochs", "1"]) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err


def test_the_same_command_with_resume_continues_and_different_options_are_listed(
    store, tmp_path, capsys
):
    run = tmp_path / "run"
    command = ["train", str(store.path), "--out", str(run), "--epochs", "1", "--quiet"]
    assert main(command) == 0
    before = _metrics(run)
    # The command repeated with --resume: the run is complete, so it adds no epoch
    assert main([*command, "--resume"]) == 0
    assert _metrics(run) == before
    assert main([*command[:-2], "2", "--latent-dim", "5", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "train.epochs saved 1, given 2" in err and "model.latent_dim saved 2, given 5" in err
    assert len(err.strip().splitlines()) == 1


def test_a_run_that_died_before_its_first_checkpoint_starts_again(store, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(store.path), "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    for path in (run / "checkpoints").iterdir():  # as if killed before the first checkpoint
        path.unlink()
    (run / "metrics.csv").write_text("epoch,train_loss\n")
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert "no checkpoint yet: starting the run from its beginning" in capsys.readouterr().out
    assert [row["epoch"] for row in _metrics(run)] == ["1"]
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    assert main(["train", str(store.path), "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    assert "stopped before its first checkpoint: starting it again" in capsys.readouterr().out


def test_plain_progress_lines_when_not_a_terminal(store, tmp_path, capsys):
    assert main(["train", str(store.path), "--out", str(tmp_path / "r"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in out if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "samples/s" in epoch_lines[0] and "left" in epoch_lines[0]
    # The order is chosen before the first epoch and said with its reason
    assert out[0].startswith("data order: global") and "memory" in out[0], out[0]


def test_find_lr_suggests_a_rate_and_plots_the_range(store, tmp_path, capsys):
    assert main(["train", str(store.path), "--out", str(tmp_path / "lr"), "--find-lr"]) == 0
    out = capsys.readouterr().out
    suggested = float(out.split("suggested learning rate: ")[1].split()[0])
    assert 1e-5 < suggested < 1
    assert (tmp_path / "lr" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


def test_tensorboard_events_and_validation_every_n_steps(store, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(store.path),
                "--out",
                str(run),
                "--epochs",
                "1",
                "--batch-size",
                "512",
                "--set",
                "log.tensorboard=true",
                "--set",
                "train.val_every_steps=10",
            ]
        )
        == 0
    )
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    out = capsys.readouterr().out
    assert "step 10: val_loss" in out and "step 30: val_loss" in out


def test_a_denoising_vae_resumes_to_bitwise_the_same_weights(tmp_path, monkeypatch):
    # The objective draws corruption noise and code samples from its own generator, whose state
    # the checkpoints carry: the resumed run draws what the run left alone would have
    X = np.random.default_rng(1).normal(size=(600, 12)).astype(np.float32)
    store = ingest(X, tmp_path / "s.zarr", val_fraction=0.1, progress=False)
    argv = ["train", str(store.path), "--kind", "vae", "--noise", "gaussian:0.1", "--epochs", "3",
            "--batch-size", "32", "--quiet", "--set", "checkpoint.every_steps=7"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0

    import aekit.training.loop as loop

    step, calls = loop._step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 30:  # mid-epoch 2, after the checkpoint of step 28
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(loop, "_step", interrupted)
    assert main([*argv, "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.undo()
    assert (
        load_checkpoint(latest_checkpoint(tmp_path / "cut" / "checkpoints"))["position"]["step"]
        == 28
    )
    assert main([*argv, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    whole, cut = (tmp_path / d / "model.safetensors" for d in ("whole", "cut"))
    assert whole.read_bytes() == cut.read_bytes()


def _dead_lock(run: Path) -> None:
    """A lock left beside ``run`` by a holder that was killed (its PID, no flock held)."""
    (run.parent / f".{run.name}.lock").write_text("999999\n")


@pytest.mark.parametrize(
    "died",
    [
        lambda run: None,  # before the folder was made
        lambda run: run.mkdir(),  # with the folder made, empty
        lambda run: (run.mkdir(), (run / ".config.toml.partial-0123abcd").write_text("[d")),
        lambda run: (run.mkdir(), _dead_lock(run)),
    ],
    ids=["no-folder", "empty-folder", "hidden-partial", "stale-lock"],
)
def test_the_same_command_with_resume_starts_a_run_that_died_before_writing(
    store, tmp_path, capsys, died
):
    run = tmp_path / "run"
    died(run)
    command = ["train", str(store.path), "--out", str(run), "--epochs", "1", "--resume"]
    assert main(command) == 0
    assert "run has no checkpoint yet: starting the run from its beginning" in (
        capsys.readouterr().out
    )
    assert (run / "model.safetensors").is_file()
    assert [p.name for p in run.iterdir() if ".partial-" in p.name] == []


def test_a_folder_holding_other_files_and_no_run_is_refused_untouched(store, tmp_path, capsys):
    run = tmp_path / "k"
    run.mkdir()
    (run / "data.csv").write_text("a,b\n1,2\n")
    for extra in ([], ["--resume"]):
        assert main(["train", str(store.path), "--out", str(run), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert f"--out {run} holds no run (no config.toml) but other files (data.csv" in err
        assert sorted(p.name for p in run.iterdir()) == ["data.csv"]


def test_the_same_command_with_resume_finishes_whenever_it_was_killed(store, tmp_path):
    # Killed at once (before the folder), then once the folder exists, then after a checkpoint:
    # the retry, always the same command with --resume, trains the run to its end
    run = tmp_path / "run"
    command = [*AEKIT, *_train_args(store, run, "--resume")]
    for ready in (
        lambda: True,
        lambda: run.is_dir(),
        lambda: (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir()),
    ):
        with subprocess.Popen(command) as proc:
            deadline = time.time() + 300
            while not ready() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.002)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    subprocess.run(command, check=True, timeout=600)
    assert [row["epoch"] for row in _metrics(run)] == ["1", "2", "3"]
