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
    "fit-time",
    "mnist",
    "odds",
    "user-network",
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
    (out / f"{name}-{stamp}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
