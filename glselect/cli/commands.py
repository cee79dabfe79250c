"""The commands that read an out dir: ``predict``, ``select``, ``show``, ``report`` and ``check``.

Each imports the pipeline's modules when it runs, not when the command line loads: torch and
pandas take seconds, and ``--help`` should not wait for them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from glselect.cli.console import DEBUG, one_line, stderr, stdout_console, user_errors
from glselect.cli.interrupt import loading
from glselect.errors import ExitCode, GlselectError
from glselect.text import plural

if TYPE_CHECKING:  # pandas loads only when a command runs
    import pandas as pd

OUT_DIR = Annotated[Path, typer.Argument(metavar="OUT_DIR", help="The --out directory of a glselect fit.", show_default=False)]


def check_writable_file(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output file that could not be written.

    The nearest existing folder on the way to ``path`` must be a directory this process may
    write into (missing folders below it are created when the file is written).

    Raises
    ------
    GlselectError
        ``path`` is a directory, or something on its way is a file or a folder without write permission.
    """
    if path.is_dir():
        raise GlselectError(f"{option} '{path}' is a directory", hint="name a file, e.g. predictions.csv")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise GlselectError(f"cannot write {option} '{path}': '{folder}' is not a directory", hint=f"choose another {option}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GlselectError(f"cannot write {option} '{path}': no permission to write in '{folder}'", hint=f"choose another {option}")


def check_kept_columns(keep: list[str], columns: Iterable[object], data: Path) -> None:
    """Refuse a ``--keep`` name that is not a column of ``data``, suggesting the closest that is.

    Raises
    ------
    GlselectError
        Naming every unknown column.
    """
    from glselect.data.names import did_you_mean

    names = [str(name) for name in columns]
    missing = [name for name in keep if name not in names]
    if missing:
        raise GlselectError(f"--keep names column(s) not in '{data}': {', '.join(map(repr, missing))}", hint=did_you_mean(missing, names))


KEEP = Annotated[
    list[str] | None, typer.Option(metavar="COLUMN", help="Copy this column of DATA into the output, e.g. an ID (repeatable).")
]


SEP = Annotated[
    str | None,
    typer.Option(metavar="CHAR", help="A CSV file's field separator, as for fit ('tab' or '\\t' for a tab).", show_default="detected"),
]
DECIMAL = Annotated[str, typer.Option(metavar="CHAR", help="A CSV file's decimal mark: '.' or ','.")]


def _read(data: Path, sep: str | None, decimal: str) -> pd.DataFrame:
    """DATA read as fit reads a table, with its separator and decimal mark checked as fit checks them."""
    from glselect.config import DataConfig
    from glselect.data.io import read_table
    from glselect.options import parse_separator

    reading = DataConfig(sep=parse_separator(sep), decimal=decimal)  # refuses a bad mark as fit does
    return read_table(data, reading.sep, reading.decimal)


def _write(table: pd.DataFrame, path: Path) -> None:
    from glselect.data.io import write_table

    try:
        write_table(table, path)
    except OSError as err:  # e.g. the disk filled up after the check above
        raise GlselectError(f"cannot write --out '{path}': {err}") from err


def predict(
    out_dir: OUT_DIR,
    data: Annotated[
        Path, typer.Argument(metavar="DATA", help="Table to predict: needs only the columns the model reads.", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Write predictions here (.csv or .parquet).", show_default="CSV on stdout"),
    ] = None,
    keep: KEEP = None,
    sep: SEP = None,
    decimal: DECIMAL = ".",
    debug: DEBUG = False,
) -> None:
    """Predict DATA with the pruned model of OUT_DIR, through the encoding saved at fit time."""
    with user_errors(debug):
        if out is not None:
            check_writable_file(out)
        with loading():
            import pandas as pd

            from glselect.data.io import EmptyTable
            from glselect.outputs.load import load_model
            from glselect.outputs.predict import input_notes, predict_table

        loaded = load_model(out_dir)
        try:
            table = _read(data, sep, decimal)
        except EmptyTable as empty:  # a header and no rows: predictions for no rows are a header and no rows
            table = pd.DataFrame({name: pd.Series([], dtype=object) for name in empty.columns})
        check_kept_columns(keep or [], table.columns, data)
        predictions = predict_table(loaded, table)
        for note in input_notes(loaded, table):
            stderr.print(f"note: {escape(one_line(note))}", soft_wrap=True, highlight=False)
        if keep:
            predictions = pd.concat([table[list(keep)], predictions], axis=1)
        if out is None:
            sys.stdout.write(predictions.to_csv(index=False))
        else:
            _write(predictions, out)
            stderr.print(f"wrote {plural(len(predictions), 'prediction')} to {escape(str(out))}", soft_wrap=True)


def select(
    out_dir: OUT_DIR,
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Table to reduce.", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="FILE", help="Reduced table to write (.csv or .parquet).", show_default=False)
    ],
    keep: KEEP = None,
    sep: SEP = None,
    decimal: DECIMAL = ".",
    debug: DEBUG = False,
) -> None:
    """Write DATA with only the columns OUT_DIR selected (and the target, when DATA has it: time and event for
    survival), after the --keep columns."""
    with user_errors(debug):
        check_writable_file(out)
        with loading():
            from glselect.outputs.load import load_results

        results = load_results(out_dir)
        table = _read(data, sep, decimal)
        check_kept_columns(keep or [], table.columns, data)
        selected = list(results.summary["selected_features"])
        missing = [name for name in selected if name not in table.columns]
        if missing:
            raise GlselectError(f"'{data}' lacks selected column(s): {', '.join(map(repr, missing))}")
        # a survival target is two columns: the time (summary's target) and the event
        targets = [name for name in (results.summary["target"], results.summary.get("event")) if name is not None]
        # a kept column that is also selected, or the target, is written once, where --keep puts it
        columns = list(dict.fromkeys([*(keep or ()), *selected, *(name for name in targets if name in table.columns)]))
        _write(table[columns], out)
        stderr.print(
            f"wrote {plural(len(selected), 'selected column')} of {plural(len(table), 'row')} to {escape(str(out))}", soft_wrap=True
        )


def show(
    out_dir: OUT_DIR,
    top: Annotated[int, typer.Option(min=0, metavar="N", help="Rows of the ranked table (0: all).")] = 15,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary and the ranked columns as JSON.")] = False,
    debug: DEBUG = False,
) -> None:
    """Show the result in OUT_DIR: the ranked columns and the dense-vs-pruned metrics."""
    with user_errors(debug):
        with loading():
            from glselect.outputs.files import dump_json
            from glselect.outputs.load import load_results
            from glselect.outputs.report import metrics_lines, table_warnings, top_features_table

        results = load_results(out_dir)
        top = top or len(results.features)
        if json_output:
            ranked = results.features.head(top).to_dict(orient="records")
            sys.stdout.write(dump_json({**results.summary, "top_features": ranked}))
            return
        # built before printing: a summary.json missing a part is one error line, not half a table
        table = top_features_table(results.features, top)
        lines = metrics_lines(results.summary) + [f"warning: {line}" for line in table_warnings(results.features)]
    console = stdout_console()
    console.print(table)
    for line in lines:
        console.print(escape(line))


def report(
    out_dir: OUT_DIR,
    top: Annotated[int, typer.Option(min=0, metavar="N", help="Groups named in the plot.")] = 8,
    debug: DEBUG = False,
) -> None:
    """Draw path.png and write a self-contained report.html into OUT_DIR."""
    with user_errors(debug):
        with loading():
            from glselect.outputs.load import load_results
            from glselect.outputs.plots import write_report  # matplotlib loads only for this command

        written = write_report(load_results(out_dir), top=top)
    for path in written:
        stderr.print(f"wrote {escape(str(path))}", soft_wrap=True)


def check(
    out_dir: OUT_DIR,
    expect: Annotated[list[str] | None, typer.Option(metavar="COLUMN", help="This column must be selected (repeatable).")] = None,
    forbid: Annotated[
        list[str] | None, typer.Option(metavar="COLUMN", help="This column must not be selected, e.g. an ID (repeatable).")
    ] = None,
    max_share: Annotated[
        float | None, typer.Option(metavar="SHARE", help="No group may carry more than this share of the total importance.")
    ] = None,
    baseline: Annotated[Path | None, typer.Option(metavar="DIR", help="An earlier out dir to compare the selection with.")] = None,
    min_overlap: Annotated[
        float | None, typer.Option(metavar="SHARE", help="Least Jaccard overlap of the selected columns with --baseline.")
    ] = None,
    fail_on_leakage: Annotated[
        bool, typer.Option("--fail-on-leakage", help="Fail when the fit found a group that alone predicts the target almost perfectly.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the rule results as JSON.")] = False,
    debug: DEBUG = False,
) -> None:
    """Gate a CI job on OUT_DIR: exit 0 when every rule holds, 3 when one fails."""
    with user_errors(debug):
        with loading():
            from glselect.outputs.checks import run_checks
            from glselect.outputs.files import dump_json
            from glselect.outputs.load import load_results

        outcomes = run_checks(
            load_results(out_dir),
            expect=list(expect or ()),
            forbid=list(forbid or ()),
            max_share=max_share,
            baseline=None if baseline is None else load_results(baseline),
            min_overlap=min_overlap,
            fail_on_leakage=fail_on_leakage,
        )
    passed = all(outcome.passed for outcome in outcomes)
    if json_output:
        sys.stdout.write(dump_json({"passed": passed, "rules": [vars(outcome) for outcome in outcomes]}))
    else:
        table = Table(title=f"glselect check {escape(str(out_dir))}", title_justify="left")
        for header in ("rule", "result", "detail"):
            table.add_column(header, overflow="fold")  # column names in a rule wrap, never end in '…'
        for outcome in outcomes:
            table.add_row(escape(outcome.rule), "[green]pass[/]" if outcome.passed else "[bold red]FAIL[/]", escape(outcome.detail))
        stdout_console().print(table)
    if not passed:
        raise typer.Exit(ExitCode.CHECK_FAILED)
