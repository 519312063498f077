"""Threads of the model's maths: 1 against 2 and aekit's automatic choice, quiet and loaded.

Cases, each at 1 and 2 torch threads and with ``threads="auto"``:
- the Wine fit (estimator defaults, latent 3): seconds;
- digits, dense (latent 8) and conv (latent 8, 30 epochs): seconds;
- the 784-128-784 dense step, batch 256, on batches already in memory: samples/s.
All of it twice: on a quiet machine, then beside ``yes > /dev/null`` on every core (a busy
machine, as CI and shared servers are). The step's MFLOP (what the automatic choice reads)
is printed beside each case. Then, quiet, the automatic choice for the 784-128-784 step right
after a 2000 x 2000 NumPy product, as after a user's own preprocessing: BLAS threads still
spinning must not read as a busy machine.

Last, a load that starts or ends during a fit (dense 784-256-16 on 20,000 random rows, 40
epochs): ``yes`` on every core from 5 s to 35 s into the fit, ``threads="auto"`` (counted again
every 5 s) against the 2 threads a count at the start alone would keep; then ``yes`` for the
first 10 s, ``auto`` against the 1 thread the start's count would keep. Seconds per fit, the two
alternated twice (A B B A).

Run: python -m bench threads [--seconds 10] [--midway]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits, load_wine

from aekit import Autoencoder
from aekit.models import Architecture, build_model
from aekit.training.threads import choose_threads, step_flops
from bench.common import TrainStep, fit_batch

SETTINGS: tuple[int | str, ...] = (1, 2, "auto")


def _fit_seconds(X: np.ndarray, **params) -> Callable[[int | str], tuple[float, str]]:
    def run(threads: int | str) -> tuple[float, str]:
        n_jobs = None if threads == "auto" else threads
        started = time.perf_counter()
        ae = Autoencoder(random_state=0, n_jobs=n_jobs, **params).fit(X)
        seconds = time.perf_counter() - started
        # What the fit's automatic choice saw (the estimator does not keep its note); the fit
        # trains on all but the validation tenth
        batch = fit_batch(ae, len(X) - round(0.1 * len(X)))
        return seconds, choose_threads("auto", step_flops(ae.model_, X.shape[1:], batch))[1]

    return run


def _stream_rate(seconds: float) -> Callable[[int | str], tuple[float, str]]:
    torch.manual_seed(0)
    x = torch.randn(256, 784)
    mean, std = np.zeros(784, np.float32), np.ones(784, np.float32)

    def run(threads: int | str) -> tuple[float, str]:
        model = build_model(
            Architecture("dense", (784,), 128, hidden=(), activation="relu"), mean, std
        )
        n, note = choose_threads(threads, step_flops(model, (784,), 256))
        previous = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            step, samples, started = TrainStep(model), 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                samples += step.run(iter([x] * 10), 10)[1]
            return samples / (time.perf_counter() - started), note
        finally:
            torch.set_num_threads(previous)

    return run


def cases(seconds: float) -> dict[str, tuple[str, Callable[[int | str], tuple[float, str]]]]:
    wine = load_wine().data
    digits = load_digits().data.astype(np.float32)
    return {
        "wine fit": ("s", _fit_seconds(wine, latent_dim=3)),
        "digits dense fit": ("s", _fit_seconds(digits, latent_dim=8)),
        "digits conv fit": (
            "s",
            _fit_seconds(digits.reshape(-1, 8, 8, 1), kind="conv", latent_dim=8, epochs=30),
        ),
        "784-128-784 step": ("samples/s", _stream_rate(seconds)),
    }


def measure(seconds: float) -> dict:
    out: dict = {}
    all_cases = cases(seconds)
    all_cases["wine fit"][1](1)  # a first fit pays for lazy imports and set-up: not timed
    for name, (unit, run) in all_cases.items():
        figures = {str(t): run(t) for t in SETTINGS}
        values = {t: v for t, (v, _) in figures.items()}
        better = "lower" if unit == "s" else "higher"
        two_over_one = values["2"] / values["1"]
        print(
            f"    {name:<18} 1 thread {values['1']:>9,.2f}  2 threads {values['2']:>9,.2f}  "
            f"auto {values['auto']:>9,.2f} {unit} ({better} is better; 2/1 {two_over_one:.2f})"
        )
        print(f"      auto: {figures['auto'][1]}")
        out[name] = {"unit": unit, **values, "auto_choice": figures["auto"][1]}
    return out


def choices_after_numpy(tries: int = 5) -> list[int]:
    """Threads chosen for the 784-128-784 step, each right after a NumPy matrix product."""
    a = np.random.default_rng(0).random((2000, 2000))
    model = build_model(
        Architecture("dense", (784,), 128, hidden=(), activation="relu"),
        np.zeros(784),
        np.ones(784),
    )
    flops = step_flops(model, (784,), 256)
    chosen = []
    for _ in range(tries):
        a @ a
        chosen.append(choose_threads("auto", flops)[0])
    return chosen


def _fit_under_load(X: np.ndarray, n_jobs: int | None, load: tuple[float, float]) -> float:
    """Seconds of a fit with ``yes`` on every core from ``load[0]`` to ``load[1]`` seconds after
    it starts."""
    hogs: list[subprocess.Popen] = []
    lock = threading.Lock()

    def begin() -> None:
        with lock:
            hogs.extend(
                subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
                for _ in range(os.cpu_count() or 1)
            )

    def end() -> None:
        with lock:
            for hog in hogs:
                hog.kill()
                hog.wait()
            hogs.clear()

    timers = [threading.Timer(load[0], begin), threading.Timer(load[1], end)]
    started = time.perf_counter()
    for timer in timers:
        timer.start()
    try:
        Autoencoder(
            latent_dim=16, hidden=(256,), epochs=40, patience=0, n_jobs=n_jobs, random_state=0
        ).fit(X)
        return time.perf_counter() - started
    finally:
        for timer in timers:
            timer.cancel()
        end()


def load_midway() -> dict:
    """Fit seconds, ``auto`` against the count the start alone gives, for a load that starts
    during the fit and one that ends during it."""
    X = np.random.default_rng(0).standard_normal((20_000, 784)).astype(np.float32)
    out = {}
    cases = (("load starts at 5 s", (5.0, 35.0), 2), ("load ends at 10 s", (0.0, 10.0), 1))
    for name, load, fixed in cases:
        auto = [_fit_under_load(X, None, load)]
        kept = [_fit_under_load(X, fixed, load) for _ in range(2)]
        auto.append(_fit_under_load(X, None, load))
        a, k = float(np.mean(auto)), float(np.mean(kept))
        runs = " / ".join(", ".join(f"{s:.1f}" for s in r) for r in (auto, kept))
        print(
            f"    {name:<19} auto {a:6.1f} s, {fixed} thread{'s' * (fixed > 1)} kept {k:6.1f} s "
            f"(auto / kept {a / k:.2f}; runs {runs})",
            flush=True,
        )
        out[name] = {"auto": auto, "kept": kept, "kept_threads": fixed, "ratio": a / k}
    return out


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench threads")
    parser.add_argument("--seconds", type=float, default=10, help="length of the step timing")
    parser.add_argument("--midway", action="store_true", help="only the load during a fit")
    args = parser.parse_args(argv)
    if args.midway:
        print("  a load during a fit:")
        return {"midway": load_midway()}
    print(f"  quiet ({os.cpu_count()} cores):")
    result = {"quiet": measure(args.seconds)}
    chosen = choices_after_numpy()
    print(f"    auto right after a NumPy product: {chosen} threads ({len(chosen)} tries)")
    result["after_numpy"] = chosen
    hogs = [
        subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(os.cpu_count() or 1)
    ]
    try:
        print(f"  beside {len(hogs)} x yes > /dev/null:")
        result["hog"] = measure(args.seconds)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print("  a load during a fit:")
    result["midway"] = load_midway()
    return result
