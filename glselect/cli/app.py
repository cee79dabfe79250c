"""The command line: the typer app and its commands (``fit`` in fit.py, the out-dir readers in commands.py).

The ``glselect`` script and ``python -m glselect`` run ``app``. Only the ``cli`` package prints or
exits; ``console.user_errors`` is where a user error becomes one line on stderr and exit code 2.

Nothing here imports torch, pandas or the pipeline at import time: each command imports what it
needs when it runs, so ``--version`` and ``--help`` answer at once (torch alone takes seconds).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from glselect import __version__
from glselect.cli import commands
from glselect.cli.console import report_interrupted
from glselect.cli.fit import fit
from glselect.cli.interrupt import unwind_on_ctrl_c


def _flags_without_metavar(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # a flag takes no value: --help shows no '<bool>' beside it
    return params


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_metavar(super().get_params(ctx))


class Command(TyperCommand):
    """A typer command whose usage line reads ``[OPTIONS] OUT_DIR DATA`` (typer's own shows ``{out_dir} {data}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_metavar(super().get_params(ctx))

    def invoke(self, ctx: Any) -> Any:
        # Ctrl-C anywhere in a command (importing torch takes seconds) is one line and exit 130, not
        # click's 'Aborted!' and exit 1; fit says more itself (what was kept for --resume)
        unwind_on_ctrl_c()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            report_interrupted("nothing was written")


app = typer.Typer(
    cls=Group,
    add_completion=False,
    # no command: the help is shown and the exit code is 2, a usage error (a command is required), as
    # for any other incomplete command line; scripts that forget the command must not pass
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",  # panels; the fit options' help texts are escaped (see fit.typer_parameter)
    help="Which columns of a table does a neural network really use? Group-lasso feature selection for MLPs.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"glselect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, metavar="", help="Print the version and exit."),
    ] = None,
) -> None:
    """glselect: fit a group-lasso path on a table and see which columns matter."""


for command in (fit, commands.predict, commands.select, commands.show, commands.report, commands.check):
    app.command(cls=Command)(command)


if __name__ == "__main__":
    app()
