"""``aekit validate``: check a config file without running anything."""

from __future__ import annotations

import argparse

from aekit.cli.command import add_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "validate",
        help="check a TOML/YAML run config: unknown keys, wrong types, bad values",
        description="Check a run config and print it resolved (every key, defaults included).",
        epilog="example: aekit validate configs/digits.toml --set train.epochs=5",
        run=run,
    )
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    from aekit.config import load_config, to_toml

    config = load_config(args.config, None, args.set)
    print(to_toml(config), end="")
    print(f"# {args.config}: valid")
    return 0
