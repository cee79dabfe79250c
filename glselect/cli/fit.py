"""``glselect fit``: options -> config -> ``pipeline.run`` -> progress and the ranked table.

The command's options are not written out here: they come from ``glselect.options.OPTIONS``, the
table the scikit-learn selector is built from as well. ``with_options`` splices them into the
signature typer reads.
"""

from __future__ import annotations

import inspect
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Callable

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from glselect.cli.console import DEBUG, stderr, user_errors
from glselect.cli.reading import print_reading
from glselect.config import RunConfig
from glselect.distributed import is_main_process
from glselect.errors import ExitCode, Terminated
from glselect.options import OPTIONS, REQUIRED, Option, config_from
from glselect.outputs.artifacts import dump_json
from glselect.outputs.report import metrics_lines, top_features_table
from glselect.path.checkpoint import checkpoint_dir
from glselect.path.walk import PathStep
from glselect.pipeline import run


def typer_parameter(option: Option) -> inspect.Parameter:
    """``option`` as a keyword parameter with its ``typer.Option`` annotation and command-line default."""
    cli_type = option.type if option.text is None else option.text.cli_type
    default = option.default
    if option.text is not None and default is not REQUIRED:
        default = option.text.show(default)
    # no declarations unless there are aliases: typer then names the flag itself, '--force/--no-force' for a bool
    declarations = (option.flag, *option.aliases) if option.aliases else ()
    info = typer.Option(*declarations, help=option.help, show_default=option.show_default)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[cli_type, info])


def with_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command``, which takes the table's options as ``**options``, the signature typer reads.

    The table's options go after the command's positional arguments and before its own keyword-only
    options, which is their order in ``--help``.
    """
    own = list(inspect.signature(command, eval_str=True).parameters.values())
    positional = [parameter for parameter in own if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    keyword = [parameter for parameter in own if parameter.kind is inspect.Parameter.KEYWORD_ONLY]
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*positional, *map(typer_parameter, OPTIONS), *keyword], return_annotation=None
    )
    return command


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _progress_callback(progress: Progress, task_id: TaskID) -> Callable[[PathStep], None]:
    def on_step(step: PathStep) -> None:
        total = len(step.group_norms)
        progress.update(task_id, completed=total - step.n_selected, total=total, lam=step.lam, selected=step.n_selected)

    return on_step


def _stage_callback(progress: Progress, task_id: TaskID) -> Callable[[str, int, int], None]:
    def on_stage(stage: str, done: int, total: int) -> None:
        progress.update(task_id, description=f"{stage} {done + 1}/{total}")

    return on_stage


@with_options
def fit(
    data: Annotated[Path, typer.Argument(help="Table to read: .csv, .csv.gz, .tsv, .parquet or .pq.", show_default=False)],
    *,
    top: Annotated[int, typer.Option(help="Rows of the ranked table printed at the end.")] = 15,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no table.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout (nothing else goes to stdout).")] = False,
    debug: DEBUG = False,
    **options: Any,
) -> None:
    """Fit the group-lasso path on DATA, choose a subset of columns, and write the out dir."""
    config: RunConfig | None = None
    with user_errors(debug):
        try:
            config = config_from(options, table=data)
            progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("groups dropped · λ={task.fields[lam]:.3g} · {task.fields[selected]} left"),
                TimeElapsedColumn(),
                console=stderr,
                transient=True,
                disable=quiet or not stderr.is_terminal or not is_main_process(),  # no live bar in logs, pipes, other ranks
            )
            previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
            try:
                with progress:
                    task_id = progress.add_task("path", total=None, lam=0.0, selected="all")
                    result = run(config, on_step=_progress_callback(progress, task_id), on_stage=_stage_callback(progress, task_id))
            finally:
                signal.signal(signal.SIGTERM, previous_handler)
        except KeyboardInterrupt as interruption:
            message = "nothing was written"
            if config is not None:
                checkpoint = checkpoint_dir(config.out_dir)
                message = f"{config.out_dir} was not written" + (
                    f"; rerun with --resume to continue from the checkpoint in {checkpoint}" if checkpoint.exists() else ""
                )
            stderr.print(f"[bold red]interrupted:[/] {escape(message)}", soft_wrap=True)
            code = ExitCode.TERMINATED if isinstance(interruption, Terminated) else ExitCode.INTERRUPTED
            raise typer.Exit(code) from None

    if result.out_dir is None:
        return  # another rank of a torchrun job: rank 0 writes and reports
    print_reading(result.summary, quiet)
    if not result.path.complete:
        stderr.print(
            f"[yellow]warning:[/] the path stopped after {len(result.path.steps) - 1} lambdas with groups still "
            "non-zero; the ranking of those groups is unresolved",
            soft_wrap=True,
        )
    if json_output:
        sys.stdout.write(dump_json({**result.summary, "out_dir": str(result.out_dir)}))
    if not quiet:
        # the ranked table is the human result: stdout, unless stdout is reserved for JSON
        console = stderr if json_output else Console()
        console.print(top_features_table(result.importances.features, top))
        for line in metrics_lines(result.summary):
            console.print(escape(line))
        console.print(f"wrote {escape(str(result.out_dir))}/")
