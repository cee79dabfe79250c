"""``glselect fit``: options -> config -> ``pipeline.run`` -> progress and the ranked table.

The command's options are not written out here: they come from ``glselect.options.OPTIONS``, the
table the scikit-learn selector is built from as well. ``with_options`` splices them into the
signature typer reads.
"""

from __future__ import annotations

import inspect
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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

from glselect.cli.console import DEBUG, report_interrupted, stderr, stdout_console, user_errors
from glselect.cli.header import check_header
from glselect.cli.interrupt import loading
from glselect.cli.reading import print_reading
from glselect.config import RunConfig
from glselect.errors import ExitCode, Terminated
from glselect.options import OPTIONS, REQUIRED, Option, config_from

if TYPE_CHECKING:  # torch loads only when a fit runs: --help and --version stay fast
    from glselect.path.walk import PathStep

# --help groups the table's options by the config section they set, in this order
PANELS = {
    "": "Input and output",
    "data": "Columns and target",
    "model": "Model",
    "selection": "Choosing the model",
    "importance": "Importance",
    "path": "Path",
    "train": "Path",
    "stream": "Streaming (Parquet)",
}
RUN_OPTIONS = frozenset({"seed", "threads", "device", "force", "resume"})  # top-level fields that are not input/output
# what a value looks like, in --help's type column, instead of typer's '<str>' or '<list[str]>'
METAVARS = {
    "target": "COLUMN",
    "time": "COLUMN",
    "event": "COLUMN",
    "groups": "FILE",
    "out": "DIR",
    "task": "TASK",
    "features": "COLUMN",
    "drop": "COLUMN",
    "categorical": "COLUMN",
    "sep": "CHAR",
    "decimal": ".|,",
    "hidden": "WIDTHS",
    # choices on lines of their own keep the panel's help column wide at 80 columns
    "rule": "1se|min",
    "goal": "minimal|\nall-relevant|\nauto",
    "cv": "K|auto",
    "class_weight": "none|\nbalanced",
    "device": "DEVICE",
    "memory_budget": "SIZE",
}


def _panel(option: Option) -> str:
    section = option.field.rpartition(".")[0]
    if not section and option.name in RUN_OPTIONS:
        return "Run"
    return PANELS.get(section, "Other")


def _metavar(option: Option, cli_type: Any) -> str:
    if cli_type is bool or cli_type == (bool | None):
        return ""  # a flag takes no value: no '<bool>'
    if option.name in METAVARS:
        return METAVARS[option.name]
    return "INT" if cli_type in (int, int | None) else "NUMBER" if cli_type in (float, float | None) else "TEXT"


def typer_parameter(option: Option) -> inspect.Parameter:
    """``option`` as a keyword parameter with its ``typer.Option`` annotation and command-line default."""
    cli_type = option.type if option.text is None else option.text.cli_type
    default = option.default
    if option.text is not None and default is not REQUIRED:
        default = option.text.show(default)
    # a bool that is off by default is a plain flag ('--force'): a '--no-force' twin would only widen --help;
    # one that is on by default ('--screen-pairs') or 'automatic' (None, '--stream') keeps both
    both = cli_type == (bool | None) or (cli_type is bool and default is True)
    flag = f"{option.flag}/--no-{option.flag[2:]}" if both else option.flag
    declarations = (flag, *option.aliases)
    info = typer.Option(
        # escaped: rich would read '{group: [columns]}' as markup and print '{group: }'
        *declarations,
        help=escape(option.help),
        show_default=option.show_default,
        metavar=_metavar(option, cli_type),
        rich_help_panel=_panel(option),
    )
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
        progress.update(
            task_id,
            description="path",
            completed=total - step.n_selected,
            total=total,
            detail=f"groups dropped · λ={step.lam:.3g} · {step.n_selected} left",
        )

    return on_step


def _stage_callback(progress: Progress, task_id: TaskID) -> Callable[[str, int, int], None]:
    def on_stage(stage: str, done: int, total: int) -> None:
        # a stage of one piece of work (the dense fit, the refit) shows a spinner and the time, not '0/1'
        progress.update(
            task_id,
            description=stage if total == 1 else f"{stage} {done + 1}/{total}",
            completed=done,
            total=None if total == 1 else total,
            detail="",
        )

    return on_stage


class _MissingOption(typer.BadParameter):
    """A usage error whose message is shown as written (typer's own begins 'Invalid value')."""

    def format_message(self) -> str:
        return self.message


def _require_target(options: dict[str, Any]) -> None:
    """A missing --target is a usage error, as click reports a missing required option: the usage, a pointer
    to --help, and the message (the target is required unless --task survival, so click cannot say so itself)."""
    if options.get("target") is None and options.get("task") != "survival" and options.get("time") is None and options.get("event") is None:
        raise _MissingOption(
            "Missing option '--target' / '-t': the column to predict (for a survival target: --task survival --time COL --event COL)."
        )


@with_options
def fit(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Table to read: .csv, .csv.gz, .tsv, .parquet or .pq.", show_default=False)],
    *,
    top: Annotated[int, typer.Option(min=0, metavar="N", help="Rows of the ranked table printed at the end (0: all).")] = 15,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no table.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout (nothing else goes to stdout).")] = False,
    debug: DEBUG = False,
    **options: Any,
) -> None:
    """Fit the group-lasso path on DATA, choose a subset of columns, and write the out dir."""
    config: RunConfig | None = None
    _require_target(options)
    with user_errors(debug):
        try:
            config = config_from(options, table=data)
            check_header(config)  # a missing file or a misspelt --target is reported before torch loads
            with loading():  # torch takes seconds to load: imported here, not when the command line starts
                from glselect.distributed import is_main_process
                from glselect.pipeline import run
                from glselect.select.plan import resolve

            resolve(config)  # options that conflict are reported before the table is read and its report printed

            progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=stderr,
                transient=True,
                disable=quiet or not stderr.is_terminal or not is_main_process(),  # no live bar in logs, pipes, other ranks
            )
            previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
            try:
                with progress:
                    task_id = progress.add_task("reading", total=None, detail="")
                    result = run(
                        config,
                        on_step=_progress_callback(progress, task_id),
                        on_stage=_stage_callback(progress, task_id),
                        # before training: a column read as the wrong kind can be seen, and the fit stopped, at once
                        on_read=lambda report: print_reading(report, quiet),
                    )
            finally:
                signal.signal(signal.SIGTERM, previous_handler)
        except KeyboardInterrupt as interruption:
            message = "nothing was written"
            if config is not None:
                from glselect.path.checkpoint import checkpoint_dir

                checkpoint = checkpoint_dir(config.out_dir)
                message = f"{config.out_dir} was not written" + (
                    f"; rerun with --resume to continue from the checkpoint in {checkpoint}" if checkpoint.exists() else ""
                )
            code = ExitCode.TERMINATED if isinstance(interruption, Terminated) else ExitCode.INTERRUPTED
            report_interrupted(message, code)

    if result.out_dir is None:
        return  # another rank of a torchrun job: rank 0 writes and reports
    from glselect.outputs.files import dump_json
    from glselect.outputs.report import fit_warnings, metrics_lines, table_warnings, top_features_table

    # the reading report's warnings were printed as the table was read
    for warning in [*fit_warnings(result.summary), *table_warnings(result.importances.features)]:
        stderr.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if json_output:
        sys.stdout.write(dump_json({**result.summary, "out_dir": str(result.out_dir)}))
    if not quiet:
        # the ranked table is the human result: stdout, unless stdout is reserved for JSON
        console = stderr if json_output else stdout_console()
        console.print(top_features_table(result.importances.features, top or len(result.importances.features)))
        for line in metrics_lines(result.summary):
            console.print(escape(line))
        console.print(f"wrote {escape(str(result.out_dir))}/")
