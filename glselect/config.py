"""Frozen configuration objects shared by the command line and the Python API.

The CLI reads its option defaults from these dataclasses, so the two cannot drift, and the
resolved configuration is written into ``summary.json`` beside the results.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glselect.errors import GlselectError

TASKS = ("regression", "binary", "multiclass", "survival")  # survival is never detected: --task survival names it
SELECTION_RULES = ("1se", "min")
CLASS_WEIGHTS = ("none", "balanced")
DECIMAL_MARKS = (".", ",")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise GlselectError(message)


@dataclass(frozen=True)
class DataConfig:
    task: str | None = None  # None: detected from the target column
    val_fraction: float = 0.2  # rows held out to choose the model on the path
    test_fraction: float = 0.2  # rows held out to report dense vs pruned metrics
    max_levels: int = 20  # one-hot levels kept per categorical column; rarer ones are pooled
    features: tuple[str, ...] | None = None  # use only these columns (None: all)
    drop: tuple[str, ...] = ()  # leave these columns out
    categorical: tuple[str, ...] = ()  # one-hot these columns whatever their type
    class_weight: str = "none"  # "balanced": each class weighs the same in the loss, however rare
    sep: str | None = None  # a CSV file's field separator; None: ',' (a tab for .tsv)
    decimal: str = "."  # a CSV file's decimal mark: '.' or ','

    def __post_init__(self) -> None:
        _require(self.sep is None or len(self.sep) == 1, f"sep must be one character, got {self.sep!r}")
        _require(self.decimal in DECIMAL_MARKS, f"decimal must be one of {', '.join(map(repr, DECIMAL_MARKS))}, got {self.decimal!r}")
        _require(self.decimal != self.sep, f"the decimal mark {self.decimal!r} cannot also be the field separator (--sep)")
        _require(
            self.task is None or self.task in TASKS,
            f"task must be one of {', '.join(TASKS)}, got '{self.task}'",
        )
        _require(
            self.class_weight in CLASS_WEIGHTS,
            f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}, got '{self.class_weight}'",
        )
        _require(self.max_levels >= 1, f"max_levels must be at least 1, got {self.max_levels}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0 < value < 0.5, f"{name} must be between 0 and 0.5, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (32,)  # hidden layer widths; () is the linear/logistic model
    max_norm: float = 1.0  # bound on each later-layer column norm: the input penalty cannot be dodged
    neuron_penalty: float = 0.0  # refit: penalty on each hidden unit's outgoing weights, to prune units
    l1_ratio: float = 0.0  # sparse group lasso: share of the penalty on each encoded column (0: group lasso)
    screen_pairs: bool = True  # give pairs that act only together first-layer units before the dense fit (path/interactions.py)

    def __post_init__(self) -> None:
        _require(
            0 <= self.l1_ratio <= 1,
            f"l1_ratio must be between 0 (group lasso) and 1 (lasso on the encoded columns), got {self.l1_ratio}",
        )
        _require(self.neuron_penalty >= 0, f"neuron_penalty must be >= 0, got {self.neuron_penalty}")
        _require(
            all(width > 0 for width in self.hidden),
            f"hidden widths must be positive, got {list(self.hidden)}",
        )
        _require(self.max_norm > 0, f"max_norm must be positive, got {self.max_norm}")


@dataclass(frozen=True)
class TrainConfig:
    """Unpenalised training (the dense start and the refit), early-stopped on validation loss."""

    max_iters: int = 3000
    check_every: int = 5  # iterations between validation checks
    patience: int = 10  # checks without improvement before stopping

    def __post_init__(self) -> None:
        _require(self.max_iters > 0, f"max_iters must be positive, got {self.max_iters}")
        _require(self.check_every > 0, f"check_every must be positive, got {self.check_every}")
        _require(self.patience > 0, f"patience must be positive, got {self.patience}")


@dataclass(frozen=True)
class PathConfig:
    lambda_step: float = 1.05  # base ratio between consecutive lambdas on the way up
    lambda_start: float | None = None  # None: estimated from the data
    max_iters_per_lambda: int = 50
    # a solve's optimality (its gradient mapping relative to lambda) that counts as converged;
    # None: ``default_tol`` for the network's shape
    tol: float | None = None
    min_features: int = 0  # stop the path once this few groups remain
    # groups allowed to leave in one step, as a share of those still in (at least one): the
    # top of the ranking is resolved one group at a time, the long tail of noise in batches
    departure_fraction: float = 0.1
    max_steps: int = 1000
    # most unpenalised iterations that score a new support on the validation rows; the run stops
    # sooner once the validation loss stops improving. A cap that bites leaves the most-shrunk
    # supports half-relaxed and favours the least-shrunk ones (benchmarks/relaxed_bias.py)
    relax_iters: int = 3000

    def __post_init__(self) -> None:
        _require(self.lambda_step > 1, f"lambda_step must be greater than 1, got {self.lambda_step}")
        _require(
            self.lambda_start is None or self.lambda_start > 0,
            f"lambda_start must be positive, got {self.lambda_start}",
        )
        _require(
            self.max_iters_per_lambda > 0,
            f"max_iters_per_lambda must be positive, got {self.max_iters_per_lambda}",
        )
        _require(self.tol is None or self.tol > 0, f"tol must be positive, got {self.tol}")
        _require(self.min_features >= 0, f"min_features must be >= 0, got {self.min_features}")
        _require(self.max_steps > 0, f"max_steps must be positive, got {self.max_steps}")
        _require(
            0 <= self.departure_fraction < 1,
            f"departure_fraction must be in [0, 1), got {self.departure_fraction}",
        )
        _require(self.relax_iters > 0, f"relax_iters must be positive, got {self.relax_iters}")

    def tol_for(self, hidden: tuple[int, ...]) -> float:
        """The tolerance a solve stops at: ``tol``, or by default ``default_tol(hidden)``."""
        return default_tol(hidden) if self.tol is None else self.tol


# --tol's default. Without hidden layers the problem is convex and the measure is the gradient
# mapping at one point, which FISTA drives to zero (within 1% of lambda it agrees with skglm:
# tests/solve/test_reference_skglm.py). With hidden ReLU units the measure is the smallest combination
# of the mappings at the last iterates (solve/stationarity.py), and on the known-answer problems
# it levels off at 2% to 3% of lambda on steps that then run 1,000 iterations and more without
# improving it (benchmarks/convergence_known_answers.py): the rows on the units' kinks and a
# line search that halves there. 5% is where every one of them converges; the path's own
# resolution, its base step between lambdas, is 5% too.
TOL_LINEAR = 0.01
TOL_HIDDEN = 0.05


def default_tol(hidden: tuple[int, ...]) -> float:
    """--tol's default for a network with ``hidden`` layer widths (``TOL_LINEAR``, ``TOL_HIDDEN``)."""
    return TOL_HIDDEN if hidden else TOL_LINEAR


GOALS = ("auto", "minimal", "all-relevant")


@dataclass(frozen=True)
class SelectionConfig:
    rule: str = "1se"  # sparsest step within one standard error of the lowest validation loss
    max_features: int | None = None  # overrides the rule: the least-penalised step with <= K groups
    # with max_features: walk the path's ranking and skip a group correlated above this with one
    # already taken (select/redundancy.py); 1: off, the path's own K survivors
    max_correlation: float = 0.7
    # "minimal": the fewest groups that predict as well as the model can (redundant copies left out);
    # "all-relevant": those and every group later rounds of selection find without them, copies
    # included (select/relevant.py); "auto": the rounds only while a group left out has first-order
    # signal, and none with fdr or max_features (they choose the set their own way)
    goal: str = "auto"
    # K >= 2: score the path's lambdas by K-fold cross-validation; 0: by the validation rows;
    # "auto": cross-validation when the validation rows are few (see crossval.folds_for)
    cv: int | str = 0
    # keep a chosen group only if shuffling it raises the refit model's validation loss by this
    # many standard errors (0: keep the whole step); not applied with max_features
    confirm: float = 3.0
    # select by model-X knockoffs at this false discovery rate instead of the rule (and without confirmation)
    fdr: float | None = None
    # knockoff draws (one path each on the columns and their copies) combined by e-values; one by default:
    # five cost a third of the power at Q = 0.2 in the benchmark (see README, False discovery rate)
    knockoff_draws: int = 1
    # the +1 of knockoff+'s threshold (controls the FDR, and selects nothing below 1 / fdr discoveries);
    # 0: plain knockoff, which controls the modified FDR E[V / (R + 1 / fdr)] (one draw only)
    fdr_offset: int = 1

    def __post_init__(self) -> None:
        _require(self.confirm >= 0, f"confirm must be >= 0, got {self.confirm}")
        _require(self.goal in GOALS, f"goal must be one of {', '.join(GOALS)}, got '{self.goal}'")
        _require(0 < self.max_correlation <= 1, f"max_correlation must be in (0, 1] (1: off), got {self.max_correlation}")
        _require(self.fdr is None or 0 < self.fdr < 1, f"fdr must be in (0, 1), got {self.fdr}")
        _require(self.knockoff_draws >= 1, f"knockoff_draws must be at least 1, got {self.knockoff_draws}")
        _require(
            self.fdr_offset in (0, 1),
            f"fdr_offset must be 1 (knockoff+, controls the FDR) or 0 (knockoff, controls the modified FDR), got {self.fdr_offset}",
        )
        _require(
            self.cv == "auto" or (isinstance(self.cv, int) and (self.cv == 0 or self.cv >= 2)),
            f"cv must be 0 (one validation split), at least 2 folds, or 'auto', got {self.cv!r}",
        )
        _require(
            self.rule in SELECTION_RULES,
            f"rule must be one of {', '.join(SELECTION_RULES)}, got '{self.rule}'",
        )
        _require(
            self.max_features is None or self.max_features > 0,
            f"max_features must be positive, got {self.max_features}",
        )


DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class StreamConfig:
    """Streaming mode for Parquet datasets too big for memory: a mini-batch proximal path."""

    stream: bool | None = None  # True: always stream; None: when the table would not fit memory_budget
    memory_budget: int | None = None  # bytes; None: a quarter of the memory available at start
    batch_size: int | None = None  # rows per optimizer step; None: up to 1024, fewer on a small table (data/stream.py)
    learning_rate: float = 0.01  # SGD step; the prox threshold is lr / (1 - momentum) * lam * sqrt(d_g)
    momentum: float = 0.9
    max_epochs: float = 5.0  # dense fit and refit: most passes over the training rows (early-stopped)
    epochs_per_lambda: float = 1.0  # passes over the training rows at each lambda (may be a fraction)
    max_holdout_rows: int = 100_000  # validation and test rows kept in memory (each); a hashed sample beyond this

    def __post_init__(self) -> None:
        _require(self.memory_budget is None or self.memory_budget > 0, f"memory_budget must be positive, got {self.memory_budget}")
        _require(self.batch_size is None or self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        _require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        _require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        _require(self.max_epochs > 0, f"max_epochs must be positive, got {self.max_epochs}")
        _require(self.epochs_per_lambda > 0, f"epochs_per_lambda must be positive, got {self.epochs_per_lambda}")
        _require(self.max_holdout_rows > 0, f"max_holdout_rows must be positive, got {self.max_holdout_rows}")


@dataclass(frozen=True)
class ImportanceConfig:
    """Importance measures beyond path survival (which is always computed)."""

    permutation_repeats: int = 5  # shuffles per group on the test rows; 0: skip permutation importance
    stability_pairs: int = 0  # B complementary pairs of half-samples; 0: no stability selection
    stability_threshold: float = 0.8  # pi: selection frequency a group needs to count as stable
    stability_q: int | None = None  # groups each half-path selects; None: as many as the chosen model

    def __post_init__(self) -> None:
        _require(self.permutation_repeats >= 0, f"permutation_repeats must be >= 0, got {self.permutation_repeats}")
        _require(self.stability_pairs >= 0, f"stability pairs must be >= 0, got {self.stability_pairs}")
        _require(
            0.5 < self.stability_threshold <= 1,
            f"stability_threshold must be in (0.5, 1], got {self.stability_threshold}",
        )
        _require(
            self.stability_q is None or self.stability_q > 0,
            f"stability_q must be positive, got {self.stability_q}",
        )


def _check_target(config: RunConfig) -> None:
    """What names the target: --target, or with --task survival --time and --event (then ``target`` is the time column).

    A survival target is two columns; the rest of the fit reads one target column, the time column, into
    which the event is folded as each batch is read (``glselect.data.survival``).
    """
    if config.data.task != "survival":
        _require(
            config.time is None and config.event is None,
            "--time and --event name a survival target: add --task survival (or drop them and pass --target)",
        )
        _require(
            config.target is not None,
            "--target is required: name the column to predict (for a survival target: --task survival --time COL --event COL)",
        )
        return
    _require(
        config.time is not None and config.event is not None,
        "--task survival needs --time COL (the follow-up time) and --event COL (1 if the event happened, 0 if censored)",
    )
    _require(config.time != config.event, f"--time and --event name the same column '{config.time}'")
    _require(
        config.target in (None, config.time),
        f"--target '{config.target}' is not used with --task survival: "
        f"the target is --time '{config.time}' and --event '{config.event}'; drop --target",
    )
    _require(
        config.data.class_weight == "none",
        "--class-weight needs a classification target; a survival target has no classes (drop --class-weight)",
    )
    object.__setattr__(config, "target", config.time)  # frozen: set once here, as if given


@dataclass(frozen=True)
class RunConfig:
    table: Path
    # the column to predict; with --task survival it is the time column, which --time names (see __post_init__)
    target: str | None = None
    time: str | None = None  # --task survival: follow-up time (>= 0) of each row
    event: str | None = None  # --task survival: 1/True if the event happened at that time, 0/False if censored
    groups: Path | None = None  # the group-map file given by --groups
    out: Path | None = None  # None: '<table stem>.glselect' next to the table
    force: bool = False  # replace an existing directory that is not a glselect output
    resume: bool = False  # continue from the checkpoint an interrupted run left beside the out dir
    seed: int = 0
    threads: int | None = None  # torch threads; None: one for small problems, all cores for large ones
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    path: PathConfig = field(default_factory=PathConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    importance: ImportanceConfig = field(default_factory=ImportanceConfig)
    device: str = "auto"  # "cuda" when a GPU is present, else "cpu"
    stream: StreamConfig = field(default_factory=StreamConfig)

    def __post_init__(self) -> None:
        _check_target(self)
        if self.path.tol is None:  # resolved here, so summary.json and the messages state the number used
            object.__setattr__(self, "path", dataclasses.replace(self.path, tol=self.path.tol_for(self.model.hidden)))
        _require(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got '{self.device}'")
        _require(self.threads is None or self.threads > 0, f"threads must be positive, got {self.threads}")
        _require(self.seed >= 0, f"seed must be 0 or a positive whole number, got {self.seed}")
        # known before any fitting: a path that stops at min_features can never reach fewer
        _require(
            self.selection.max_features is None or self.selection.max_features >= self.path.min_features,
            f"max_features ({self.selection.max_features}) must be at least min_features ({self.path.min_features})",
        )

    @property
    def is_survival(self) -> bool:
        return self.data.task == "survival"

    @property
    def inputs(self) -> tuple[Path, ...]:
        """The files this run reads."""
        return (self.table,) if self.groups is None else (self.table, self.groups)

    @property
    def out_dir(self) -> Path:
        if self.out is not None:
            return self.out
        stem = self.table.name
        for suffix in (".gz", ".csv", ".tsv", ".parquet", ".pq"):
            stem = stem.removesuffix(suffix)
        return self.table.with_name(f"{stem}.glselect")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``summary.json``."""
        raw = dataclasses.asdict(self)
        raw["table"] = str(self.table)
        raw["groups"] = None if self.groups is None else str(self.groups)
        raw["out"] = str(self.out_dir)
        raw["model"]["hidden"] = list(self.model.hidden)
        for name in ("features", "drop", "categorical"):
            raw["data"][name] = None if raw["data"][name] is None else list(raw["data"][name])
        return raw
