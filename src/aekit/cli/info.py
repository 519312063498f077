"""``aekit info``: what a store holds."""

from __future__ import annotations

import argparse
import json

from aekit.cli.command import add_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "info",
        help="print a store's count, shape, split, classes, statistics and skipped records",
        description="Describe a store written by 'aekit ingest'.",
        epilog="examples:\n  aekit info data/photos.zarr\n  aekit info data/photos.zarr --json",
        run=run,
    )
    parser.add_argument("store")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _short(values: list[float], limit: int = 8) -> str:
    shown = ", ".join(f"{v:.4g}" for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}] ({len(values)})"


def run(args: argparse.Namespace) -> int:
    from aekit.data.ingest import describe_store
    from aekit.data.store import open_store

    info = describe_store(open_store(args.store))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"store        {info['path']}")
    print(f"samples      {info['samples']}  shape {tuple(info['sample_shape'])}  {info['dtype']}")
    print(f"split        {info['train']} train / {info['validation']} validation")
    print(f"source       {info['source'].get('kind')} {info['source'].get('path')}")
    if "classes" in info:
        classes = ", ".join(f"{k}: {v}" for k, v in info["classes"].items())
        print(f"classes      {len(info['classes'])}  ({classes})")
    per = "channel" if len(info["sample_shape"]) == 3 else "feature"
    for key in ("mean", "std", "min", "max"):
        print(f"{key:<13}{_short(info['stats'][key])} per {per}")
    report = info["report"]
    print(f"skipped      {report.get('skipped_count', 0)} of {report.get('records_read')} records")
    for item in report.get("skipped", [])[:20]:
        print(f"  {item['record']}: {item['problem']}")
    return 0
