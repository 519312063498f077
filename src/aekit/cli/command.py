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
    writes: Callable[[argparse.Namespace], str | None] | None = None,
    makes_folder: bool = False,
    **defaults: Any,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name``; its parser keeps the description's and the examples' line
    breaks, and ``args.run(args)`` runs it.

    ``writes`` gives the destination the command writes, held for the whole command (see
    :func:`aekit.atomic.exclusive`); ``makes_folder`` creates the destination's folder first.
    """
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, writes=writes, makes_folder=makes_folder, **defaults)
    return parser


def out_flag(args: argparse.Namespace) -> str | None:
    """The destination of a command that writes ``--out``."""
    return args.out
