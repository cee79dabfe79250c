"""The command line: options -> config -> ``api.run`` -> render. The only module that prints or exits."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Callable, Iterator, NoReturn, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
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

from glselect import __version__
from glselect.pipeline import run
from glselect.outputs.artifacts import dump_json, load_model, load_results
from glselect.outputs.checks import run_checks
from glselect.data.io import read_table, write_table
from glselect.outputs.predict import predict_table
from glselect.config import (
    TASKS,
    DataConfig,
    ImportanceConfig,
    ModelConfig,
    PathConfig,
    RunConfig,
    SelectionConfig,
    StreamConfig,
    TrainConfig,
)
from glselect.path.checkpoint import checkpoint_dir
from glselect.distributed import is_main_process
from glselect.errors import ExitCode, GlselectError, Terminated
from glselect.path.walk import PathStep
from glselect.outputs.report import metrics_lines, top_features_table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Which columns of a table does a neural network really use? Group-lasso feature selection for MLPs.",
)
stderr = Console(stderr=True)

DATA = DataConfig()
MODEL = ModelConfig()
PATH = PathConfig()
SELECTION = SelectionConfig()
IMPORTANCE = ImportanceConfig()
STREAM = StreamConfig()
SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "T": 1 << 40, "TB": 1 << 40}


def parse_hidden(text: str) -> tuple[int, ...]:
    """'64' -> (64,), '64,32' -> (64, 32), '0' -> () (the linear/logistic model)."""
    try:
        widths = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise GlselectError(f"--hidden must be comma-separated whole numbers like '64' or '64,32', got '{text}'") from None
    if widths in ((), (0,)):
        return ()
    return widths


def parse_size(text: str) -> int:
    """'4GB' -> 4 * 2**30, '512M' -> 512 * 2**20, '1000' -> 1000 bytes (binary units, case-insensitive)."""
    cleaned = text.strip().upper().replace(" ", "").removesuffix("IB").removesuffix("I")
    number = cleaned.rstrip("KMGTB")
    unit = cleaned[len(number):]
    try:
        value = float(number) * SIZE_UNITS[unit if unit in SIZE_UNITS else unit + "B"]
    except (ValueError, KeyError):
        raise GlselectError(f"--memory-budget must be a size like '4GB' or '512MB', got '{text}'") from None
    if value <= 0:
        raise GlselectError(f"--memory-budget must be positive, got '{text}'")
    return int(value)


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
    """Turn a ``GlselectError`` into one line on stderr and exit code 2."""
    try:
        yield
    except GlselectError as err:
        _report_user_error(err, debug)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


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


def _progress_callback(progress: Progress, task_id: TaskID) -> Callable[[PathStep], None]:
    def on_step(step: PathStep) -> None:
        total = len(step.group_norms)
        progress.update(task_id, completed=total - step.n_selected, total=total, lam=step.lam, selected=step.n_selected)

    return on_step


def _stage_callback(progress: Progress, task_id: TaskID) -> Callable[[str, int, int], None]:
    def on_stage(stage: str, done: int, total: int) -> None:
        progress.update(task_id, description=f"{stage} {done + 1}/{total}")

    return on_stage


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="Table to read: .csv, .csv.gz, .tsv, .parquet or .pq.", show_default=False)],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to predict.", show_default=False)],
    groups: Annotated[
        Optional[Path],
        typer.Option(help="Group map: CSV with header 'feature,group', or JSON {group: [columns]}; names may be globs like 'px_*'."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output directory.", show_default="DATA's name + .glselect, beside it"),
    ] = None,
    task: Annotated[
        Optional[str], typer.Option(help=f"One of {', '.join(TASKS)}.", show_default="detected from the target")
    ] = None,
    features: Annotated[
        Optional[list[str]], typer.Option("--features", help="Use only this column (repeat the option for more).")
    ] = None,
    drop: Annotated[
        Optional[list[str]], typer.Option("--drop", "--exclude", help="Leave this column out (repeatable).")
    ] = None,
    categorical: Annotated[
        Optional[list[str]], typer.Option(help="One-hot encode this column whatever its type (repeatable).")
    ] = None,
    max_levels: Annotated[
        int, typer.Option(help="One-hot levels kept per categorical column; rarer levels are pooled as <other>.")
    ] = DATA.max_levels,
    hidden: Annotated[
        str, typer.Option(help="Hidden layer widths, e.g. '64' or '64,32'; '0' fits the linear/logistic group lasso.")
    ] = ",".join(map(str, MODEL.hidden)),
    neuron_penalty: Annotated[
        float,
        typer.Option(help="Penalty on each hidden unit's outgoing weights in the refit: units it zeroes are pruned from the saved model."),
    ] = MODEL.neuron_penalty,
    rule: Annotated[
        str, typer.Option(help="How to choose the model on the path: '1se' (sparsest within one standard error of the best validation loss) or 'min' (best validation loss).")
    ] = SELECTION.rule,
    max_features: Annotated[
        Optional[int], typer.Option(help="Choose the least-penalised model with at most this many groups (overrides --rule).")
    ] = SELECTION.max_features,
    cv: Annotated[
        int, typer.Option(help="Score the path's lambdas by K-fold cross-validation (K >= 2); 0 scores them on one validation split.")
    ] = SELECTION.cv,
    confirm: Annotated[
        float,
        typer.Option(help="Keep a chosen group only if shuffling it raises the refit model's validation loss by this many standard errors; 0 keeps the whole step."),
    ] = SELECTION.confirm,
    class_weight: Annotated[
        str, typer.Option(help="'balanced' weighs each class equally in the loss, however rare; 'none' weighs rows equally.")
    ] = DATA.class_weight,
    permutation_repeats: Annotated[
        int, typer.Option(help="Shuffles per group for permutation importance on the test rows; 0 skips it.")
    ] = IMPORTANCE.permutation_repeats,
    stability: Annotated[
        int, typer.Option(help="Stability selection over B complementary pairs of half-samples (2B extra paths); 0: off.")
    ] = IMPORTANCE.stability_pairs,
    stability_threshold: Annotated[
        float, typer.Option(help="Selection frequency a group needs to count as stable (in (0.5, 1]).")
    ] = IMPORTANCE.stability_threshold,
    stability_q: Annotated[
        Optional[int], typer.Option(help="Groups each half-sample path selects.", show_default="as many as the chosen model")
    ] = IMPORTANCE.stability_q,
    min_features: Annotated[int, typer.Option(help="Stop the path once this few groups remain.")] = PATH.min_features,
    lambda_step: Annotated[float, typer.Option(help="Base ratio between consecutive lambdas.")] = PATH.lambda_step,
    lambda_start: Annotated[
        Optional[float], typer.Option(help="First lambda of the path.", show_default="estimated from the data")
    ] = PATH.lambda_start,
    max_iters_per_lambda: Annotated[int, typer.Option(help="Iteration budget for each lambda.")] = PATH.max_iters_per_lambda,
    max_steps: Annotated[int, typer.Option(help="Most lambdas on the path (a safety cap).")] = PATH.max_steps,
    val_fraction: Annotated[float, typer.Option(help="Share of rows used to choose the model.")] = DATA.val_fraction,
    test_fraction: Annotated[float, typer.Option(help="Share of rows held out to report metrics.")] = DATA.test_fraction,
    seed: Annotated[int, typer.Option(help="Seed for the split and initialisation: same data + seed = same result.")] = 0,
    threads: Annotated[
        Optional[int], typer.Option(help="Torch threads.", show_default="1 for small tables, every core for large ones")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace --out even if it is not a glselect output.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted fit from its last checkpoint (same data and settings).")
    ] = False,
    device: Annotated[str, typer.Option(help="Where to train: 'auto' (a CUDA GPU when present), 'cpu' or 'cuda'.")] = "auto",
    stream: Annotated[
        Optional[bool],
        typer.Option("--stream/--no-stream", help="Read a Parquet file or directory in record batches instead of loading it.", show_default="when the table would not fit --memory-budget"),
    ] = STREAM.stream,
    memory_budget: Annotated[
        Optional[str], typer.Option(help="Memory the in-memory fit may use, e.g. '8GB'; larger Parquet tables stream.", show_default="a quarter of the available memory")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Streaming: rows per optimizer step.")] = STREAM.batch_size,
    learning_rate: Annotated[float, typer.Option(help="Streaming: SGD learning rate (momentum 0.9).")] = STREAM.learning_rate,
    epochs_per_lambda: Annotated[float, typer.Option(help="Streaming: passes over the training rows at each lambda (fractions allowed).")] = STREAM.epochs_per_lambda,
    max_epochs: Annotated[float, typer.Option(help="Streaming: most passes for the dense fit and the refit (early-stopped).")] = STREAM.max_epochs,
    top: Annotated[int, typer.Option(help="Rows of the ranked table printed at the end.")] = 15,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no table.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout (nothing else goes to stdout).")] = False,
    debug: Annotated[bool, typer.Option(help="Show tracebacks for user errors too.")] = False,
) -> None:
    """Fit the group-lasso path on DATA, choose a subset of columns, and write the out dir."""
    config: RunConfig | None = None
    try:
        config = RunConfig(
            table=data,
            target=target,
            groups=groups,
            out=out,
            force=force,
            resume=resume,
            seed=seed,
            threads=threads,
            data=DataConfig(
                task=task,
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                max_levels=max_levels,
                features=None if features is None else tuple(features),
                drop=tuple(drop or ()),
                categorical=tuple(categorical or ()),
                class_weight=class_weight,
            ),
            model=ModelConfig(hidden=parse_hidden(hidden), neuron_penalty=neuron_penalty),
            train=TrainConfig(),
            path=PathConfig(
                lambda_step=lambda_step,
                lambda_start=lambda_start,
                max_iters_per_lambda=max_iters_per_lambda,
                max_steps=max_steps,
                min_features=min_features,
            ),
            selection=SelectionConfig(rule=rule, max_features=max_features, cv=cv, confirm=confirm),
            importance=ImportanceConfig(
                permutation_repeats=permutation_repeats,
                stability_pairs=stability,
                stability_threshold=stability_threshold,
                stability_q=stability_q,
            ),
            device=device,
            stream=StreamConfig(
                stream=stream,
                memory_budget=None if memory_budget is None else parse_size(memory_budget),
                batch_size=batch_size,
                learning_rate=learning_rate,
                epochs_per_lambda=epochs_per_lambda,
                max_epochs=max_epochs,
            ),
        )
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
    except GlselectError as err:
        _report_user_error(err, debug)
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


OUT_DIR = Annotated[Path, typer.Argument(help="The --out directory of a glselect fit.", show_default=False)]
DEBUG = Annotated[bool, typer.Option(help="Show tracebacks for user errors too.")]


@app.command()
def predict(
    out_dir: OUT_DIR,
    data: Annotated[Path, typer.Argument(help="Table to predict: needs only the columns the model reads.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write predictions here (.csv or .parquet).", show_default="CSV on stdout")] = None,
    keep: Annotated[Optional[list[str]], typer.Option(help="Copy this column of DATA into the output, e.g. an ID (repeatable).")] = None,
    debug: DEBUG = False,
) -> None:
    """Predict DATA with the pruned model of OUT_DIR, through the encoding saved at fit time."""
    with user_errors(debug):
        loaded = load_model(out_dir)
        table = read_table(data)
        missing = [name for name in keep or () if name not in table.columns]
        if missing:
            raise GlselectError(f"--keep names column(s) not in '{data}': {', '.join(map(repr, missing))}")
        predictions = predict_table(loaded, table)
        if keep:
            predictions = pd.concat([table[list(keep)], predictions], axis=1)
        if out is None:
            sys.stdout.write(predictions.to_csv(index=False))
        else:
            write_table(predictions, out)
            stderr.print(f"wrote {len(predictions)} predictions to {escape(str(out))}", soft_wrap=True)


@app.command()
def select(
    out_dir: OUT_DIR,
    data: Annotated[Path, typer.Argument(help="Table to reduce.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Reduced table to write (.csv or .parquet).", show_default=False)],
    debug: DEBUG = False,
) -> None:
    """Write DATA with only the columns OUT_DIR selected (and the target, when DATA has it)."""
    with user_errors(debug):
        results = load_results(out_dir)
        table = read_table(data)
        selected = list(results.summary["selected_features"])
        missing = [name for name in selected if name not in table.columns]
        if missing:
            raise GlselectError(f"'{data}' lacks selected column(s): {', '.join(map(repr, missing))}")
        target = results.summary["target"]
        write_table(table[selected + ([target] if target in table.columns else [])], out)
        stderr.print(f"wrote {len(selected)} selected columns of {len(table)} rows to {escape(str(out))}", soft_wrap=True)


@app.command()
def show(
    out_dir: OUT_DIR,
    top: Annotated[int, typer.Option(help="Rows of the ranked table.")] = 15,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary and the ranked columns as JSON.")] = False,
    debug: DEBUG = False,
) -> None:
    """Show the result in OUT_DIR: the ranked columns and the dense-vs-pruned metrics."""
    with user_errors(debug):
        results = load_results(out_dir)
    if json_output:
        ranked = results.features.head(top).to_dict(orient="records")
        sys.stdout.write(dump_json({**results.summary, "top_features": ranked}))
        return
    console = Console()
    console.print(top_features_table(results.features, top))
    for line in metrics_lines(results.summary):
        console.print(escape(line))


@app.command()
def report(
    out_dir: OUT_DIR,
    top: Annotated[int, typer.Option(help="Groups named in the plot.")] = 8,
    debug: DEBUG = False,
) -> None:
    """Draw path.png and write a self-contained report.html into OUT_DIR."""
    with user_errors(debug):
        from glselect.outputs.plots import write_report  # matplotlib loads only for this command

        written = write_report(load_results(out_dir), top=top)
    for path in written:
        stderr.print(f"wrote {escape(str(path))}", soft_wrap=True)


@app.command()
def check(
    out_dir: OUT_DIR,
    expect: Annotated[Optional[list[str]], typer.Option(help="This column must be selected (repeatable).")] = None,
    forbid: Annotated[Optional[list[str]], typer.Option(help="This column must not be selected, e.g. an ID (repeatable).")] = None,
    max_share: Annotated[Optional[float], typer.Option(help="No group may carry more than this share of the total importance.")] = None,
    baseline: Annotated[Optional[Path], typer.Option(help="An earlier out dir to compare the selection with.")] = None,
    min_overlap: Annotated[Optional[float], typer.Option(help="Least Jaccard overlap of the selected columns with --baseline.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the rule results as JSON.")] = False,
    debug: DEBUG = False,
) -> None:
    """Gate a CI job on OUT_DIR: exit 0 when every rule holds, 3 when one fails."""
    with user_errors(debug):
        outcomes = run_checks(
            load_results(out_dir),
            expect=list(expect or ()),
            forbid=list(forbid or ()),
            max_share=max_share,
            baseline=None if baseline is None else load_results(baseline),
            min_overlap=min_overlap,
        )
    passed = all(outcome.passed for outcome in outcomes)
    if json_output:
        sys.stdout.write(dump_json({"passed": passed, "rules": [vars(outcome) for outcome in outcomes]}))
    else:
        table = Table(title=f"glselect check {escape(str(out_dir))}", title_justify="left")
        for header in ("rule", "result", "detail"):
            table.add_column(header)
        for outcome in outcomes:
            table.add_row(escape(outcome.rule), "[green]pass[/]" if outcome.passed else "[bold red]FAIL[/]", escape(outcome.detail))
        Console().print(table)
    if not passed:
        raise typer.Exit(ExitCode.CHECK_FAILED)


if __name__ == "__main__":
    app()
