"""The ``aekit`` command: parse, call the library, turn errors into exit codes.

Exit codes: 0 success, 2 a user mistake (one line saying what is wrong and how to fix it),
1 an internal error (a bug: rerun with ``--traceback`` and report it).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aekit.cli import (
    compress,
    demo,
    encode,
    env,
    export,
    generate,
    info,
    ingest,
    probe,
    report,
    score,
    train,
    validate,
)
from aekit.errors import AekitError

COMMANDS = [
    demo,
    ingest,
    info,
    train,
    validate,
    encode,
    score,
    generate,
    compress,
    export,
    probe,
    report,
    env,
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line, with where to look for the fix."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Version(argparse.Action):
    """``--version``, which looks the installed version up only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from aekit import __version__

        print(f"aekit {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aekit",
        description="Train autoencoders on data larger than memory and put them to work.",
        epilog="Run 'aekit COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action=_Version, help="show aekit's version and exit")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of any error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = args.traceback or os.environ.get("AEKIT_TRACEBACK") == "1"
    # SIGTERM (kill, a scheduler, torchrun stopping workers) unwinds like Ctrl-C, so every
    # output written under a temporary name is removed on the way out
    previous = signal.signal(signal.SIGTERM, _terminate)
    previous_hook, sys.unraisablehook = sys.unraisablehook, _deliver_again
    try:
        with _holding(args):
            return int(args.run(args) or 0)
    except _Terminated:
        _quiet_abandoned_writes()
        print(f"aekit {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except AekitError as exc:
        if show_traceback:
            raise
        print(f"aekit {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader went away (``aekit info STORE | head -1``): stop quietly, as a filter does
        _silence_stdout()
        return 141
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRORS or show_traceback:
            return _internal(args, exc, show_traceback)
        print(f"aekit {args.command}: error: {_storage_error(args, exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _quiet_abandoned_writes()
        print(f"aekit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return _internal(args, exc, show_traceback)
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
        if signal.getsignal(signal.SIGALRM) is _terminate:  # a delivery that was not needed
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)


# Storage that refuses a write is the machine's state, not a bug: say what to change
_STORAGE_ERRORS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some of your quota or write elsewhere",
    errno.EROFS: "write to a writable folder",
    errno.EFBIG: "the file system caps the file size; write to another file system",
    errno.EACCES: "check the permissions, or write elsewhere",
}


def _storage_error(args: argparse.Namespace, exc: OSError) -> str:
    """What refused the write, naming the file (the command's destination where the library
    named none) and what to change."""
    named = exc.filename or (args.writes(args) if args.writes else None) or "the output"
    fix = _STORAGE_ERRORS.get(exc.errno or 0, "")
    if exc.errno == errno.EFBIG:
        import resource

        cap = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if cap != resource.RLIM_INFINITY:  # the shell's limit, not the file system's
            fix = (
                f"this process may not write files larger than {cap:,} bytes (the shell's "
                "'ulimit -f'); raise the limit, or write less"
            )
    return f"{named}: {exc.strerror}; {fix} (nothing partial was left there)"


def one_line(message: str, limit: int = 600) -> str:
    """``message`` as one printable line: newlines and control bytes escaped, long text cut."""
    text = " ".join(message.split("\n"))
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _internal(args: argparse.Namespace, exc: Exception, show_traceback: bool) -> int:
    if show_traceback:
        raise exc
    print(
        f"aekit {args.command}: internal error: {type(exc).__name__}: {one_line(str(exc))} "
        "(rerun with --traceback and report it)",
        file=sys.stderr,
    )
    return 1


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would fail again on the closed pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@contextlib.contextmanager
def _holding(args: argparse.Namespace) -> Iterator[None]:
    """Hold the command's destination, if it writes one on this machine, while it runs."""
    where = args.writes(args) if args.writes else None
    if where is None:  # validate, info, ...: nothing to hold, and nothing more to import
        yield
        return
    from aekit.data.remote import Remote, is_remote

    if is_remote(where):
        from aekit.data.remote_lock import remote_exclusive

        with remote_exclusive(Remote.parse(where)):
            yield
        return
    destination = Path(where)
    if args.makes_folder:
        destination.parent.mkdir(parents=True, exist_ok=True)
    if not destination.parent.is_dir():  # the command says so itself
        yield
        return
    from aekit.atomic import exclusive

    with exclusive(destination):
        yield


class _Terminated(BaseException):
    """Raised in the main thread by SIGTERM; a BaseException, as KeyboardInterrupt is."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated


def _deliver_again(unraisable: Any) -> None:
    """Python swallows an exception raised where it cannot propagate (a weakref callback, a
    ``__del__``): a SIGTERM that landed there would be lost and the command would run on.
    Deliver it again 10 ms later, outside the callback (an alarm: a signal raised here would
    be handled, and swallowed, here)."""
    if unraisable.exc_type is _Terminated:
        signal.signal(signal.SIGALRM, _terminate)
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        return
    sys.__unraisablehook__(unraisable)


def _quiet_abandoned_writes() -> None:
    # A write of Zarr's, stopped between its steps, leaves coroutines that Python reports at
    # exit as never awaited; their output was a partial, already removed
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
