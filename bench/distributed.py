"""Training throughput with 1 and 2 processes on one machine (torchrun, DDP, gloo on CPU).

Dense 784-128-784, global batch 256, one epoch of a 200,000 x 784 float32 store, through
``aekit train --nproc N``. torchrun gives each process one thread by default, so on a 2-core
machine 2 processes use the same cores as 1 process with 2 threads: the figure shows what
DDP's gradient all-reduce costs, not a speed-up. The second epoch is measured, which the
default trim ('early') trains on every sample; ``--trim auto`` trims it, so that the gather
of each step's losses across processes is in the figure.
Run: python -m bench distributed [--n 200000] [--trim auto]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import feature_store


def _rate(store: Path, nproc: int, folder: Path, trim: str) -> float:
    out = folder / f"run{nproc}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "aekit",
            "train",
            str(store),
            "--out",
            str(out),
            "--nproc",
            str(nproc),
            "--epochs",
            "2",
            "--batch-size",
            "256",
            "--latent-dim",
            "128",
            "--hidden",
            "none",
            "--activation",
            "relu",
            "--quiet",
            "--patience",
            "0",
            "--trim",
            trim,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    return float(rows[-1]["samples_per_s"])  # the second epoch: start-up excluded


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench distributed")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--trim", default="early", help="the samples left out: early, auto, 0.1")
    args = parser.parse_args(argv)
    store = feature_store(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        rates = {n: _rate(store.path, n, Path(tmp), args.trim) for n in (1, 2)}
    for n, rate in rates.items():
        print(f"  {n} process{'es' if n > 1 else ''}: {rate:,.0f} samples/s")
    ratio = rates[2] / rates[1]
    print(
        f"2 processes / 1 process throughput: {ratio:.2f} "
        f"({args.n:,} x 784 store, batch 256, trim {args.trim})"
    )
    return {"rates": rates, "ratio": ratio}
