"""The path plot and the HTML report: valid files, self-contained, escaped, and matplotlib only on demand."""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import subprocess
import sys

import pytest

from glselect import GlselectError, ModelConfig, PathConfig, RunConfig, run
from glselect._synthetic import make_friedman1
from glselect.outputs.artifacts import load_results

pytest.importorskip("matplotlib")

from glselect.outputs.plots import plot_path, write_report  # noqa: E402

# column names a browser or matplotlib would read as markup: HTML tags and entities, a mathtext
# "$", and a leading underscore (which matplotlib's automatic legend hides)
ODD_NAMES = {"x0": "a<b&c", "x3": 'q"$x$', "x4": "_under"}


@pytest.fixture(scope="module")
def fitted_out(tmp_path_factory):
    table = make_friedman1(400, 8, noise=0.5, seed=0).rename(columns=ODD_NAMES)
    folder = tmp_path_factory.mktemp("fit")
    table.to_csv(folder / "data.csv", index=False)
    config = RunConfig(
        table=folder / "data.csv", target="y", out=folder / "out",
        model=ModelConfig(hidden=(4,)), path=PathConfig(max_iters_per_lambda=30),
    )
    return run(config).out_dir


@pytest.fixture(scope="module")
def report(fitted_out):
    """The report of the module's fit, written once: (results, [png path, html path], html text)."""
    results = load_results(fitted_out)
    written = write_report(results)
    return results, written, written[1].read_text(encoding="utf-8")


def test_write_report_writes_both_files_into_the_out_dir(report):
    results, written, _ = report
    assert written == [results.out_dir / "path.png", results.out_dir / "report.html"]
    assert all(path.is_file() and path.stat().st_size > 0 for path in written)
    # the temporary siblings were renamed away
    assert not [path.name for path in results.out_dir.iterdir() if path.name.startswith(".")]


def test_png_is_valid_and_12_by_4_5_inches_at_120_dpi(report):
    from matplotlib.image import imread

    png = report[1][0]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert imread(png).shape[:2] == (540, 1440)


def test_html_is_self_contained(report):
    _, written, text = report
    assert text.count("data:image/png;base64,") == 1
    # the base64 payload may spell "http" by chance: look at everything else
    markup = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", text)
    assert "http" not in markup.lower()  # no external resource of any kind
    assert not re.search(r"<(script|link|iframe)\b", markup, re.IGNORECASE)
    assert re.search(r"""src=["'](?!data:)""", markup) is None


def test_html_names_every_selected_feature_and_the_metrics(report):
    results, _, text = report
    assert results.summary["selected_features"]
    for name in results.summary["selected_features"]:
        assert f"<td>{html.escape(name)}</td>" in text
    for name in results.summary["metrics"]["dense"]:
        assert f"<td>{name}</td>" in text


def test_html_escapes_column_names(report):
    results, _, text = report
    assert set(ODD_NAMES.values()) <= set(results.features["feature"])
    assert "<td>a&lt;b&amp;c</td>" in text
    assert "<td>q&quot;$x$</td>" in text
    assert "a<b&c" not in text and 'q"$x$' not in text


def test_ranked_table_lists_every_column_in_rank_order(report):
    results, _, text = report
    table = text.split("<h2>Ranked columns</h2>", 1)[1]
    positions = [table.index(f"<td>{html.escape(name)}</td>") for name in results.features["feature"]]
    assert positions == sorted(positions)


def test_plot_names_the_top_groups_and_the_chosen_lambda(report):
    results = report[0]
    fig = plot_path(results, top=3)
    left, right = fig.axes[:2]
    labels = [text.get_text() for text in left.get_legend().get_texts()]
    top_three = list(results.groups.sort_values("rank")["group"].head(3))
    # a "$" is escaped so that the name prints literally instead of as mathtext
    assert labels[:3] == [name.replace("$", r"\$") for name in top_three]
    assert any(label.startswith("chosen (rule ") for label in labels)
    assert left.get_xscale() == "log"
    assert (left.get_xlabel(), right.get_xlabel()) == ("lambda (log scale)", "groups selected")
    fig.canvas.draw()  # mathtext errors and layout problems surface only when drawing


def test_a_report_rewrite_replaces_the_files(report, tmp_path):
    results = report[0]
    copy = dataclasses.replace(results, out_dir=tmp_path / "out")
    shutil.copytree(results.out_dir, copy.out_dir)
    (copy.out_dir / "report.html").write_text("stale")
    write_report(copy, top=2)
    assert (copy.out_dir / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_negative_top_is_refused(report):
    with pytest.raises(GlselectError, match="top must be 0 or more, got -1"):
        plot_path(report[0], top=-1)


def test_importing_glselect_plots_does_not_import_matplotlib():
    code = "import sys, glselect, glselect.outputs.plots; print('matplotlib' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
