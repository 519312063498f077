"""Run one benchmark: python -m bench NAME [options]. Results are also saved as JSON."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

BENCHES = [
    "wine",
    "digits",
    "anomaly",
    "compress",
    "stream",
    "memory",
    "images",
    "engine",
    "distributed",
    "cold",
    "s3",
    "threads",
    "gpu",
    "dtype",
    "fit-time",
    "mnist",
    "odds",
    "user-network",
    "smap",
]


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
        print(f"usage: python -m bench {{{','.join(BENCHES)}}} [options]", file=sys.stderr)
        return 2
    name = sys.argv[1]
    started = time.time()
    result = importlib.import_module(f"bench.{name.replace('-', '_')}").main(sys.argv[2:])
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    record = {"run": _provenance(started), **result}  # so every figure traces to its run
    (out / f"{name}-{stamp}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return 0


def _provenance(started: float) -> dict:
    """What the documentation's benchmarks page says of a run: its command, commit, date and
    machine."""
    import os
    import platform
    import subprocess

    import torch

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], check=False).returncode != 0
    memory = (
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    )
    return {
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(memory / 1e9, 1),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }


if __name__ == "__main__":
    sys.exit(main())
