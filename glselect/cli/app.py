"""The command line: the typer app and its commands (``fit`` in fit.py, the out-dir readers in commands.py).

The ``glselect`` script and ``python -m glselect`` run ``app``. Only the ``cli`` package prints or
exits; ``console.user_errors`` is where a user error becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from glselect import __version__
from glselect.cli import commands
from glselect.cli.fit import fit

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Which columns of a table does a neural network really use? Group-lasso feature selection for MLPs.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"glselect {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """glselect: fit a group-lasso path on a table and see which columns matter."""


for command in (fit, commands.predict, commands.select, commands.show, commands.report, commands.check):
    app.command()(command)


if __name__ == "__main__":
    app()
