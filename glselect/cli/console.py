"""Where the command line writes, and the one place a ``GlselectError`` becomes a message and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from glselect.errors import ExitCode, GlselectError

stderr = Console(stderr=True)
DEBUG = Annotated[bool, typer.Option("--debug", help="Show tracebacks for user errors too.")]


def one_line(text: str) -> str:
    """``text`` with control characters escaped: a column named '\\n' must not break the one-line message."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _report_user_error(err: GlselectError, debug: bool) -> NoReturn:
    if debug:
        raise err
    # soft wrap: one message stays one line, whatever the terminal width
    stderr.print(f"[bold red]error:[/] {escape(one_line(str(err)))}", soft_wrap=True)
    if err.hint:
        stderr.print(f"hint: {escape(one_line(err.hint))}", soft_wrap=True)
    raise typer.Exit(ExitCode.USER_ERROR) from None


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn a ``GlselectError`` into one line on stderr and exit code 2 (re-raised with ``--debug``)."""
    try:
        yield
    except GlselectError as err:
        _report_user_error(err, debug)


def report_interrupted(message: str, code: int = ExitCode.INTERRUPTED) -> NoReturn:
    """Ctrl-C (or SIGTERM): one line on stderr saying what became of the output, and exit 130 (143)."""
    stderr.print(f"[bold red]interrupted:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code) from None


def stdout_console() -> Console:
    """Where a command's human-readable result goes.

    In a terminal it wraps to the window. Piped or redirected, nothing is hard-wrapped (a line cut
    at column 80 would split a metric from its value for grep and awk) and tables take the width
    their cells need.
    """
    console = Console()
    if console.is_terminal:
        return console
    return Console(width=100_000, soft_wrap=True)
