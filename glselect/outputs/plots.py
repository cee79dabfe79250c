"""The path plot, the importance chart and the self-contained HTML report, built from an out dir's results.

matplotlib is imported inside the functions: importing glselect stays fast and works without it.
"""

from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from glselect.errors import GlselectError
from glselect.outputs.load import Results
from glselect.outputs.outdir import atomic_write
from glselect.outputs.report import step_changes
from glselect.text import plural

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGSIZE = (12.0, 4.5)  # inches; at DPI this is 1440 x 540 pixels
DPI = 120
MAX_LABEL = 28  # longer group names are cut in the legend so it never covers the plot
# a path that starts with more groups than this gets a symlog "groups selected" axis (linear up to
# one group, logarithmic beyond): on a linear axis from 0 to thousands, the few-group steps where
# the choice is made are crushed against the left edge
WIDE_PATH = 50


def _label(text: Any) -> str:
    """User text made literal for matplotlib: ``$`` would start mathtext, and a long name is cut."""
    text = str(text) if len(str(text)) <= MAX_LABEL else str(text)[: MAX_LABEL - 1] + "…"
    return text.replace("$", r"\$")


def _new_figure() -> Figure:
    """An empty figure of the report's size on an Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise GlselectError("plots need matplotlib, which is not installed", hint="pip install matplotlib") from err
    # a bare Figure on an Agg canvas: no pyplot, so no global backend switch and no figure kept alive
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def stairs(lambdas: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The path as stairs: each step's norm held over the lambdas since the previous step.

    The path is known only at its steps, so a line must not suggest values between them. Holding
    each value to the left ("steps-pre") puts the drop of a group that leaves exactly at its last
    non-zero lambda, which is its path survival in the ranked table; a straight line down to the
    next step would show it surviving longer than it did. ``norms`` has shape (n_steps,) or
    (n_steps, n_groups); returns x of shape (2 n_steps - 1,) and y with that many rows.
    """
    # (l0, y0), (l0, y1), (l1, y1), (l1, y2), ...: y_i spans (l_{i-1}, l_i] and falls at l_i
    x = np.repeat(lambdas, 2)[:-1]
    y = np.repeat(norms, 2, axis=0)[1:]
    return x, y


def _draw_norms(ax: Any, results: Results, top: int) -> None:
    """Group norm against lambda, as stairs: the ``top`` groups coloured and named, the rest grey;
    a dot where each group was last non-zero (its path survival)."""
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    # step 0 (lambda 0, the dense start) has no place on a log axis
    path = results.path[results.path["lambda"] > 0].sort_values("lambda")
    norms = results.path_norms.pivot_table(index="step", columns="group", values="norm", observed=True, aggfunc="sum")
    norms = norms.reindex(index=path["step"], fill_value=0.0).fillna(0.0)
    norms.columns = norms.columns.astype(str)  # groups.csv reads a group named "1" back as a number
    lambdas = path["lambda"].to_numpy()
    if not len(path):
        top = 0  # nothing to draw a line for: name no group
        ax.text(0.5, 0.5, "no step with lambda > 0", transform=ax.transAxes, ha="center", color="0.4")
    named = [g for g in results.groups.sort_values("rank")["group"].astype(str).head(top) if g in norms.columns]
    values = norms.to_numpy()
    is_other = values.any(axis=0) & ~norms.columns.isin(named)
    n_others = int(is_other.sum())
    # where each group was last non-zero: the lambda the ranked table calls its survival
    last = len(lambdas) - 1 - np.argmax(values[::-1] > 0, axis=0) if len(lambdas) else np.zeros(0, int)
    if n_others:
        # one collection instead of one line per group: wide tables have tens of thousands of groups;
        # mid grey and a visible width, so the groups that leave early (noise, mostly) can be seen
        x, y = stairs(lambdas, values[:, is_other])
        segments = np.stack([np.broadcast_to(x, y.T.shape), y.T], axis=-1)
        ax.add_collection(LineCollection(list(segments), colors="0.55", linewidths=1.0, zorder=1, gid="path-other-groups"))
        ends = np.flatnonzero(is_other)
        ax.scatter(lambdas[last[ends]], values[last[ends], ends], s=9, color="0.45", zorder=2, gid="path-other-exits")
    palette = colormaps["tab10" if len(named) <= 10 else "tab20"]
    colours = [palette(k) for k in range(palette.N)]
    handles, labels = [], []
    for i, group in enumerate(named):
        j = norms.columns.get_loc(group)
        x, y = stairs(lambdas, values[:, j])
        (line,) = ax.plot(x, y, color=colours[i % len(colours)], lw=1.8, zorder=3, gid=f"path-group-{i}", label=group)
        if values[:, j].any():
            ax.plot(lambdas[last[j]], values[last[j], j], "o", color=line.get_color(), ms=4, zorder=3)
        handles.append(line)
        labels.append(_label(group))
    lam, rule = results.summary["lambda"], results.summary["rule"]
    if lam > 0:
        handles.append(ax.axvline(lam, color="black", ls="--", lw=1, zorder=2))
        labels.append(_label(f"chosen (rule {rule})"))
    if n_others:
        handles.append(LineCollection([], colors="0.55", linewidths=1.0))
        labels.append(f"{n_others} other group{'s' if n_others > 1 else ''}")
    n_gone = int((~values.any(axis=0)).sum()) if len(lambdas) else 0
    n_gone += len(set(results.groups["group"].astype(str)) - set(norms.columns))
    if n_gone and len(lambdas):
        ax.text(
            0.01,
            0.98,
            f"{n_gone} group{'s' if n_gone > 1 else ''} zero from the first lambda on",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            color="0.35",
        )
    ax.set_xscale("log")
    ax.autoscale_view()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("lambda (log scale)")
    ax.set_ylabel("group norm ||W_g||")
    ax.set_title("regularisation path (a dot: the last lambda a group is non-zero)", fontsize=10)
    # explicit handles and labels: matplotlib would silently drop a group named like "_x"
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper right", title=f"top {plural(len(named), 'group')}", title_fontsize=8)


def _draw_losses(ax: Any, results: Results) -> None:
    """The loss the rule chose by (±1 SE) against groups selected, the penalised loss faint behind it.

    That is the relaxed validation loss, or with ``--cv`` the fold mean of the relaxed held-out loss.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    cross_validated = "cv_loss" in results.path.columns
    loss, se = ("cv_loss", "cv_se") if cross_validated else ("relaxed_val_loss", "relaxed_val_se")
    scored_label = "cross-validated relaxed refit ±1 SE" if cross_validated else "relaxed refit ±1 SE"
    path = results.path.sort_values("step", ascending=False)  # sparse to dense, as the curve reads left to right
    # step 0 is the dense start, scored as trained rather than by a relaxed refit: a point of its own
    dense, path = path[path["lambda"] <= 0], path[path["lambda"] > 0]
    ax.plot(path["n_selected"], path["val_loss"], "o-", color="0.6", alpha=0.45, ms=3, lw=0.8, label="penalised fit")
    scored = path[np.isfinite(path[loss])]
    # steps that share a support share one relaxed score: draw it once
    scored = scored.drop_duplicates(["n_selected", loss])
    # the line only traces the walk: supports of one size can differ, so the path may double back
    ax.plot(scored["n_selected"], scored[loss], "-", color="tab:blue", alpha=0.4, lw=1, zorder=3)
    ax.errorbar(
        scored["n_selected"],
        scored[loss],
        yerr=scored[se].fillna(0.0),
        fmt="o",
        color="tab:blue",
        ms=4,
        capsize=3,
        label=scored_label,
        zorder=3,
    )
    ax.plot(dense["n_selected"], dense[loss], "s", mfc="none", mec="tab:purple", ms=7, mew=1.5, label="dense start (lambda 0)", zorder=3)
    chosen = results.path.loc[results.path["step"] == results.summary["step"]].iloc[0]
    label, selected_label = chosen_labels(results.summary, int(chosen["n_selected"]))
    label = _label(label) if selected_label is None else label  # the two-part label is kept whole: it says both counts
    # the star is the chosen step; a selection later stages changed is a dotted line at its own count
    line = ax.axvline(chosen["n_selected"], color="black", ls="--", lw=1, zorder=2)
    if math.isfinite(chosen[loss]):
        ax.plot(chosen["n_selected"], chosen[loss], "*", color="tab:red", ms=15, mec="black", mew=0.6, zorder=4, label=label)
    else:
        line.set_label(label)
    if selected_label is not None:
        ax.axvline(results.summary["n_selected_groups"], color="tab:red", ls=":", lw=1.5, zorder=2, label=selected_label)
    values = np.concatenate([results.path["val_loss"].to_numpy(), scored[loss].to_numpy()])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > 10:
        ax.set_yscale("log")  # the empty model's loss would otherwise flatten the region that matters
        # ticks at 1, 2, 5 per decade as plain numbers: the range is often only a decade or two
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=12))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(left=-0.5)  # from the empty model, even when the path stopped before reaching it
    most = results.path["n_selected"].max()
    if most > WIDE_PATH:
        _symlog_counts(ax, int(most))
        ax.set_xlabel("groups selected (log scale above 1)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("groups selected")
    ax.set_ylabel("held-out loss (relaxed refit)")
    ax.set_title("validation loss along the path", fontsize=10)
    ax.legend(fontsize=8, loc="best")


def chosen_labels(summary: dict[str, Any], at_step: int) -> tuple[str, str | None]:
    """The loss panel's labels: the chosen step's, "chosen: 30 groups (rule 1se)", and where the
    selection is not the step's groups, "chosen step: 30 groups (rule 1se)" and "selected after
    confirmation: 8" (or after the all-relevant rounds, or both), the line at the final count."""
    rule, n_selected = summary["rule"], summary["n_selected_groups"]
    if n_selected == at_step:
        return f"chosen: {plural(at_step, 'group')} (rule {rule})", None
    stages = [stage for stage, _, _ in step_changes(summary, at_step)]
    after = f" after {' and '.join(stages)}" if stages else ""
    return f"chosen step: {plural(at_step, 'group')} (rule {rule})", f"selected{after}: {n_selected}"


def _symlog_counts(ax: Any, most: int) -> None:
    """A symlog x axis for counts 0..``most``: linear from 0 to 1, logarithmic beyond, ticked at
    1, 2, 5 per decade as plain numbers."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ticks = [0.0] + [m * 10.0**e for e in range(len(str(most)) + 1) for m in (1, 2, 5) if m * 10**e <= most * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_xlim(-0.5, most * 1.3)


def plot_path(results: Results, top: int = 8) -> Figure:
    """Draw the regularisation path and the validation loss along it, side by side.

    Parameters
    ----------
    results
        The tables of an out dir, from ``load_results``.
    top
        How many of the highest-ranked groups are coloured and named; the others are drawn grey.

    Returns
    -------
    matplotlib.figure.Figure
        12 x 4.5 inches, on an Agg canvas (not registered with pyplot). Left: each group's norm
        against lambda, with the chosen lambda dashed. Right: the relaxed validation loss ±1 SE
        against the number of groups selected, the chosen step starred (a symlog axis when the
        path starts with more than ``WIDE_PATH`` groups).

    Raises
    ------
    GlselectError
        ``top`` is negative, or matplotlib is not installed.
    """
    if top < 0:
        raise GlselectError(f"top must be 0 or more, got {top}")
    fig = _new_figure()
    left, right = fig.subplots(1, 2)
    _draw_norms(left, results, top)
    _draw_losses(right, results)
    fig.suptitle(_label(f"target {results.summary['target']} ({results.summary['task']})"), fontsize=12)
    return fig


def _measure(results: Results, name: str) -> np.ndarray:
    column = results.features[name] if name in results.features.columns else np.nan
    return np.asarray(pd.to_numeric(pd.Series(column, index=results.features.index), errors="coerce"), dtype=float)


def importance_panels(results: Results) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """The importance measures the fit recorded, each with its spread where it has one:
    ``(key, title, values, spread or None)`` per panel, values per column in rank order.

    Permutation importance comes with the standard deviation over its shuffles; stability
    frequency with its binomial standard error over the half-samples; path survival has no
    spread and is shown only when neither was computed.
    """
    panels = []
    permutation, spread = _measure(results, "permutation"), _measure(results, "permutation_std")
    if np.isfinite(permutation).any():
        panels.append(
            ("permutation", "permutation importance (test loss increase, mean ± sd over shuffles)", permutation, np.nan_to_num(spread))
        )
    frequency = _measure(results, "stability")
    stability = results.summary.get("stability")
    if np.isfinite(frequency).any() and isinstance(stability, dict):
        n_halves = 2 * int(stability.get("pairs", 1))
        se = np.sqrt(np.clip(frequency * (1 - frequency), 0, None) / max(n_halves, 1))
        panels.append(
            ("stability", f"stability selection frequency (± binomial SE over {n_halves} half-samples)", frequency, np.nan_to_num(se))
        )
    if not panels:
        panels.append(
            ("survival", "path survival: the largest lambda at which the column is non-zero", _measure(results, "importance"), None)
        )
    return panels


def charted_rows(results: Results) -> np.ndarray:
    """The rows of ``results.features`` (in rank order) the importance chart may show: the columns
    the pruned model reads, and any other with a non-zero value in one of ``importance_panels``.

    A column the model does not read has a permutation importance of exactly 0: its empty bar says
    nothing, and a chart of mostly empty bars hides the few that matter.
    """
    values = np.stack([np.nan_to_num(values) for _, _, values, _ in importance_panels(results)])
    read = results.features["selected"].to_numpy(dtype=bool)
    return np.flatnonzero(read | (values != 0).any(axis=0))


def plot_importance(results: Results, top: int = 20) -> Figure:
    """Horizontal bars of the first ``top`` columns ``charted_rows`` picks, one panel per
    measure in ``importance_panels``.

    Selected columns are blue, the others grey; error bars show each measure's spread. Artists
    carry ids (``importance-bar-<key>-<row>``, ``importance-spread-<key>``) that the HTML report's SVG keeps.

    Raises
    ------
    GlselectError
        ``top`` is negative, or matplotlib is not installed.
    """
    if top < 0:
        raise GlselectError(f"top must be 0 or more, got {top}")
    panels = importance_panels(results)
    candidates = charted_rows(results)
    charted = candidates[:top]
    n_shown = len(charted)
    fig = _new_figure()
    fig.set_size_inches(4.0 + 4.0 * len(panels), 1.2 + 0.28 * max(n_shown, 3))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    names = [_label(name) for name in results.features["feature"].to_numpy()[charted]]
    selected = results.features["selected"].to_numpy(dtype=bool)[charted]
    colours = np.where(selected, "tab:blue", "0.6")
    rows = np.arange(n_shown)
    for ax, (key, title, values, spread) in zip(axes, panels):
        shown = np.nan_to_num(values[charted])
        for i, bar in enumerate(ax.barh(rows, shown, color=colours, height=0.7)):
            bar.set_gid(f"importance-bar-{key}-{i}")
        if spread is not None:
            errors = ax.errorbar(shown, rows, xerr=spread[charted], fmt="none", ecolor="black", elinewidth=1, capsize=2)
            errors.lines[2][0].set_gid(f"importance-spread-{key}")
        if key == "stability" and isinstance(results.summary.get("stability"), dict):
            ax.axvline(results.summary["stability"].get("threshold", 0.0), color="tab:red", ls="--", lw=1)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", color="0.9", zorder=0)
    axes[0].set_yticks(rows, names, fontsize=8)
    axes[0].invert_yaxis()  # rank 1 on top
    if not n_shown:
        axes[0].text(0.5, 0.5, "the pruned model reads no column", transform=axes[0].transAxes, ha="center", color="0.4")
    capped = f" (the first {n_shown} of {len(candidates)})" if len(candidates) > n_shown else ""
    fig.suptitle(
        f"{n_shown} of {len(results.features)} columns{capped}: those the pruned model reads (blue) or with a non-zero measure (grey)",
        fontsize=10,
    )
    return fig


def importance_svg(results: Results, top: int = 20) -> str:
    """``plot_importance`` as an inline ``<svg>`` element: text stays text (searchable, selectable)
    and ids are fixed, so the same results give the same bytes."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "glselect"}):
        plot_importance(results, top).savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # the XML prolog and doctype have no place inside HTML
    # nor the RDF metadata and namespace declarations: HTML knows inline SVG without them, and the
    # page then names no URL at all
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text[: text.index(">") + 1]) + text[text.index(">") + 1 :]


def write_report(results: Results, top: int = 8) -> list[Path]:
    """Write ``path.png`` and a self-contained ``report.html`` into the out dir.

    Parameters
    ----------
    results
        The tables of an out dir, from ``load_results``; the files go into ``results.out_dir``.
    top
        How many groups the plot names (see ``plot_path``).

    Returns
    -------
    list of Path
        ``[out_dir / "path.png", out_dir / "report.html"]``. The HTML holds the run's facts, the
        metrics, the importance chart (inline SVG, at least 20 columns), the path plot (the PNG,
        embedded) and the ranked columns; it loads nothing from elsewhere and runs no script.

    Raises
    ------
    GlselectError
        ``top`` is negative, matplotlib is not installed, or the files cannot be written.
    """
    from glselect.outputs.html import render_report

    buffer = io.BytesIO()
    plot_path(results, top).savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    png = buffer.getvalue()
    page = render_report(results, base64.b64encode(png).decode("ascii"), importance_svg(results, max(top, 20)))
    written = [results.out_dir / "path.png", results.out_dir / "report.html"]
    try:
        for target, data in zip(written, (png, page.encode("utf-8"))):
            with atomic_write(target) as staging:
                staging.write_bytes(data)
    except OSError as err:
        raise GlselectError(f"cannot write the report into '{results.out_dir}': {err}") from err
    return written
