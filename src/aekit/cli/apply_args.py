"""Arguments and output shared by the commands that put a run to work."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any


def add_run_and_source(parser: argparse.ArgumentParser, *, source: bool = True) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="run folder written by 'aekit train'")
    if source:
        parser.add_argument(
            "src", help="a store, or anything 'aekit ingest' reads (ingested to a temporary store)"
        )
        parser.add_argument("--label-column", help="label column of a CSV/Parquet SRC")
        parser.add_argument(
            "--on-error",
            choices=["fail", "skip"],
            default="fail",
            help="a bad record of a SRC that is not a store: stop (default), or leave it out "
            "(the output then has one row fewer, and the count is printed)",
        )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def report(args: argparse.Namespace, summary: dict[str, Any], lines: list[str]) -> int:
    print(json.dumps(summary, indent=2) if args.json else "\n".join(lines))
    return 0


def replacing(path: Path, what: str | None = None) -> str | None:
    """The line that says ``path`` (``what`` it holds) is about to be replaced, or None when it
    does not exist: the report and the demo rewrite their own output, and say so."""
    if not path.exists():
        return None
    written = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return f"replaced {what or path} (written {written})"


def source_of(args: argparse.Namespace, ae: Any) -> Any:
    """``args.src`` as a store for the run ``args.run_dir`` (see ``source_store``), written
    beside ``args.out``; a table's label column is the one the run was trained with, unless
    ``--label-column`` names another."""
    from aekit.apply.inputs import source_store
    from aekit.runs.folder import RunFolder

    usual = None if args.label_column else RunFolder(args.run_dir).training_label_column()
    return source_store(
        args.src,
        ae,
        label_column=args.label_column,
        beside=args.out,
        usual_label_column=usual,
        on_error=args.on_error,
    )


def series_store_and_output(args: argparse.Namespace, verb: str) -> tuple[Any, Path]:
    """``args.src`` opened as a series store, and ``args.out`` checked (.parquet or .csv), for a
    run trained on series; a source that is not a store is refused, naming the ingest to run
    first (``verb``: what the command does to the store)."""
    from aekit.apply.outputs import check_output
    from aekit.data.store import is_store, open_store
    from aekit.errors import AekitError

    if not is_store(args.src):
        raise AekitError(
            f"{args.src}: the run was trained on series; ingest it first with 'aekit ingest "
            f"{args.src} STORE --series' and {verb} the store."
        )
    out = check_output(Path(args.out), (".parquet", ".csv"))
    return open_store(args.src), out
