"""The path plot and the HTML report: valid files, self-contained, escaped, and matplotlib only on demand."""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glselect import GlselectError, ModelConfig, PathConfig, RunConfig, SelectionConfig, run
from glselect._synthetic import make_friedman1
from glselect.outputs.load import load_results

pytest.importorskip("matplotlib")

from glselect.outputs.html import render_report
from glselect.outputs.plots import chosen_labels, importance_panels, plot_importance, plot_path, write_report
from glselect.outputs.report import as_good_line, fit_warnings, metrics_lines, selection_line

# column names a browser or matplotlib would read as markup: HTML tags and entities, a mathtext
# "$", and a leading underscore (which matplotlib's automatic legend hides)
ODD_NAMES = {"x0": "a<b&c", "x3": 'q"$x$', "x4": "_under"}


@pytest.fixture(scope="module")
def fitted_out(tmp_path_factory):
    # 1,400 rows: 250+ validation rows, so the default search compares on them without cross-fitting
    # every set it tries on 5 folds (more rows cost the path less than the folds cost the search)
    table = make_friedman1(1400, 8, noise=0.5, seed=0).rename(columns=ODD_NAMES)
    folder = tmp_path_factory.mktemp("fit")
    table.to_csv(folder / "data.csv", index=False)
    config = RunConfig(
        table=folder / "data.csv",
        target="y",
        out=folder / "out",
        model=ModelConfig(hidden=(4,)),
        path=PathConfig(max_iters_per_lambda=30, tol=0.1),
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
    _, _written, text = report
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
    assert "a<b&c" not in text
    # in the inline SVG's text a quote is plain text (no attribute to break out of); elsewhere it is escaped
    assert 'q"$x$' not in re.sub(r"<svg.*</svg>", "", text, flags=re.DOTALL)
    assert ">a&lt;b&amp;c</text>" in text


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


def test_the_loss_panel_says_the_chosen_step_and_what_confirmation_kept(report):
    results = report[0]
    chosen = results.path.loc[results.path["step"] == results.summary["step"]].iloc[0]
    at_step = int(chosen["n_selected"])
    # as if the selection were the step's groups
    same = {**results.summary, "n_selected_groups": at_step, "unconfirmed_groups": [], "rule": "1se"}
    legend = [text.get_text() for text in plot_path(dataclasses.replace(results, summary=same)).axes[1].get_legend().get_texts()]
    assert f"chosen: {at_step} groups (rule 1se)" in legend
    # as if confirmation had left one group of the step out
    summary = {**results.summary, "n_selected_groups": at_step - 1, "unconfirmed_groups": ["x7"], "all_relevant_rounds": [], "rule": "1se"}
    summary.pop("as_good_as_all")
    fig = plot_path(dataclasses.replace(results, summary=summary))
    legend = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert f"chosen step: {at_step} groups (rule 1se)" in legend
    assert f"selected after confirmation: {at_step - 1}" in legend
    assert not any(label.startswith("chosen: ") for label in legend)
    relevant = {"rule": "1se, all-relevant", "n_selected_groups": 11, "unconfirmed_groups": ["x", "z"], "all_relevant_rounds": [["y"]]}
    assert chosen_labels(relevant, 12) == (
        "chosen step: 12 groups (rule 1se, all-relevant)",
        "selected after confirmation and all-relevant: 11",
    )
    searched = {"rule": "1se, as good as all columns", "n_selected_groups": 5, "unconfirmed_groups": ["a", "b", "c"], "as_good_as_all": {}}
    searched["as_good_as_all"] = {"as_good": True}
    assert chosen_labels(searched, 8) == (
        "chosen step: 8 groups (rule 1se, as good as all columns)",
        "selected after the smallest-set search: 5",
    )


def test_importing_glselect_plots_does_not_import_matplotlib():
    code = "import sys, glselect, glselect.outputs.plots; print('matplotlib' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"


def _drawn_at(x: np.ndarray, y: np.ndarray, at: float) -> list[float]:
    """Heights of the polyline (x, y) at ``at``, from every segment that spans it."""
    heights = []
    for x0, x1, y0, y1 in zip(x[:-1], x[1:], y[:-1], y[1:]):
        if min(x0, x1) < at < max(x0, x1):
            heights.append(y0 + (y1 - y0) * (at - x0) / (x1 - x0))
    return heights


def test_path_lines_drop_to_zero_at_the_survival_the_ranked_table_gives(report):
    results = report[0]
    fig = plot_path(results, top=8)
    left = fig.axes[0]
    lambdas = np.sort(results.path.loc[results.path["lambda"] > 0, "lambda"].to_numpy())
    survival = dict(zip(results.groups["group"], results.groups["importance"]))
    lines = [line for line in left.get_lines() if (line.get_gid() or "").startswith("path-group-")]
    others = [c for c in left.collections if c.get_gid() == "path-other-groups"]
    drawn = [(line.get_label(), *line.get_data()) for line in lines]
    assert len(lines) == min(8, len(results.groups))
    for group, x, y in drawn:
        last = survival[group]
        later = lambdas[lambdas > last]
        if last > 0 and len(later):
            # between its last non-zero lambda and the next one the group is gone: the line must say so
            assert _drawn_at(np.asarray(x), np.asarray(y), np.sqrt(last * later[0])) == [0.0], group
            assert np.asarray(x)[np.asarray(y) > 0].max() == pytest.approx(last)
    for collection in others:  # the grey ones too
        for segment in collection.get_segments():
            alive = segment[segment[:, 1] > 0, 0]
            if len(alive):
                assert alive.max() in set(lambdas) and segment[segment[:, 0] > alive.max(), 1].max(initial=0) == 0
    fig.canvas.draw()


def test_groups_outside_the_top_are_drawn_visibly_with_their_exit(report):
    results = report[0]
    fig = plot_path(results, top=1)
    left = fig.axes[0]
    [others] = [c for c in left.collections if c.get_gid() == "path-other-groups"]
    assert others.get_linewidths()[0] >= 1.0
    assert others.get_colors()[0][:3].max() <= 0.6  # mid grey on white, not a faint line
    [exits] = [c for c in left.collections if c.get_gid() == "path-other-exits"]
    assert len(exits.get_offsets()) == len(others.get_segments())


def test_importance_chart_has_one_bar_and_error_bar_per_shown_column(report):
    results = report[0]
    fig = plot_importance(results, top=5)
    [ax] = fig.axes
    bars = [patch for patch in ax.patches if (patch.get_gid() or "").startswith("importance-bar-permutation-")]
    assert [bar.get_width() for bar in bars] == pytest.approx(results.features["permutation"].head(5).fillna(0).tolist())
    [spread] = [c for c in ax.collections if c.get_gid() == "importance-spread-permutation"]
    widths = [segment[1, 0] - segment[0, 0] for segment in spread.get_segments()]
    assert widths == pytest.approx((2 * results.features["permutation_std"].head(5).fillna(0)).tolist())
    assert [label.get_text() for label in ax.get_yticklabels()] == [
        name.replace("$", r"\$") for name in results.features["feature"].head(5)
    ]


def test_importance_chart_shows_stability_with_its_binomial_spread(report, tmp_path):
    results = report[0]
    frequency = np.linspace(1, 0, len(results.features))
    stable = dataclasses.replace(
        results,
        features=results.features.assign(stability=frequency),
        summary={**results.summary, "stability": {"pairs": 10, "q": 2, "threshold": 0.8, "stable_groups": [], "expected_false_bound": 0.5}},
    )
    keys = [key for key, *_ in importance_panels(stable)]
    assert keys == ["permutation", "stability"]
    _, _, _values, spread = importance_panels(stable)[1]
    assert spread == pytest.approx(np.sqrt(frequency * (1 - frequency) / 20))


def test_html_states_the_runs_facts(report):
    results, _, text = report
    summary, sizes = results.summary, results.summary["sizes"]
    for fact in (
        f"<td>data path</td><td>{html.escape(summary['config']['table'])}</td>",
        f"<td>parameters, dense model</td><td>{sizes['dense_parameters']:,}</td>",
        f"<td>seed</td><td>{summary['seed']}</td>",
        f"{sizes['rows']:,} rows; {sizes['columns']} columns besides the target",
        f"torch {summary['versions']['torch']}, python {summary['versions']['python']}",
        f"{sizes['pruned_parameters']:,} (hidden ",
    ):
        assert fact in text, fact
    assert '<table id="settings">' in text and "<td>model.hidden</td>" in text


def test_importance_chart_leaves_out_columns_the_model_does_not_read(report):
    results = report[0]
    features = results.features
    unread = features[~features["selected"] & (features["permutation"] == 0)]
    assert len(unread) >= 2  # the fit left columns out: the chart must not give them empty bars
    fig = plot_importance(results, top=20)
    [ax] = fig.axes
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels == [name.replace("$", r"\$") for name in features.loc[features["selected"], "feature"]]
    bars = [patch for patch in ax.patches if (patch.get_gid() or "").startswith("importance-bar-")]
    assert len(bars) == int(features["selected"].sum()) and all(bar.get_width() > 0 for bar in bars)
    assert fig._suptitle.get_text().startswith(f"{len(bars)} of {len(features)} columns: those the pruned model reads")


def test_importance_chart_shows_an_unread_column_with_a_measure_and_caps_the_count(report):
    results = report[0]
    last = results.features.index[-1]
    assert not results.features.loc[last, "selected"]
    # a stability frequency (a half-sample chose it) is worth a bar even when the refit does not read the column
    stable = dataclasses.replace(
        results,
        features=results.features.assign(stability=np.where(results.features.index == last, 0.4, 0.0)),
        summary={**results.summary, "stability": {"pairs": 5, "q": 2, "threshold": 0.8, "stable_groups": [], "expected_false_bound": 0.5}},
    )
    labels = [label.get_text() for label in plot_importance(stable, top=20).axes[0].get_yticklabels()]
    assert labels[-1] == results.features.loc[last, "feature"] and len(labels) == int(results.features["selected"].sum()) + 1
    capped = plot_importance(results, top=2)
    assert len(capped.axes[0].get_yticklabels()) == 2
    n_read = int(results.features["selected"].sum())
    assert f"2 of {len(results.features)} columns (the first 2 of {n_read})" in capped._suptitle.get_text()


@pytest.fixture(scope="module")
def wide_out(tmp_path_factory):
    """A linear fit on 400 columns (5 informative): the path starts with hundreds of groups."""
    table = make_friedman1(200, 400, noise=0.5, seed=1)
    folder = tmp_path_factory.mktemp("wide")
    table.to_csv(folder / "data.csv", index=False)
    config = RunConfig(
        table=folder / "data.csv",
        target="y",
        out=folder / "out",
        model=ModelConfig(hidden=()),
        path=PathConfig(max_iters_per_lambda=20, tol=0.1, relax_iters=20, max_steps=25),
        # the question the plot asks needs no confirmation or later rounds, which cost minutes on hundreds of groups
        selection=SelectionConfig(goal="minimal", confirm=0),
    )
    return run(config).out_dir


def test_a_wide_paths_loss_panel_gives_the_few_group_steps_room(wide_out, report):
    results = load_results(wide_out)
    assert results.path["n_selected"].max() > 300
    right = plot_path(results).axes[1]
    assert right.get_xscale() == "symlog" and right.get_xlabel() == "groups selected (log scale above 1)"
    # on a linear axis from 0 to 400 the steps with 1 to 10 groups would share its first 2.5%
    to_axes = right.transData + right.transAxes.inverted()
    (one, _), (ten, _) = to_axes.transform([(1, 1), (10, 1)])
    assert ten - one > 0.2
    ticks = [label.get_text() for label in right.get_xticklabels()]
    assert ticks[:5] == ["0", "1", "2", "5", "10"]
    # a narrow table keeps its linear axis of whole numbers
    assert plot_path(report[0]).axes[1].get_xscale() == "linear"


def test_report_lists_the_runs_warnings(report):
    results, _, _ = report
    # steps that stopped short where the top ranks leave: the fit's warning, listed in the report
    short = {**results.summary["path"], "n_unconverged_steps": 3, "unconverged_from_rank": 2, "worst_optimality": 0.5}
    results = dataclasses.replace(results, summary={**results.summary, "path": short})
    text = render_report(results, "", "<svg></svg>")
    expected = fit_warnings(results.summary)
    assert expected and "stopped short of --tol" in expected[0]
    assert '<ul id="warnings">' in text
    for line in expected:
        assert f"<li>{html.escape(line)}</li>" in text
    reading = {**results.summary["reading"], "warnings": ["mostly empty column(s): 'a<b' (99% missing)"]}
    page = render_report(dataclasses.replace(results, summary={**results.summary, "reading": reading}), "", "<svg></svg>")
    warnings = page.split('<ul id="warnings">', 1)[1].split("</ul>", 1)[0]
    assert warnings.index("<li>mostly empty column(s): &#x27;a&lt;b&#x27; (99% missing)</li>") < warnings.index("stopped short of --tol")
    quiet = {**results.summary, "path": {**results.summary["path"], "n_unconverged_steps": 0}}
    assert '<p id="warnings">none</p>' in render_report(dataclasses.replace(results, summary=quiet), "", "<svg></svg>")


def test_fit_warnings_name_a_path_that_stopped_early():
    summary = {"path": {"complete": False, "n_steps": 6, "n_unconverged_steps": 0}}
    assert fit_warnings(summary) == [
        "the path stopped after 5 lambdas with groups still non-zero; the ranking of those groups is unresolved"
    ]


def test_report_lists_the_interacting_pairs_and_the_all_relevant_additions(report):
    results, _, text = report
    # the default goal searches the smallest set as good as all columns and names stand-ins; no rounds
    assert "<td>added by all-relevant rounds</td><td>not run (--goal auto or minimal, --fdr or --max-features)</td>" in text
    assert f"<td>smallest set as good as all columns</td><td>{html.escape(as_good_line(results.summary))}</td>" in text
    assert "<td>interacting pairs (given units before the dense fit)</td><td>none</td>" in text
    assert "<td>near-duplicate columns (no units given)</td><td>none</td>" in text
    summary = {
        **results.summary,
        "interacting_pairs": [{"columns": ["a<b&c", "x1"], "t": 7.25}, {"columns": ["x2", "x5"], "t": 3.5}],
        "duplicate_pairs": [{"columns": ["x3", "x3<copy>"], "correlation": 0.991, "t": 12.5}],
        "all_relevant_rounds": [["x6", "x7"], ["x5"]],
    }
    page = render_report(dataclasses.replace(results, summary=summary), "", "<svg></svg>")
    assert "<td>near-duplicate columns (no units given)</td><td>x3 ≈ x3&lt;copy&gt; (corr 0.991)</td>" in page
    assert "near-duplicate columns, not an interacting pair (no units given): x3 ≈ x3<copy> (corr 0.991)" in metrics_lines(summary)
    assert "<td>interacting pairs (given units before the dense fit)</td><td>a&lt;b&amp;c × x1 (t 7.25), x2 × x5 (t 3.5)</td>" in page
    assert "<td>added by all-relevant rounds</td><td>round 1: x6, x7; round 2: x5</td>" in page
    minimal = {key: value for key, value in results.summary.items() if key != "all_relevant_rounds"}
    page = render_report(dataclasses.replace(results, summary=minimal), "", "<svg></svg>")
    assert "<td>added by all-relevant rounds</td><td>not run (--goal auto or minimal, --fdr or --max-features)</td>" in page


def test_the_selection_line_names_the_step_and_what_later_stages_did():
    summary = {
        "n_selected_features": 8,
        "n_selected_groups": 8,
        "sizes": {"columns": 30, "groups": 30},
        "rule": "1se",
        "scored_by": "validation",
        "lambda": 0.0,
        "path": {"groups_at_step": 30},
        "unconfirmed_groups": [f"x{k}" for k in range(22)],
        "all_relevant_rounds": [],
    }
    assert selection_line(summary) == (
        "selected 8 of 30 columns (8 of 30 groups): the step at λ=0 (30 groups) by rule 1se (validation), confirmation kept 8"
    )
    rounds = {**summary, "n_selected_groups": 10, "n_selected_features": 10, "path": {"groups_at_step": 12}}
    rounds = {**rounds, "unconfirmed_groups": ["x1", "x2", "x3"], "all_relevant_rounds": [["x4"]], "lambda": 0.0123}
    assert selection_line(rounds) == (
        "selected 10 of 30 columns (10 of 30 groups): the step at λ=0.0123 (12 groups) by rule 1se (validation), "
        "confirmation left out 3, all-relevant added 1, 10 selected"
    )
    searched = {**summary, "n_selected_groups": 5, "n_selected_features": 5, "path": {"groups_at_step": 8}, "lambda": 0.0222}
    searched = {
        **searched,
        "unconfirmed_groups": ["x1", "x2", "x3"],
        "rule": "1se, as good as all columns",
        "as_good_as_all": {"as_good": True},
    }
    assert selection_line(searched) == (
        "selected 5 of 30 columns (5 of 30 groups): the step at λ=0.0222 (8 groups) by rule 1se, as good as all columns "
        "(validation), the smallest-set search kept 5"
    )
    same = {**summary, "path": {"groups_at_step": 8}, "unconfirmed_groups": [], "lambda": 0.0246}
    assert selection_line(same) == "selected 8 of 30 columns (8 of 30 groups) by rule 1se (validation) at λ=0.0246"


def test_report_time_is_the_summarys_and_says_what_it_covers(report):
    results, _, text = report
    timings = results.summary["timings"]
    parts = ["read_seconds", "path_seconds", "cv_and_refit_seconds", "importance_seconds"]
    assert sum(timings[key] for key in parts) <= timings["total_seconds"]
    assert (
        f"<td>fit time (wall clock)</td><td>{timings['total_seconds']:.1f} s from opening the table to the ranked result "
        f"(reading {timings['read_seconds']:.1f} s, path {timings['path_seconds']:.1f} s, "
        f"choosing and refitting {timings['cv_and_refit_seconds']:.1f} s, importance {timings['importance_seconds']:.1f} s); "
        "starting Python, loading torch and writing the out dir come on top</td>"
    ) in text


CHROMIUM = Path("/usr/bin/chromium")


def _chromium(*args: str, folder: Path) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={folder / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    results, written, _ = report
    url = written[1].as_uri()
    dom = _chromium("--dump-dom", url, folder=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    read = results.features["selected"] | (results.features["permutation"].fillna(0) != 0)
    n_bars = min(20, int(read.sum()))  # the columns the pruned model reads, or with a measure (see test_importance_chart_*)
    # the browser parsed the inline chart into SVG elements: a bar per column and the error bars
    assert len(re.findall(r'<g id="importance-bar-permutation-\d+"', page)) == n_bars
    assert '<g id="importance-spread-permutation"' in page
    assert re.search(r'<img id="path-plot"[^>]*src="data:image/png;base64,', page)
    for topic in ("data", "model", "selection", "reproduce"):
        assert f'<table id="facts-{topic}">' in page
    errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert errors == []
    # and it drew them: the chart's selected-column blue and the path plot's second line (orange) are on screen
    shot = tmp_path / "shot.png"
    drawn = _chromium(f"--screenshot={shot}", "--window-size=1400,3000", "--hide-scrollbars", url, folder=tmp_path)
    assert drawn.returncode == 0 and shot.exists(), drawn.stderr[-2000:]
    from matplotlib.image import imread

    pixels = (imread(shot)[..., :3] * 255).round().astype(int)
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels - colour).sum(axis=-1) <= 6).sum() > 50, colour
