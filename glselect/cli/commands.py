"""The commands that read an out dir: ``predict``, ``select``, ``show``, ``report`` and ``check``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from glselect.cli.console import DEBUG, stderr, user_errors
from glselect.data.io import read_table, write_table
from glselect.errors import ExitCode, GlselectError
from glselect.outputs.artifacts import dump_json, load_model, load_results
from glselect.outputs.checks import run_checks
from glselect.outputs.predict import predict_table
from glselect.outputs.report import metrics_lines, top_features_table

OUT_DIR = Annotated[Path, typer.Argument(help="The --out directory of a glselect fit.", show_default=False)]


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


def select(
    out_dir: OUT_DIR,
    data: Annotated[Path, typer.Argument(help="Table to reduce.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Reduced table to write (.csv or .parquet).", show_default=False)],
    debug: DEBUG = False,
) -> None:
    """Write DATA with only the columns OUT_DIR selected (and the target, when DATA has it: time and event for survival)."""
    with user_errors(debug):
        results = load_results(out_dir)
        table = read_table(data)
        selected = list(results.summary["selected_features"])
        missing = [name for name in selected if name not in table.columns]
        if missing:
            raise GlselectError(f"'{data}' lacks selected column(s): {', '.join(map(repr, missing))}")
        # a survival target is two columns: the time (summary's target) and the event
        targets = [name for name in (results.summary["target"], results.summary.get("event")) if name is not None]
        write_table(table[selected + [name for name in targets if name in table.columns]], out)
        stderr.print(f"wrote {len(selected)} selected columns of {len(table)} rows to {escape(str(out))}", soft_wrap=True)


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
