"""The command line: the typer app and its commands (``fit`` in fit.py, the out-dir readers in commands.py).

The ``glselect`` script and ``python -m glselect`` run ``app``. Only the ``cli`` package prints or
exits; ``console.user_errors`` is where a user error becomes one line on stderr and exit code 2.

Nothing here imports torch, pandas or the pipeline at import time: each command imports what it
needs when it runs, so ``--version`` and ``--help`` answer at once (torch alone takes seconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _flag_pairs_on_two_lines(params: list[Any]) -> Iterator[None]:
    """While help is drawn, show '--screen-pairs' above '--no-screen-pairs' in the option column.

    typer gives the '--no-' twin a column of its own, which takes 17 characters from every help text of
    the panel (at 80 columns the Model panel's were 28 wide); the names themselves parse as before.
    """
    pairs = [param for param in params if getattr(param, "secondary_opts", None)]
    saved = [(param.opts, param.secondary_opts) for param in pairs]
    for param in pairs:
        # typer names a pair's default by the flag that gives it ('[default: --screen-pairs]'), which it
        # finds among the twins: named here, as the twins are one line
        if not isinstance(param.show_default, str):  # a string describes the default itself
            default = (param.opts if param.default else param.secondary_opts)[0]
            param._get_default_string = lambda *args, default=default, **kwargs: default
        param.opts, param.secondary_opts = ["\n".join([*param.opts, *param.secondary_opts])], []
    try:
        yield
    finally:
        for param, (opts, secondary_opts) in zip(pairs, saved):
            param.opts, param.secondary_opts = opts, secondary_opts
            param.__dict__.pop("_get_default_string", None)


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

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _flag_pairs_on_two_lines(self.get_params(ctx)):
            super().format_help(ctx, formatter)

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
