"""The text of ``report.html``: the run's facts, the metrics, the charts and the ranked columns.

Self-contained: the path plot is an embedded PNG, the importance chart inline SVG, the style
inline; no script and nothing loaded from elsewhere. Every piece of user text is escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from glselect.outputs.load import Results
from glselect.outputs.report import MEASURE_COLUMNS, RANK_COLUMNS, as_good_line, as_object, run_warnings, stand_ins_line, table_warnings

# the parts of summary.json's timings, in the order the fit spends them
TIMED_PARTS = (
    ("reading", "read_seconds"),
    ("path", "path_seconds"),
    ("choosing and refitting", "cv_and_refit_seconds"),
    ("importance", "importance_seconds"),
)

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1500px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; } img, svg { max-width: 100%; height: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; } th { background: #f3f3f3; }
.facts { display: flex; flex-wrap: wrap; gap: 0 2em; } .facts section { min-width: 22em; }
details { margin: 0 0 1.5em; } summary { cursor: pointer; }
"""


def fmt(value: Any) -> str:
    """A number in 4 significant digits; None and non-finite values as n/a."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)  # a fact an older or edited summary.json records as something else
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def table(header: list[str] | None, rows: list[list[Any]], css_id: str | None = None) -> str:
    """An HTML table; every cell is escaped (column names may hold <, & or quotes)."""
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header or [])
    head = f"<thead><tr>{cells}</tr></thead>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>\n" for row in rows)
    ident = f' id="{css_id}"' if css_id else ""
    return f"<table{ident}>{head}<tbody>\n{body}</tbody></table>"


def _flatten(config: Any, prefix: str = "") -> list[list[Any]]:
    """Nested settings as ``[name, value]`` rows, ``model.hidden`` style."""
    if not isinstance(config, dict):
        return [[prefix, config]]
    rows: list[list[Any]] = []
    for key, value in config.items():
        rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return rows


def run_facts(summary: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The facts a reader needs to judge and repeat the run, by topic. Out dirs written before a
    fact was recorded lack it: it reads n/a."""
    sizes, config = summary["sizes"], summary["config"]
    path = as_object(summary.get("path"))
    versions = as_object(summary.get("versions"))
    kinds: dict[str, int] = {}
    ignored = []
    for name, column in summary["columns"].items():
        kind = str(column.get("kind", "n/a"))
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "ignored":
            ignored.append(f"{name} ({column.get('treatment', '')})")
    rows, dropped = sizes.get("rows"), sizes.get("rows_dropped_missing_target")
    table_rows = rows + dropped if isinstance(rows, int) and isinstance(dropped, int) else rows
    targets = [summary["target"]] + ([summary["event"]] if summary.get("event") else [])
    n_scored = (summary.get("streaming") or {}).get("test_rows_scored", sizes["test_rows"])
    hidden = as_object(config.get("model")).get("hidden")
    return {
        "Data": [
            ["data path", config.get("table", "n/a")],
            ["target", ", ".join(map(str, targets)) + f" ({summary['task']})"],
            ["table size", f"{fmt(table_rows)} rows; {fmt(sizes['columns'])} columns besides the target"],
            [
                "rows used",
                f"{fmt(rows)} (training {fmt(sizes.get('train_rows'))}, validation {fmt(sizes.get('val_rows'))}, "
                f"test {fmt(sizes['test_rows'])}, scored {fmt(n_scored)})",
            ],
            ["rows dropped (missing target)", fmt(dropped)],
            ["columns by kind", ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "n/a"],
            ["ignored columns", "; ".join(ignored) or "none"],
        ],
        "Model": [
            ["encoded columns", fmt(sizes.get("encoded_columns"))],
            ["groups", fmt(sizes["groups"])],
            ["hidden layers (dense)", "none (linear)" if hidden == [] else fmt_list(hidden)],
            ["parameters, dense model", fmt(sizes.get("dense_parameters"))],
            [
                "parameters, pruned model",
                f"{fmt(sizes.get('pruned_parameters'))} (hidden {fmt_list(sizes.get('pruned_hidden'))}, "
                f"{fmt(sizes.get('pruned_neurons_removed'))} neurons removed)",
            ],
        ],
        "Selection": [
            ["rule", f"{summary['rule']} ({summary.get('scored_by', 'validation')})"],
            ["chosen lambda", f"{fmt(summary['lambda'])} (step {summary['step']})"],
            [
                "selected",
                f"{len(summary['selected_features'])} of {sizes['columns']} columns, "
                f"{len(summary['selected_groups'])} of {sizes['groups']} groups",
            ],
            ["selected columns", ", ".join(summary["selected_features"]) or "none"],
            ["smallest set as good as all columns", as_good_line(summary) or "not asked (--goal auto only)"],
            ["could stand in", (stand_ins_line(summary) or "none named").removeprefix("stand-ins: ")],
            ["left out by confirmation", _names(summary.get("unconfirmed_groups"))],
            ["added by all-relevant rounds", _rounds(summary)],
            ["interacting pairs (given units before the dense fit)", _pairs(summary.get("interacting_pairs"))],
            ["near-duplicate columns (no units given)", _duplicates(summary.get("duplicate_pairs"))],
            [
                "path steps",
                f"{fmt(path.get('n_steps'))} ({fmt(path.get('n_unconverged_steps'))} did not converge; "
                f"{'complete' if path.get('complete') else 'stopped before every group left'})",
            ],
        ],
        "Reproduce": [
            ["seed", fmt(summary.get("seed"))],
            ["versions", ", ".join(f"{name} {version}" for name, version in versions.items()) or "n/a"],
            ["fit time (wall clock)", fit_time(summary.get("timings"))],
        ],
    }


def fmt_list(values: Any) -> str:
    return ",".join(map(str, values)) if isinstance(values, list) and values else ("none" if values == [] else "n/a")


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def fit_time(timings: Any) -> str:
    """summary.json's ``timings.total_seconds`` and what it covers: from opening the table to the
    ranked result, split into the fit's parts; not starting Python, loading torch or writing the out dir."""
    timings = as_object(timings)
    total = _seconds(timings.get("total_seconds"))
    if total == "n/a":
        return total
    spent = ", ".join(f"{name} {_seconds(timings.get(key))}" for name, key in TIMED_PARTS if key in timings)
    return (
        f"{total} from opening the table to the ranked result ({spent}); starting Python, loading torch and writing the out dir come on top"
    )


def _names(values: Any) -> str:
    if not isinstance(values, list):
        return "n/a"
    return ", ".join(map(str, values)) or "none"


def _rounds(summary: dict[str, Any]) -> str:
    """The groups each all-relevant round added (select/relevant.py); the field is absent when the rounds did not run."""
    if "all_relevant_rounds" not in summary:
        return "not run (--goal auto or minimal, --fdr or --max-features)"
    rounds = summary["all_relevant_rounds"]
    if not isinstance(rounds, list):
        return "n/a"
    return "; ".join(f"round {k}: {_names(names)}" for k, names in enumerate(rounds, start=1)) or "none"


def _pairs(pairs: Any) -> str:
    """The column pairs the interaction screen gave hidden units to (path/interactions.py), strongest first."""
    return _pair_list(pairs, "×", "t")


def _duplicates(pairs: Any) -> str:
    """The near-copies the interaction screen passed over (path/interactions.py), with their correlation."""
    return _pair_list(pairs, "≈", "correlation", "corr")


def _pair_list(pairs: Any, joiner: str, key: str, label: str | None = None) -> str:
    """Each pair of summary.json's list as "a JOINER b (LABEL value)", the value read at ``key``."""
    if not isinstance(pairs, list):
        return "n/a"
    shown = []
    for pair in pairs:
        columns = as_object(pair).get("columns")
        if isinstance(columns, list) and len(columns) == 2:
            shown.append(f"{columns[0]} {joiner} {columns[1]} ({label or key} {fmt(as_object(pair).get(key))})")
    return ", ".join(shown) or "none"


def warnings_list(summary: dict[str, Any], features: pd.DataFrame) -> str:
    """The warnings ``fit`` printed, as a list (one item each); a line saying there were none otherwise."""
    warnings = run_warnings(summary) + table_warnings(features)
    if not warnings:
        return '<p id="warnings">none</p>'
    items = "".join(f"<li>{html.escape(line)}</li>\n" for line in warnings)
    return f'<ul id="warnings">\n{items}</ul>'


def render_report(results: Results, path_png: str, importance_svg: str) -> str:
    """``report.html``'s text. ``path_png``: the path plot, base64; ``importance_svg``: the chart's ``<svg>`` element."""
    summary, target = results.summary, html.escape(str(results.summary["target"]))
    dense, pruned = summary["metrics"]["dense"], summary["metrics"]["pruned"]
    facts = "".join(
        f"<section><h3>{topic}</h3>{table(None, rows, f'facts-{topic.lower()}')}</section>" for topic, rows in run_facts(summary).items()
    )
    metrics = [[name, fmt(dense[name]), fmt(pruned.get(name))] for name in dense]
    # the rank follows "selected", the stages' rank keys (the all-relevant round), then "importance"
    keys = [name for name in RANK_COLUMNS if name in results.features.columns and results.features[name].notna().any()]
    columns = ["rank", "feature", "group", "selected", *keys, "importance", "dense_norm"]
    optional = [  # measures the fit computed
        name for name in MEASURE_COLUMNS if name in results.features.columns and results.features[name].notna().any()
    ]
    if optional and "perm_not_positive" in results.features.columns:
        optional.append("perm_not_positive")
    ranked = [
        [
            row["rank"],
            row["feature"],
            row["group"],
            "yes" if row["selected"] else "no",
            *("" if pd.isna(row[name]) else f"{row[name]:.0f}" for name in keys),
            *(fmt(row[name]) for name in ["importance", "dense_norm", *optional]),
        ]
        for row in results.features[columns + optional].to_dict("records")
    ]
    settings = table(["setting", "value"], _flatten(summary["config"]), "settings")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>glselect report: {target}</title>
<style>{STYLE}</style></head><body>
<h1>glselect report: {target}</h1>
<h2>Warnings</h2>
{warnings_list(summary, results.features)}
<h2>The run</h2>
<div class="facts">{facts}</div>
<details><summary>every resolved setting</summary>{settings}</details>
<h2>Held-out test metrics</h2>
{table(["metric", "dense", "pruned"], metrics, "metrics")}
<h2>Importance</h2>
<figure id="importance-chart">{importance_svg}</figure>
<h2>Path</h2>
<img id="path-plot" alt="regularisation path and validation loss" src="data:image/png;base64,{path_png}">
<h2>Ranked columns</h2>
{table(columns + optional, ranked, "ranked")}
</body></html>
"""
