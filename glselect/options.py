"""The options of a fit, described once.

``OPTIONS`` is the one list of what a fit can be told. ``glselect fit`` builds its command-line
options from it (each flag is the option's name in kebab-case) and ``GroupLassoSelector`` its
parameters (the options that mean something to an in-memory fit). Each option names the
``RunConfig`` field it sets and reads its default from that dataclass, so a new config field
needs one entry here to reach both, and ``config_from`` turns option values into the config.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from glselect.config import TASKS, RunConfig
from glselect.errors import GlselectError

REQUIRED = inspect.Parameter.empty  # the default of an option that has none
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "T": 1 << 40,
    "TB": 1 << 40,
}


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
    unit = cleaned[len(number) :]
    try:
        value = float(number) * SIZE_UNITS[unit if unit in SIZE_UNITS else unit + "B"]
    except (ValueError, KeyError):
        raise GlselectError(f"--memory-budget must be a size like '4GB' or '512MB', got '{text}'") from None
    if value <= 0:
        raise GlselectError(f"--memory-budget must be positive, got '{text}'")
    return int(value)


def _widths(value: Any) -> tuple[int, ...]:
    # the CLI's text, or from Python a width or a sequence of widths; 0 alone is the linear model, as '0' is
    if isinstance(value, str):
        return parse_hidden(value)
    widths = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    return () if widths == (0,) else widths


def parse_folds(value: Any) -> int | str:
    """'auto' stays 'auto'; '5' or 5 -> 5 (the config checks the range)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            return int(text)
        except ValueError:
            raise GlselectError(f"--cv must be a whole number of folds (0: off) or 'auto', got '{value}'") from None
    return value


def _size(value: Any) -> int | None:
    return parse_size(value) if isinstance(value, str) else value


def parse_separator(value: str | None) -> str | None:
    r"""'\t' (a backslash and a t, as typed in a shell) or 'tab' -> a tab; any other text is the separator itself."""
    return "\t" if value in ("\\t", "tab") else value


def _names(value: Any) -> tuple[str, ...]:
    # one name given as a string is one column, not a column per character
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Text:
    """How an option reads from the command line when its text is not the config value itself."""

    cli_type: Any  # what typer parses the text as
    parse: Callable[[Any], Any]  # the command-line value, or a Python value -> the config value
    show: Callable[[Any], Any]  # the config default -> the command line's default


WIDTHS = Text(str, _widths, lambda widths: ",".join(map(str, widths)) or "0")
SIZE = Text(str | None, _size, lambda size: size)
FOLDS = Text(str, parse_folds, str)
SEPARATOR = Text(str | None, parse_separator, lambda separator: separator)
# repeatable column options: typer gives None when the option is absent
SOME_COLUMNS = Text(list[str] | None, lambda value: None if value is None else _names(value), lambda columns: None)
NO_COLUMNS = Text(list[str] | None, lambda value: () if value is None else _names(value), lambda columns: None)


@dataclass(frozen=True)
class Option:
    """One fit option: its name, the config field it sets, and its help text.

    The name is the selector's parameter, and in kebab-case the command-line flag.
    """

    name: str
    field: str  # where the value goes in RunConfig: 'seed', or '<section>.<field>' like 'path.lambda_step'
    help: str
    in_selector: bool = True  # False: nothing an in-memory Python fit can use (the out dir, streaming)
    text: Text | None = None  # None: the command-line value is the config value
    aliases: tuple[str, ...] = ()  # more names for the flag: short ones ('-t'), older spellings ('--exclude')
    show_default: bool | str = True  # a string describes a default that is computed at run time

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default(self) -> Any:
        """The config dataclass's default, or ``REQUIRED``."""
        spec = _config_field(self.field)[1]
        if spec.default is not dataclasses.MISSING:
            return spec.default
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return REQUIRED

    @property
    def type(self) -> Any:
        """The config field's type, e.g. ``int | None``."""
        owner, spec = _config_field(self.field)
        return typing.get_type_hints(owner)[spec.name]

    def parse(self, value: Any) -> Any:
        """The config value for ``value``, given on the command line or from Python."""
        return value if self.text is None else self.text.parse(value)


OPTIONS: tuple[Option, ...] = (
    Option(
        "target", "target", "Column to predict (required unless --task survival).", in_selector=False, aliases=("-t",), show_default=False
    ),
    Option("time", "time", "--task survival: the follow-up time column (>= 0).", in_selector=False, show_default=False),
    # torchrun's own parser takes '--event' for a prefix of its '--event-log-handler': '--event-column' passes through it
    Option(
        "event",
        "event",
        "--task survival: the event column, 1/True if the event happened at that time, 0/False if censored.",
        in_selector=False,
        aliases=("--event-column",),
        show_default=False,
    ),
    Option("groups", "groups", "Group map: CSV with header 'feature,group', or JSON {group: [columns]}; names may be globs like 'px_*'."),
    Option("out", "out", "Output directory.", in_selector=False, aliases=("-o",), show_default="DATA's name + .glselect, beside it"),
    Option("task", "data.task", f"One of {', '.join(TASKS)}.", show_default="detected from the target"),
    Option("features", "data.features", "Use only this column (repeat the option for more).", text=SOME_COLUMNS),
    Option("drop", "data.drop", "Leave this column out (repeatable).", text=NO_COLUMNS, aliases=("--exclude",)),
    Option("categorical", "data.categorical", "One-hot encode this column whatever its type (repeatable).", text=NO_COLUMNS),
    Option(
        "sep",
        "data.sep",
        "A CSV file's field separator, e.g. ';' ('\\t' or 'tab': a tab).",
        in_selector=False,
        text=SEPARATOR,
        show_default="',' (a tab for .tsv)",
    ),
    Option("decimal", "data.decimal", "A CSV file's decimal mark: '.' or ',' (with --sep ';').", in_selector=False),
    Option("max_levels", "data.max_levels", "One-hot levels kept per categorical column; rarer levels are pooled as <other>."),
    Option("hidden", "model.hidden", "Hidden layer widths, e.g. '64' or '64,32'; '0' fits the linear/logistic group lasso.", text=WIDTHS),
    Option(
        "neuron_penalty",
        "model.neuron_penalty",
        "Penalty on each hidden unit's outgoing weights in the refit: units it zeroes are pruned from the saved model.",
    ),
    Option(
        "l1_ratio",
        "model.l1_ratio",
        "Sparse group lasso: share of the penalty on each encoded column inside its group "
        "(0: group lasso, whole groups in or out; 1: lasso on the columns).",
    ),
    Option(
        "screen_pairs",
        "model.screen_pairs",
        "Before the dense fit, find pairs of columns that act on the target only together (a product, an XOR) "
        "and give each a few first-layer units, so the network need not find them among many columns.",
    ),
    Option(
        "rule",
        "selection.rule",
        "How to choose the model on the path: '1se' (sparsest within one standard error of the best validation loss) "
        "or 'min' (best validation loss).",
    ),
    Option(
        "max_features",
        "selection.max_features",
        "Choose K groups: walk the path's ranking (the last group to leave first), skipping a group correlated "
        "beyond --max-correlation with one already taken (overrides --rule).",
    ),
    Option(
        "goal",
        "selection.goal",
        "'minimal': the fewest groups that predict as well as the model can (a redundant copy is left out); "
        "'all-relevant': also every group that later rounds of selection find without those, copies included; "
        "'auto': the rounds only while a group left out is associated with the target, and none with --fdr or --max-features.",
    ),
    Option(
        "max_correlation",
        "selection.max_correlation",
        "With --max-features: walk the path's ranking and skip a group whose absolute correlation with one already "
        "taken exceeds this (on the validation rows); 1 takes the path's own K survivors.",
    ),
    Option(
        "cv",
        "selection.cv",
        "Score the path's lambdas by K-fold cross-validation (K >= 2); 0 scores them on one validation split; "
        "'auto': 5 folds when the validation split has fewer than 250 rows, else the split.",
        text=FOLDS,
    ),
    Option(
        "confirm",
        "selection.confirm",
        "Keep a chosen group only if shuffling it raises the refit model's validation loss by this many standard errors; "
        "0 keeps the whole step.",
    ),
    Option(
        "fdr",
        "selection.fdr",
        "Select by model-X knockoffs at this false discovery rate (in (0, 1)) instead of --rule; --confirm is not applied.",
        show_default="off",
    ),
    Option(
        "knockoff_draws",
        "selection.knockoff_draws",
        "Knockoff draws for --fdr (one extra path each, on twice the columns), combined by e-values.",
    ),
    Option(
        "fdr_offset",
        "selection.fdr_offset",
        "The +1 of knockoff+ in --fdr's threshold: 1 controls the FDR but selects nothing below 1 / Q discoveries; "
        "0 (plain knockoff, one draw) controls the modified FDR E[V / (R + 1/Q)].",
    ),
    Option(
        "class_weight", "data.class_weight", "'balanced' weighs each class equally in the loss, however rare; 'none' weighs rows equally."
    ),
    Option(
        "permutation_repeats",
        "importance.permutation_repeats",
        "Shuffles per group for permutation importance on the test rows; 0 skips it.",
    ),
    # the flag predates the field name; renaming it would break scripts and fitted pipelines' parameters
    Option(
        "stability",
        "importance.stability_pairs",
        "Stability selection over B complementary pairs of half-samples (2B extra paths); 0: off.",
    ),
    Option("stability_threshold", "importance.stability_threshold", "Selection frequency a group needs to count as stable (in (0.5, 1])."),
    Option("stability_q", "importance.stability_q", "Groups each half-sample path selects.", show_default="as many as the chosen model"),
    Option("min_features", "path.min_features", "Stop the path once this few groups remain."),
    Option("lambda_step", "path.lambda_step", "Base ratio between consecutive lambdas."),
    Option("lambda_start", "path.lambda_start", "First lambda of the path.", show_default="estimated from the data"),
    Option(
        "max_iters_per_lambda",
        "path.max_iters_per_lambda",
        "Iteration budget for each lambda (accepted or restarted iterations; "
        "trial steps the line search rejects are free, up to as many again).",
    ),
    Option(
        "tol",
        "path.tol",
        "Each lambda's solve is converged once its gradient mapping is within tol x lambda x sqrt(d_g) of the "
        "group's KKT condition in every group (or no proximal step lowers the objective any more); with hidden "
        "layers, the smallest combination of the mappings at its last 8 iterates.",
        show_default="0.05 with hidden layers, 0.01 without",
    ),
    Option("max_steps", "path.max_steps", "Most lambdas on the path (a safety cap)."),
    Option(
        "relax_iters",
        "path.relax_iters",
        "Most unpenalised iterations that score each new support of the path on the validation rows "
        "(the run stops sooner once their loss stops improving).",
    ),
    Option("max_iters", "train.max_iters", "Iteration budget for the dense fit and the refit (both stop early on validation loss)."),
    Option("val_fraction", "data.val_fraction", "Share of rows used to choose the model."),
    Option("test_fraction", "data.test_fraction", "Share of rows held out to report metrics."),
    Option("seed", "seed", "Seed for the split and initialisation: same data + seed = same result."),
    Option("threads", "threads", "Torch threads.", show_default="1 for small tables, every core for large ones"),
    Option("force", "force", "Replace --out even if it is not a glselect output.", in_selector=False),
    Option("resume", "resume", "Continue an interrupted fit from its last checkpoint (same data and settings).", in_selector=False),
    Option("device", "device", "Where to train: 'auto' (a CUDA GPU when present), 'cpu' or 'cuda'."),
    Option(
        "stream",
        "stream.stream",
        "Read a Parquet file or directory in record batches instead of loading it.",
        in_selector=False,
        show_default="when the table would not fit --memory-budget",
    ),
    Option(
        "memory_budget",
        "stream.memory_budget",
        "Memory the in-memory fit may use, e.g. '8GB'; larger Parquet tables stream.",
        in_selector=False,
        text=SIZE,
        show_default="a quarter of the available memory",
    ),
    Option(
        "batch_size",
        "stream.batch_size",
        "Streaming: rows per optimizer step.",
        in_selector=False,
        show_default="1024, fewer when a pass over the training rows would make under 32 steps",
    ),
    Option("learning_rate", "stream.learning_rate", "Streaming: SGD learning rate (momentum 0.9).", in_selector=False),
    Option(
        "epochs_per_lambda",
        "stream.epochs_per_lambda",
        "Streaming: passes over the training rows at each lambda (fractions allowed).",
        in_selector=False,
    ),
    Option("max_epochs", "stream.max_epochs", "Streaming: most passes for the dense fit and the refit (early-stopped).", in_selector=False),
)
SELECTOR_OPTIONS = tuple(option for option in OPTIONS if option.in_selector)
# RunConfig fields no option sets: 'table' is fit's DATA argument (X for the selector); the rest are
# tuned settings not offered to users. A test checks that every other field has an option.
FIELDS_WITHOUT_OPTION = frozenset(
    {
        "table",
        "model.max_norm",
        "train.check_every",
        "train.patience",
        "path.departure_fraction",
        "stream.momentum",
        "stream.max_holdout_rows",
    }
)


def _config_field(path: str) -> tuple[type, dataclasses.Field]:
    """The dataclass that holds the field at ``path`` ('seed', 'path.lambda_step'), and the field."""
    owner: type = RunConfig
    *sections, name = path.split(".")
    for section in sections:
        owner = typing.get_type_hints(owner)[section]
    return owner, {spec.name: spec for spec in dataclasses.fields(owner)}[name]


def config_from(values: Mapping[str, Any], **fields: Any) -> RunConfig:
    """The ``RunConfig`` for option values by name; options not given keep their defaults.

    Parameters
    ----------
    values
        ``{option name: value}``, each as the command line or the selector holds it.
    fields
        Top-level ``RunConfig`` fields that are not options, such as ``table``.

    Raises
    ------
    GlselectError
        A value the config (or the option's parser) rejects.
    """
    unknown = set(values) - {option.name for option in OPTIONS}
    if unknown:
        raise TypeError(f"not fit options: {', '.join(sorted(unknown))}")
    sections: dict[str, dict[str, Any]] = {}
    for option in OPTIONS:
        if option.name in values:
            section, _, name = option.field.rpartition(".")
            (sections.setdefault(section, {}) if section else fields)[name] = option.parse(values[option.name])
    section_types = typing.get_type_hints(RunConfig)
    for section, section_values in sections.items():
        fields[section] = section_types[section](**section_values)
    return RunConfig(**fields)
