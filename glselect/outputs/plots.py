"""The path plot and a self-contained HTML report, built from an out dir's results.

matplotlib is imported inside the functions: importing glselect stays fast and works without it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glselect.outputs.artifacts import Results
from glselect.errors import GlselectError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGSIZE = (12.0, 4.5)  # inches; at DPI this is 1440 x 540 pixels
DPI = 120
MAX_LABEL = 28  # longer group names are cut in the legend so it never covers the plot


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


def _draw_norms(ax: Any, results: Results, top: int) -> None:
    """Group norm against lambda: the ``top`` groups coloured and named, the rest thin grey."""
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
    is_other = norms.to_numpy().any(axis=0) & ~norms.columns.isin(named)
    n_others = int(is_other.sum())
    if n_others:
        # one collection instead of one line per group: wide tables have tens of thousands of groups
        others = norms.to_numpy()[:, is_other].T
        segments = np.stack([np.broadcast_to(lambdas, others.shape), others], axis=-1)
        ax.add_collection(LineCollection(segments, colors="0.75", linewidths=0.6, zorder=1))
    colours = colormaps["tab10" if len(named) <= 10 else "tab20"].colors
    handles, labels = [], []
    for i, group in enumerate(named):
        (line,) = ax.plot(lambdas, norms[group], color=colours[i % len(colours)], lw=1.8, zorder=3)
        handles.append(line)
        labels.append(_label(group))
    lam, rule = results.summary["lambda"], results.summary["rule"]
    if lam > 0:
        handles.append(ax.axvline(lam, color="black", ls="--", lw=1, zorder=2))
        labels.append(_label(f"chosen (rule {rule})"))
    if n_others:
        handles.append(LineCollection([], colors="0.75", linewidths=0.6))
        labels.append(f"{n_others} other group{'s' if n_others > 1 else ''}")
    ax.set_xscale("log")
    ax.autoscale_view()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("lambda (log scale)")
    ax.set_ylabel("group norm ||W_g||")
    ax.set_title("regularisation path", fontsize=10)
    # explicit handles and labels: matplotlib would silently drop a group named like "_x"
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper right", title=f"top {len(named)} groups", title_fontsize=8)


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
        scored["n_selected"], scored[loss], yerr=scored[se].fillna(0.0),
        fmt="o", color="tab:blue", ms=4, capsize=3, label=scored_label, zorder=3,
    )
    ax.plot(dense["n_selected"], dense[loss], "s", mfc="none", mec="tab:purple", ms=7, mew=1.5,
            label="dense start (lambda 0)", zorder=3)
    chosen = results.path.loc[results.path["step"] == results.summary["step"]].iloc[0]
    label = _label(f"chosen: {int(chosen['n_selected'])} groups (rule {results.summary['rule']})")
    ax.axvline(chosen["n_selected"], color="black", ls="--", lw=1, zorder=2)
    if math.isfinite(chosen[loss]):
        ax.plot(chosen["n_selected"], chosen[loss], "*", color="tab:red", ms=15, mec="black",
                mew=0.6, zorder=4, label=label)
    values = np.concatenate([results.path["val_loss"].to_numpy(), scored[loss].to_numpy()])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > 10:
        ax.set_yscale("log")  # the empty model's loss would otherwise flatten the region that matters
        # ticks at 1, 2, 5 per decade as plain numbers: the range is often only a decade or two
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=12))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(left=-0.5)  # from the empty model, even when the path stopped before reaching it
    ax.set_xlabel("groups selected")
    ax.set_ylabel("held-out loss (relaxed refit)")
    ax.set_title("validation loss along the path", fontsize=10)
    ax.legend(fontsize=8, loc="best")


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
        against the number of groups selected, the chosen step starred.

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


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4g}"


def _table(header: list[str] | None, rows: list[list[Any]]) -> str:
    """An HTML table; every cell is escaped (column names may hold <, & or quotes)."""
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header or [])
    head = f"<thead><tr>{cells}</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>{head}<tbody>\n{body}</tbody></table>"


def _html(results: Results, png: bytes) -> str:
    summary, target = results.summary, html.escape(str(results.summary["target"]))
    dense, pruned = summary["metrics"]["dense"], summary["metrics"]["pruned"]
    facts = [
        ["target", summary["target"]], ["task", summary["task"]], ["rule", summary["rule"]],
        ["chosen lambda", f"{_fmt(summary['lambda'])} (step {summary['step']})"],
        ["selected", f"{len(summary['selected_features'])} of {summary['sizes']['columns']} columns, "
                     f"{len(summary['selected_groups'])} of {summary['sizes']['groups']} groups"],
        ["selected columns", ", ".join(summary["selected_features"]) or "none"],
    ]
    metrics = [[name, _fmt(dense[name]), _fmt(pruned.get(name))] for name in dense]
    columns = ["rank", "feature", "group", "selected", "importance", "dense_norm"]
    ranked = [
        [row["rank"], row["feature"], row["group"], "yes" if row["selected"] else "no",
         _fmt(row["importance"]), _fmt(row["dense_norm"])]
        for row in results.features[columns].to_dict("records")
    ]
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>glselect report: {target}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1500px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }} img {{ max-width: 100%; height: auto; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }} th {{ background: #f3f3f3; }}
</style></head><body>
<h1>glselect report: {target}</h1>
<h2>Summary</h2>
{_table(None, facts)}
<h2>Held-out test metrics</h2>
{_table(["metric", "dense", "pruned"], metrics)}
<h2>Path</h2>
<img alt="regularisation path and validation loss" src="data:image/png;base64,{image}">
<h2>Ranked columns</h2>
{_table(columns, ranked)}
</body></html>
"""


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary sibling, then rename: a reader never sees a half-written file."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        # mkstemp makes the file owner-only; give it the read permissions of its folder instead
        os.chmod(temporary, target.parent.stat().st_mode & 0o666)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
        ``[out_dir / "path.png", out_dir / "report.html"]``. The HTML embeds the PNG and its
        style, and loads nothing from elsewhere.

    Raises
    ------
    GlselectError
        ``top`` is negative, matplotlib is not installed, or the files cannot be written.
    """
    buffer = io.BytesIO()
    plot_path(results, top).savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    written = [results.out_dir / "path.png", results.out_dir / "report.html"]
    try:
        _write_atomically(written[0], png)
        _write_atomically(written[1], _html(results, png).encode("utf-8"))
    except OSError as err:
        raise GlselectError(f"cannot write the report into '{results.out_dir}': {err}") from err
    return written
