"""Errors a user can act on, and the exit codes the command line uses."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README."""

    OK = 0
    INTERNAL_ERROR = 1  # a bug: the traceback is kept so it can be reported
    USER_ERROR = 2  # bad usage or bad data, like typer's own usage errors
    CHECK_FAILED = 3  # a check the user asked for did not hold
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # 128 + SIGTERM


class GlselectError(ValueError):
    """Something the user can fix: a bad file, option, or combination of options.

    A ``ValueError``, so Python callers (and scikit-learn) can treat bad input the usual way.

    Parameters
    ----------
    message
        What went wrong, where, and what was found.
    hint
        The next step the user can take, if there is an obvious one.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class GlselectWarning(UserWarning):
    """What a Python caller should know about how a fit went (the command line prints these as 'warning: ...')."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds like Ctrl-C (no partial output)."""
