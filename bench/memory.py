"""Memory does not grow with the store: peak RssAnon training on a 0.5 GB and a 6 GB store.

Each run is a fresh process training one epoch (dense 784-128-784, batch 256) under
``ulimit -d 1500000`` (1.43 GiB of data segment), so a loader that pulled the 6 GB store into
process memory would fail outright.
Run: python -m bench memory [--small-gb 0.5] [--large-gb 6]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from bench.common import feature_store

LIMIT_KIB = 1_500_000


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (LIMIT_KIB * 1024, LIMIT_KIB * 1024))


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--small-gb", type=float, default=0.5)
    parser.add_argument("--large-gb", type=float, default=6.0)
    args = parser.parse_args(argv)

    runs = {}
    for label, gb in (("small", args.small_gb), ("large", args.large_gb)):
        n = int(gb * 1e9 / (784 * 4))
        store = feature_store(n)
        result = subprocess.run(
            [sys.executable, "-m", "bench.memory_probe", str(store.path)],
            capture_output=True,
            text=True,
            preexec_fn=_limit,
            check=False,
        )
        if result.returncode != 0:
            print(result.stderr[-2000:])
            raise SystemExit(f"training on the {gb} GB store failed under ulimit -d {LIMIT_KIB}")
        runs[label] = {"gb": gb, "n": n, **json.loads(result.stdout.strip().splitlines()[-1])}
        r = runs[label]
        print(
            f"  {gb:>4} GB store ({n:,} x 784 float32): peak RssAnon "
            f"{r['peak_rss_anon_mib']:.0f} MiB, {r['samples_per_s']:,.0f} samples/s, "
            f"{r['seconds']:.0f} s, under ulimit -d {LIMIT_KIB}"
        )
    ratio = runs["large"]["peak_rss_anon_mib"] / runs["small"]["peak_rss_anon_mib"]
    print(f"peak RssAnon, {args.large_gb} GB / {args.small_gb} GB store: {ratio:.3f}")
    return {"runs": runs, "ratio": ratio, "ulimit_d_kib": LIMIT_KIB}
