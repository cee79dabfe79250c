"""What a new user meets in the first hour: every mistake is one `error:` line and exit 2, the out
dir is locked while a fit writes it, output says how the fit went and reads well in a terminal,
a pipe and an 80-column help screen, and --version/--help answer without loading torch."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from glselect.cli.app import app
from glselect.errors import GlselectError
from glselect.options import OPTIONS
from glselect.outputs.report import top_features_table

ROOT = Path(__file__).resolve().parents[2]
# two names that agree on their first 40 characters: cut short, they would read the same
LONG_A = "customer_lifetime_value_in_euros_rolling_window_q1"
LONG_B = "customer_lifetime_value_in_euros_rolling_window_q2"


def invoke(*args: object):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_user_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == f"error: {message}"


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _binary_table(n: int = 160) -> pd.DataFrame:
    generator = np.random.default_rng(5)
    frame = pd.DataFrame(
        {LONG_A: generator.standard_normal(n), LONG_B: generator.standard_normal(n), "noise": generator.standard_normal(n)}
    )
    frame["y"] = np.where(frame[LONG_A] - frame[LONG_B] + 0.3 * generator.standard_normal(n) > 0, "yes", "no")
    return frame


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, object]:
    """One small CLI fit (logistic, one group of all columns, a tight iteration budget), made over
    a lock file that a dead process left behind: (table, out dir, the CliRunner result)."""
    folder = tmp_path_factory.mktemp("fit")
    table = folder / "data.csv"
    _binary_table().to_csv(table, index=False)
    group_map = folder / "groups.csv"
    group_map.write_text(f"feature,group\n{LONG_A},all\n{LONG_B},all\nnoise,all\n")
    out = folder / "out"
    (folder / ".out.lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    result = invoke(
        "fit",
        table,
        "-t",
        "y",
        "--out",
        out,
        "--hidden",
        "0",
        "--groups",
        group_map,
        "--max-iters-per-lambda",
        "3",
        "--lambda-step",
        "1.5",
        "--permutation-repeats",
        "1",
        "--top",
        "3",
    )
    assert result.exit_code == 0, result.output
    return table, out, result


def test_version_and_help_do_not_load_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from glselect.cli.app import app\n"
        "for args in (['--version'], ['--help'], ['fit', '--help'], ['predict', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print(sorted(name for name in ('torch', 'pandas', 'pyarrow', 'numpy') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_fit_help_is_grouped_and_readable_at_80_columns():
    result = CliRunner().invoke(app, ["fit", "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # no option name or value cut short
    assert "<bool>" not in text and "<str>" not in text and "{data}" not in text
    assert re.search(r"Usage: \S+ fit \[OPTIONS\] DATA", text)
    assert "{group:" in text and "[columns]}" in text  # not swallowed as markup
    flags = set(re.findall(r"--[a-z0-9-]+", text))
    assert {option.flag for option in OPTIONS} <= flags
    for panel in ("Input and output", "Columns and target", "Model", "Choosing the model", "Path", "Run", "Streaming (Parquet)"):
        assert f"─ {panel} ─" in text


def test_fit_help_keeps_the_help_column_wide_and_shows_choices_at_80_columns():
    text = CliRunner().invoke(app, ["fit", "--help"], env={"COLUMNS": "80", "TERM": "dumb"}).stdout
    lines = text.splitlines()
    # a flag and its '--no-' twin share the option column, one above the other, with the default named
    at = next(index for index, line in enumerate(lines) if "--screen-pairs " in line)
    assert "--no-screen-pairs" in lines[at + 1] and "[default: --screen-pairs]" in text
    help_starts = lines[at].index("Before the dense fit")
    assert len(lines[at]) - help_starts - 2 >= 40  # the Model panel's help is 40 or more characters wide
    # the choices, not typer's TEXT placeholder
    assert re.search(r"--goal\s+minimal\|", text) and re.search(r"--cv\s+K\|auto", text) and re.search(r"--rule\s+1se\|min", text)
    assert " TEXT " not in text
    # --max-features as docs/method.md describes it: a walk down the ranking, not the least-penalised step
    max_features = next(option.help for option in OPTIONS if option.name == "max_features")
    assert "walk the path's ranking" in max_features and "--max-correlation" in max_features


def test_a_missing_target_prints_the_usage_and_exits_2(tmp_path, write_table, linear_table):
    table = write_table(linear_table)
    result = invoke("fit", table, "--quiet")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.match(r"Usage: \S+ fit \[OPTIONS\] DATA\nTry '\S+ fit --help' for help\.", result.stderr)
    assert "Missing option '--target' / '-t'" in result.stderr


def test_top_0_shows_every_row(fitted):
    _table, out, _result = fitted
    n_columns = len(pd.read_csv(out / "importances.csv"))
    shown = invoke("show", out, "--top", "0")
    assert shown.exit_code == 0, shown.output
    assert f"Top {n_columns} of {n_columns} columns" in shown.stdout
    listed = json.loads(invoke("show", out, "--top", "0", "--json").stdout)["top_features"]
    assert len(listed) == n_columns


def test_no_command_prints_the_help_and_exits_2():
    result = invoke()
    assert result.exit_code == 2
    assert "Commands" in result.stdout and "fit" in result.stdout


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see torch loading")
def test_ctrl_c_while_torch_loads_is_one_line_and_exit_130(tmp_path, write_table, linear_table):
    process = subprocess.Popen(
        [sys.executable, "-m", "glselect", "fit", str(write_table(linear_table)), "-t", "y", "--out", str(tmp_path / "out")],
        env=_subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 60
    while process.poll() is None and "libtorch" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.005)  # until torch's libraries are mapped: its import has begun and takes a while yet
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stdout == "" and stderr.splitlines() == ["interrupted: nothing was written"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.csv"]


def test_negative_seed_is_refused(tmp_path):
    result = invoke("fit", tmp_path / "data.csv", "-t", "y", "--seed", "-1")
    assert_user_error(result, "seed must be 0 or a positive whole number, got -1")


def test_unwritable_out_fails_before_any_work(tmp_path, write_table, linear_table):
    (tmp_path / "a_file").write_text("")
    result = invoke("fit", write_table(linear_table), "-t", "y", "--out", tmp_path / "a_file" / "deeper" / "out", "-q")
    assert_user_error(
        result, f"cannot write output directory '{tmp_path / 'a_file' / 'deeper' / 'out'}': '{tmp_path / 'a_file'}' is not a directory"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file", "data.csv"]


def test_a_fit_refuses_an_out_dir_another_run_is_writing(tmp_path, write_table, linear_table):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / "new" / ".out.lock"
        lock.parent.mkdir()
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname()}))
        result = invoke("fit", write_table(linear_table), "-t", "y", "--out", tmp_path / "new" / "out", "-q")
        assert_user_error(
            result,
            f"output directory '{tmp_path / 'new' / 'out'}' is being written by another glselect run "
            f"(pid {other.pid} on {socket.gethostname()}; lock file '{lock}')",
        )
        assert sorted(path.name for path in lock.parent.iterdir()) == [".out.lock"]  # the other run's lock is kept
    finally:
        other.kill()
        other.wait()


def test_a_dead_runs_lock_is_taken_over_and_released(fitted):
    _table, out, _result = fitted
    assert (out / "summary.json").exists()
    assert not (out.parent / ".out.lock").exists()


def test_every_torchrun_rank_stops_with_rank_0s_lock_refusal(tmp_path, monkeypatch):
    # rank 0 alone takes the lock; the others learn its outcome (all_gather) and stop with the same line
    from glselect import distributed, pipeline

    sent: list[object] = []
    monkeypatch.setattr(distributed, "all_gather_objects", lambda value, context: sent.append(value) or [sent[0], None])
    lock = tmp_path / ".out.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # held by a live process
    message = f"output directory '{tmp_path / 'out'}' is being written by another glselect run (pid {os.getpid()}"
    for rank in (0, 1):
        with pytest.raises(GlselectError) as raised:
            pipeline._lock_out_dir(tmp_path / "out", distributed.Context(rank, 2, rank))
        assert str(raised.value).startswith(message)
    assert sent[1] is None  # rank 1 never touched the lock
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_a_few_group_fit_solves_every_step_to_tol_even_on_a_tight_budget(fitted):
    # every step has at most walk.EXACT_UP_TO groups, so each gets 20 times --max-iters-per-lambda 3
    # (the warning's text, when a top step does stop short: tests/solve/test_to_tolerance.py)
    _table, out, result = fitted
    summary = json.loads((out / "summary.json").read_text())
    path = summary["path"]
    assert path["n_unconverged_steps"] == 0 and path["unconverged_from_rank"] is None and path["ranks_solved_to_tol"] == 16
    assert path["worst_optimality"] > 0 and "stopped short of --tol" not in result.stderr
    # path.csv holds each step's measure, and the worst is the summary's
    steps = pd.read_csv(out / "path.csv")
    assert steps["optimality"].iloc[1:].max() == pytest.approx(path["worst_optimality"])
    assert pd.isna(steps["optimality"].iloc[0])  # the dense step is not penalised
    # no progress display when stderr is not a terminal
    assert "dense fit" not in result.stderr and "groups dropped" not in result.stderr


def test_plurals_agree_with_their_counts(fitted):
    _table, _out, result = fitted
    assert "(0 of 1 group)" in result.stdout or "(1 of 1 group)" in result.stdout
    assert "Top 3 of 3 columns" in result.stdout
    assert "groups)" not in result.stdout.replace("of 1 group)", "")


def test_piped_output_keeps_each_line_whole(fitted):
    _table, out, _result = fitted
    shown = invoke("show", out)
    assert shown.exit_code == 0, shown.output
    metrics = [line for line in shown.stdout.splitlines() if line.startswith("held-out test rows")]
    assert len(metrics) == 1 and re.search(
        r"log_loss \S+ → \S+, accuracy \S+ → \S+, balanced_accuracy \S+ → \S+, auc \S+ → \S+$", metrics[0]
    )
    # the long names print whole: nothing to cut them at in a pipe
    assert LONG_A in shown.stdout and LONG_B in shown.stdout


def test_long_names_stay_distinguishable_in_a_narrow_terminal(fitted):
    _table, out, _result = fitted
    console = Console(file=io.StringIO(), width=60, color_system=None)
    console.print(top_features_table(pd.read_csv(out / "importances.csv"), 3))
    names: list[str] = []
    for line in console.file.getvalue().splitlines():
        cells = line.split("│")[1:-1]
        if len(cells) < 2:
            continue
        if cells[0].strip():  # a row starts where its rank is; a name folded onto more lines continues it
            names.append("")
        names[-1] += cells[1].strip()
    assert set(names) == {LONG_A, LONG_B, "noise"}


def test_show_prints_a_missing_metric_as_na(fitted, tmp_path):
    _table, out, _result = fitted
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["metrics"]["dense"]["auc"] = summary["metrics"]["pruned"]["auc"] = None  # a test part of one class
    (copy / "summary.json").write_text(json.dumps(summary))
    shown = invoke("show", copy)
    assert shown.exit_code == 0, shown.output
    assert "auc n/a → n/a" in shown.stdout


def test_top_must_not_be_negative(fitted):
    _table, out, _result = fitted
    shown = invoke("show", out, "--top", "-3")
    assert shown.exit_code == 2
    assert "Invalid value for '--top'" in shown.output


def test_predict_and_select_refuse_an_unwritable_out_before_reading(fitted, tmp_path):
    table, out, _result = fitted
    (tmp_path / "a_file").write_text("")
    target = tmp_path / "a_file" / "predictions.csv"
    for command in ("predict", "select"):
        assert_user_error(
            invoke(command, out, table, "--out", target), f"cannot write --out '{target}': '{tmp_path / 'a_file'}' is not a directory"
        )
    assert_user_error(invoke("predict", out, table, "--out", tmp_path), f"--out '{tmp_path}' is a directory")


def test_predict_names_the_row_it_cannot_read(fitted, tmp_path):
    table, out, result = fitted
    frame = pd.read_csv(table).astype({LONG_B: object})
    frame.loc[6, LONG_B] = "n/a?"
    frame.loc[9, LONG_B] = "none"
    frame.to_csv(tmp_path / "new.csv", index=False)
    result = invoke("predict", out, tmp_path / "new.csv")
    assert_user_error(
        result, f"column '{LONG_B}' was numeric when the model was fitted, but data row 7 holds 'n/a?' (2 unreadable cells in all)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "--target", "y"], "error: table file 'missing.csv' does not exist"),
        (["{table}", "--target", "Y"], "error: target column 'Y' is not in '{table}'"),
        (["{parquet}", "--target", "nope"], "error: target column 'nope' is not in '{parquet}'"),
        (["{table}", "--target", "y", "--groups", "nomap.csv"], "error: group map file 'nomap.csv' does not exist"),
    ],
)
def test_a_missing_table_or_target_is_reported_before_torch_loads(tmp_path, args, message):
    table, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    frame = pd.DataFrame({"a": [1.0, 2.0], "b c": [3.0, 4.0], "y": [0.5, 0.25]})
    frame.to_csv(table, index=False)
    frame.to_parquet(parquet, index=False)
    args = [arg.format(table=table, parquet=parquet) for arg in args]
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from glselect.cli.app import app\n"
        f"result = CliRunner().invoke(app, ['fit', *{args!r}])\n"
        "print(result.exit_code, 'torch' in sys.modules)\n"
        "print(result.stderr.splitlines()[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_subprocess_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2 False", message.format(table=table, parquet=parquet)]


def test_the_header_check_words_its_errors_as_the_fit_does(tmp_path):
    from glselect.cli.header import check_header
    from glselect.config import RunConfig
    from glselect.data.target import drop_missing_target

    columns = [f"x{j}" for j in range(25)] + ["y"]
    path = tmp_path / "t.csv"
    path.write_text(",".join(columns) + "\n" + ",".join("1" for _ in columns) + "\n")
    with pytest.raises(GlselectError) as fit_error:
        drop_missing_target(pd.DataFrame(columns=columns), "Y", str(path))
    with pytest.raises(GlselectError) as header_error:
        check_header(RunConfig(table=path, target="Y"))
    assert (str(header_error.value), header_error.value.hint) == (str(fit_error.value), fit_error.value.hint)


def test_the_header_check_passes_a_target_another_separator_splits_out(tmp_path, write_table):
    from glselect.cli.header import check_header
    from glselect.config import RunConfig

    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n1;2;3\n", encoding="cp1252")
    check_header(RunConfig(table=path, target="y"))  # left to the reader, whose hint names the separator
    (tmp_path / "accent.csv").write_bytes("caf\xe9,y\n1,2\n".encode("cp1252"))
    check_header(RunConfig(table=tmp_path / "accent.csv", target="caf\xe9"))
    with pytest.raises(GlselectError, match="target column 'cafe' is not in"):
        check_header(RunConfig(table=tmp_path / "accent.csv", target="cafe"))


def test_a_header_the_csv_module_cannot_split_is_left_to_the_reader(tmp_path):
    """A carriage return in a column's name (the fuzz drew one) is the reader's to word, not a traceback."""
    (tmp_path / "cr.csv").write_bytes(b"\r0\n")  # as pandas writes a header-only table with that name
    cli = invoke("fit", tmp_path / "cr.csv", "--target", "\r0", "--out", tmp_path / "out", "-q")
    assert cli.exit_code == 2, (cli.output, repr(cli.exception))
    assert "Traceback" not in cli.output
