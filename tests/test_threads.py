from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from aekit import Autoencoder
from aekit.cli import main
from aekit.models import Architecture, build_model
from aekit.training import fitting, threads
from aekit.training.callbacks import FollowFreeCores
from aekit.training.threads import SMALL_STEP_FLOPS, choose_threads, step_flops


@pytest.fixture(autouse=True)
def _no_omp_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_a_small_step_gets_one_thread_and_a_large_one_a_thread_per_free_core(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "_free_between", lambda before, after, cores: 3)  # 3 of the 4
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    n, why, follow = choose_threads("auto", SMALL_STEP_FLOPS / 2)
    assert n == 1 and "1 thread" in why and "MFLOP" in why and not follow
    n, why, follow = choose_threads("auto", SMALL_STEP_FLOPS * 2)
    assert n == 3 and "3 of 4 cores free" in why and "counted again every 5 s" in why and follow
    assert choose_threads(-1, 1.0)[0] == 4
    assert choose_threads(2, 1.0) == (2, "2 threads, as asked", False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two torchrun processes share the 4 cores
    assert choose_threads("auto", SMALL_STEP_FLOPS * 2)[0] == 1
    assert choose_threads(-1, 1.0)[0] == 2


def test_a_thread_count_in_omp_num_threads_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    n, why, follow = choose_threads("auto", SMALL_STEP_FLOPS * 100)
    assert n == torch.get_num_threads() and "OMP_NUM_THREADS" in why and not follow


def test_free_cores_are_between_one_and_the_cores():
    assert 1 <= threads.free_cores() <= threads.usable_cores()


@pytest.mark.parametrize("own_jiffies, free", [(0, 1), (100, 2)])
def test_cores_busy_with_this_process_count_as_free(monkeypatch, own_jiffies, free):
    # Over the sample, 100 of the 2 cores' 200 jiffies are idle: one core was busy. When this
    # process did that work (BLAS threads spinning after a NumPy product), both are free to it
    ticks = os.sysconf("SC_CLK_TCK")
    machine = iter([(1000, 5000), (1100, 5200)])
    own = iter([3.0, 3.0 + own_jiffies / ticks])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(machine))
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert threads.free_cores() == free


def test_the_counter_follows_a_load_that_starts_and_ends(monkeypatch):
    # Three readings of 2 cores, 100 jiffies apart each: between the first two another process
    # keeps one core busy while this one uses the other; then the other process has ended
    ticks = os.sysconf("SC_CLK_TCK")
    machine = iter([(1000, 5000), (1000, 5200), (1100, 5400)])
    own = iter([3.0, 3.0 + 100 / ticks, 3.0 + 200 / ticks])
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(machine))
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own))
    counter = threads.FreeCoreCounter()
    assert [counter.count(), counter.count()] == [1, 2]


def test_an_automatic_fit_counts_the_free_cores_again_as_it_trains(monkeypatch, blobs):
    X, _ = blobs
    monkeypatch.setattr(threads, "SMALL_STEP_FLOPS", 0.0)  # this model counts as a large one
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "free_cores", lambda: 2)  # both free at the start
    # Counted after every step, and a load has started: one core is left
    monkeypatch.setattr(fitting, "FollowFreeCores", lambda: FollowFreeCores(every=0.0))
    seen: list[int] = []

    def count(self) -> int:
        seen.append(torch.get_num_threads())
        return 1

    monkeypatch.setattr(threads.FreeCoreCounter, "count", count)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        Autoencoder(latent_dim=2, epochs=2, random_state=0).fit(X)
        assert len(seen) > 2 and seen[0] == 2 and set(seen[1:]) == {1}
        assert torch.get_num_threads() == 3  # the caller's setting back
        seen.clear()
        Autoencoder(latent_dim=2, epochs=2, n_jobs=2, random_state=0).fit(X)
        assert seen == []  # a count asked for is kept
    finally:
        torch.set_num_threads(previous)


def test_step_flops_counts_the_dense_layers_forward_and_backward():
    model = build_model(
        Architecture("dense", (784,), 128, hidden=(), activation="relu"),
        np.zeros(784),
        np.ones(784),
    )
    # Two 784 x 128 matrix products per sample forward (2 flops per multiply-add), x3 in all
    assert step_flops(model, (784,), 256) == pytest.approx(3 * 2 * 2 * 784 * 128 * 256, rel=0.01)


def test_the_estimator_takes_n_jobs_and_gives_torch_its_setting_back(blobs):
    X, _ = blobs
    torch.set_num_threads(2)
    ae = Autoencoder(latent_dim=2, epochs=3, n_jobs=1, random_state=0).fit(X)
    assert torch.get_num_threads() == 2
    assert ae.get_params()["n_jobs"] == 1
    with pytest.raises(ValueError, match="'n_jobs' parameter of Autoencoder must be"):
        Autoencoder(n_jobs=0).fit(X)


def test_train_says_how_many_threads_and_takes_threads(tmp_path, capsys, blobs):
    from aekit.data.ingest import ingest

    X, _ = blobs
    store = ingest(X.astype(np.float32), tmp_path / "s.zarr", progress=False)
    assert main(["train", str(store.path), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 0
    assert "compute: 1 thread: a step of this model is" in capsys.readouterr().out
    out = tmp_path / "r2"
    assert (
        main(["train", str(store.path), "--out", str(out), "--epochs", "1", "--threads", "2"]) == 0
    )
    assert "compute: 2 threads, as asked" in capsys.readouterr().out
    assert "threads = 2" in (out / "config.toml").read_text()
    assert main(["train", str(store.path), "--out", str(tmp_path / "r3"), "--threads", "0"]) == 2
    assert "--threads: 'train.threads' should be 'auto'" in capsys.readouterr().err
