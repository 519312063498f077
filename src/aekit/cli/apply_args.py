"""Arguments and output shared by the commands that put a run to work."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_run_and_source(parser: argparse.ArgumentParser, *, source: bool = True) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="run folder written by 'aekit train'")
    if source:
        parser.add_argument(
            "src", help="a store, or anything 'aekit ingest' reads (ingested to a temporary store)"
        )
        parser.add_argument("--label-column", help="label column of a CSV/Parquet SRC")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def report(args: argparse.Namespace, summary: dict[str, Any], lines: list[str]) -> int:
    print(json.dumps(summary, indent=2) if args.json else "\n".join(lines))
    return 0
