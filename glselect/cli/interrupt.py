"""Ctrl-C while the command line starts: one line and exit 130, at once.

Only the standard library is imported here: ``python -m glselect`` installs this handler before
it loads typer, rich, pandas or torch, which take seconds on a busy machine.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

INTERRUPTED = 130  # ExitCode.INTERRUPTED, 128 + SIGINT


def _exit_at_once(signum: int, frame: object) -> None:
    os.write(2, b"interrupted: nothing was written\n")
    os._exit(INTERRUPTED)


def exit_at_once_on_ctrl_c() -> None:
    """From now on Ctrl-C ends the process at once with one line and exit 130.

    Meant for start-up, while modules load and nothing has been written: a KeyboardInterrupt
    raised inside ``import torch`` leaves torch half-initialised (seen: an AttributeError from a
    later import, and a crash on exit), so the process must not carry on after one.
    """
    # ValueError: not the main thread (an embedding application): its own handling stays
    with suppress(ValueError):
        signal.signal(signal.SIGINT, _exit_at_once)


def unwind_on_ctrl_c() -> None:
    """Start-up is over: Ctrl-C raises KeyboardInterrupt again, which the commands turn into their message."""
    with suppress(ValueError):
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def loading() -> Iterator[None]:
    """Import heavy modules (torch, pandas) with Ctrl-C ending the process at once, as at start-up."""
    try:
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, _exit_at_once)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
