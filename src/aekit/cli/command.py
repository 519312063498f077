"""The one way a command is declared: its name, one line of help, a description, examples and
the function that runs it; every command's module calls :func:`add_command` the same way."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    epilog: str,
    run: Callable[[argparse.Namespace], int],
    **defaults: Any,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``; its parser keeps the description's and the examples' line
    breaks, and ``args.run(args)`` runs it."""
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, **defaults)
    return parser
