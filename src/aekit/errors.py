"""Errors that aekit raises for user mistakes.

Every user-facing error carries a message that says what is wrong and how to fix it, in one line.
The CLI turns :class:`AekitError` into exit code 2 and prints only that line; anything else that
escapes is an internal error (exit code 1).
"""

from __future__ import annotations


class AekitError(Exception):
    """A user mistake: bad input, a bad option, a missing file. Exit code 2 on the CLI."""

    exit_code = 2


class SettingError(AekitError, ValueError):
    """A setting whose value cannot work (with these data, on this machine): a ``ValueError``
    to scikit-learn callers, exit code 2 on the CLI."""


class DataError(AekitError):
    """Input data that cannot be used as it is (wrong shape, NaN, unreadable record)."""


class DivergenceError(AekitError):
    """Training produced a NaN or infinite loss. Exit code 3; the last good checkpoint stays."""

    exit_code = 3
