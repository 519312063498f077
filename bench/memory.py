"""Memory does not grow with the store: peak RssAnon training on a 0.5 GB and a 6 GB store,
then ``aekit train`` on the 6 GB store in the global and the block order (784-128-784 and the
defaults: the epoch's peak against the whole command's), ``aekit score --fpr 0.01 --normal`` on
every row of a million-row store, then encoding and scoring the 6 GB store with the run trained
on the small one.

Each run is a fresh process (training: one epoch of dense 784-128-784, batch 256) under
``ulimit -d 1500000`` (1.43 GiB of data segment), so anything that pulled the 6 GB store into
process memory would fail outright.

``--series``: ``aekit train`` on a series store of 50,000,000 steps x 8 channels (1.6 GB as
float32; ``--series-steps``), one epoch at the default window and stride, under the same limit,
and the store's size on disk against the series' own.
Run: python -m bench memory [--small-gb 0.5] [--large-gb 6] [--orders-only | --series]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import feature_store, series_store

LIMIT_KIB = 1_500_000


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (LIMIT_KIB * 1024, LIMIT_KIB * 1024))


def _probe(args: list[str], what: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory_probe", *args],
        capture_output=True,
        text=True,
        preexec_fn=_limit,
        check=False,
    )
    if result.returncode != 0 or json.loads(result.stdout.strip().splitlines()[-1]).get("exit"):
        print(result.stdout[-2000:], result.stderr[-2000:])
        raise SystemExit(f"{what} failed under ulimit -d {LIMIT_KIB}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _apply_runs(small: Path, large: Path) -> dict:
    """Train a small run on the small store (1 epoch), then encode and score the large one."""
    work = Path(tempfile.mkdtemp(prefix="aekit-bench-", dir=large.parent))
    try:
        run = work / "run"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aekit",
                "train",
                str(small),
                "--out",
                str(run),
                "--set",
                "train.epochs=1",
                "--latent-dim",
                "32",
                "--set",
                "log.progress=none",
            ],
            check=True,
            capture_output=True,
        )
        out = {}
        for task, name in (("encode", "codes.npy"), ("score", "scores.parquet")):
            r = _probe(["--", task, str(run), str(large), "--out", str(work / name)], task)
            r["output_mib"] = (work / name).stat().st_size / 2**20
            out[task] = r
            print(
                f"  {task} the large store: peak RssAnon {r['peak_rss_anon_mib']:.0f} MiB, "
                f"{r['seconds']:.0f} s, output {r['output_mib']:.0f} MiB, under ulimit -d "
                f"{LIMIT_KIB}"
            )
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# The tutorials' model (784-128-784), then aekit's defaults
MODELS = {"784-128-784": ["--hidden", "none", "--latent-dim", "128"], "defaults": []}


def _orders(large: Path) -> dict:
    """Peak RssAnon of ``aekit train`` (one epoch of the large store, batch 256) in each epoch
    order and for each model: during the epochs, and over the whole command (the early copy's
    medians, the threshold's calibration and the closing summary come after the epochs)."""
    out = {}
    for model, flags in MODELS.items():
        for order in ("global", "block"):
            work = Path(tempfile.mkdtemp(prefix="aekit-bench-", dir=large.parent))
            try:
                args = ["--", "train", str(large), "--out", str(work / "run"), "--epochs", "1"]
                args += ["--batch-size", "256", "--shuffle", order, "--quiet", *flags]
                r = _probe(args, f"{model}, {order} order")
            finally:
                shutil.rmtree(work, ignore_errors=True)
            r["after_over_epochs"] = r["peak_rss_anon_mib"] / r["epochs_peak_rss_anon_mib"]
            out[f"{model}, {order}"] = r
            print(
                f"  aekit train, {model}, {order} order, one epoch of the large store: peak "
                f"RssAnon {r['epochs_peak_rss_anon_mib']:.0f} MiB in the epoch, "
                f"{r['peak_rss_anon_mib']:.0f} MiB over the command ({r['after_over_epochs']:.3f}"
                f"), {r['seconds']:.0f} s, under ulimit -d {LIMIT_KIB}"
            )
    return out


def _score_all(million: Path, run_store: Path) -> dict:
    """``aekit score --fpr 0.01 --normal STORE`` on every row of a million-row store: a threshold
    calibrated on all of them, then each row's score and its 784 per-feature parts."""
    work = Path(tempfile.mkdtemp(prefix="aekit-bench-", dir=million.parent))
    try:
        run = work / "run"
        train = ["train", str(run_store), "--out", str(run), "--epochs", "1", "--quiet"]
        subprocess.run(
            [sys.executable, "-m", "aekit", *train],
            check=True,
            capture_output=True,
        )
        out = work / "scores.parquet"
        args = ["--", "score", str(run), str(million), "--out", str(out)]
        r = _probe([*args, "--fpr", "0.01", "--normal", str(million)], "score --normal")
        r["output_mib"] = out.stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"  aekit score --fpr 0.01 --normal, all of a 1,000,000 x 784 store: peak RssAnon "
        f"{r['peak_rss_anon_mib']:.0f} MiB, {r['seconds']:.0f} s, output {r['output_mib']:.0f} "
        f"MiB, under ulimit -d {LIMIT_KIB}"
    )
    return r


def _series(steps: int) -> dict:
    """Peak RssAnon of ``aekit train`` (defaults, one epoch) on a series store of ``steps`` x 8,
    and the store's bytes on disk against the series' float32 bytes."""
    store = series_store(steps, 8)
    on_disk = sum(f.stat().st_size for f in Path(store.path).rglob("*") if f.is_file())
    work = Path(tempfile.mkdtemp(prefix="aekit-bench-", dir=Path(store.path).parent))
    try:
        args = ["--", "train", str(store.path), "--out", str(work / "run"), "--epochs", "1"]
        r = _probe([*args, "--quiet"], "series training")
        r["windows"] = json.loads((work / "run" / "model.json").read_text())["windows"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r.update(steps=steps, channels=8, store_bytes=on_disk, series_bytes=steps * 8 * 4)
    r["store_over_series"] = on_disk / r["series_bytes"]
    print(
        f"  aekit train, a series of {steps:,} steps x 8 channels, one epoch (window "
        f"{r['windows']['length']}, stride {r['windows']['stride']}): peak RssAnon "
        f"{r['epochs_peak_rss_anon_mib']:.0f} MiB in the epoch, {r['peak_rss_anon_mib']:.0f} MiB "
        f"over the command, {r['seconds']:.0f} s, under ulimit -d {LIMIT_KIB}; the store is "
        f"{r['store_over_series']:.3f} of the series' float32 bytes"
    )
    return r


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--small-gb", type=float, default=0.5)
    parser.add_argument("--large-gb", type=float, default=6.0)
    parser.add_argument("--apply-only", action="store_true", help="skip the training runs")
    parser.add_argument(
        "--orders-only",
        action="store_true",
        help="only aekit train in both epoch orders, and the million-row score",
    )
    parser.add_argument("--series", action="store_true", help="only training on a series")
    parser.add_argument("--series-steps", type=int, default=50_000_000)
    args = parser.parse_args(argv)
    if args.series:
        return {"series": _series(args.series_steps), "ulimit_d_kib": LIMIT_KIB}

    runs = {}
    stores = {}
    for label, gb in (("small", args.small_gb), ("large", args.large_gb)):
        n = int(gb * 1e9 / (784 * 4))
        store = feature_store(n)
        stores[label] = store.path
        if args.apply_only or args.orders_only:
            continue
        result = _probe([str(store.path)], f"training on the {gb} GB store")
        runs[label] = {"gb": gb, "n": n, **result}
        r = runs[label]
        print(
            f"  {gb:>4} GB store ({n:,} x 784 float32): peak RssAnon "
            f"{r['peak_rss_anon_mib']:.0f} MiB, {r['samples_per_s']:,.0f} samples/s, "
            f"{r['seconds']:.0f} s, under ulimit -d {LIMIT_KIB}"
        )
    orders = _orders(Path(stores["large"]))
    million = feature_store(1_000_000).path
    score_all = _score_all(Path(million), Path(stores["small"]))
    if args.orders_only:
        return {"orders": orders, "score_all": score_all, "ulimit_d_kib": LIMIT_KIB}
    ratio = None
    if runs:
        ratio = runs["large"]["peak_rss_anon_mib"] / runs["small"]["peak_rss_anon_mib"]
        print(f"peak RssAnon, {args.large_gb} GB / {args.small_gb} GB store: {ratio:.3f}")
    applied = _apply_runs(stores["small"], stores["large"])
    return {
        "runs": runs,
        "ratio": ratio,
        "orders": orders,
        "score_all": score_all,
        "apply": applied,
        "ulimit_d_kib": LIMIT_KIB,
    }
