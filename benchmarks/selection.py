"""Known-answer selection benchmark: glselect against LassoNet, a linear lasso and random forests.

    .venv/bin/python benchmarks/selection.py                       # all problems, 3 seeds (33 min, see below)
    .venv/bin/python benchmarks/selection.py --problems xor --seeds 5
    .venv/bin/python benchmarks/selection.py --glselect-args="--rule min" --out benchmarks/results/selection_min.md

Needs `pip install -c constraints.txt lassonet` in the virtual environment (scikit-learn comes with
glselect's `test` extra). The methods and how each one selects and ranks are described in
`benchmarks/methods.py`; glselect runs through its CLI (`--glselect-args` is passed verbatim).

Problems (a fresh table per seed; the column order is shuffled so that no method gains from ties
being broken in table order):
- friedman: Friedman #1, 2,000 rows x 100 uniform columns; true = x0..x4.
- xor: binary label = (x0 > 0) XOR (x1 > 0), 5% of labels flipped, 2,000 rows x 30 standard
  normal columns; true = x0, x1. No column has a linear (first-order) effect.
- grouped: 20 groups of 5 columns, each column its group's latent factor plus noise
  (correlation 0.8 within a group); y = 1.5 z_a + 3 sin(1.5 z_b) + 2 tanh(2 z_c) + noise over 3
  active groups; 2,000 rows. Only glselect is given the group map (`--groups`). Scored at the
  group level for every method: a method selects a group if it selects any of its columns, and
  ranks the groups in the order their first column appears in its ranking.
- make_classification: scikit-learn's generator, 2,000 rows, 5 informative + 5 redundant
  (linear combinations of the informative) + 200 noise columns, shuffle=False so the roles are
  known; true = informative and redundant columns; "noise selected" counts pure-noise columns.
  Since the redundant columns are exact linear combinations of the informative ones, a selector
  that keeps a minimal set (as a sparse penalty does) is scored low on recall by this truth;
  "signal spanned" says how much of the signal its columns carry: the rank of the selected true
  columns over the rank of all true columns (1.0: they span the informative subspace). On the
  other problems the true columns are independent and it equals recall.

- wide (p >> n): 600 rows x 2,000 standard normal columns; y = six linear terms (x0..x5) +
  0.7 (x6^2 - 1) + 0.7 sin(2 x7) + noise; true = x0..x7.
- weak_linear: y = 2 x0 x1 + 0.4 x2 + noise, 2,000 x 50; true = x0, x1, x2 (a weak linear column
  beside a strong interaction).
- grouped_multiclass: 4 classes, 20 groups of 4 correlated columns, class scores from groups
  g0..g3 (two linear, one |z|, one negative linear); scored by group like `grouped`.
- xor_wide: the XOR of `xor` among 500 columns.
- xor_thousands: the same XOR among 2,000 columns, 4,000 rows.
- parity3: label = the parity of the signs of x0, x1, x2 (5% flipped), 4,000 x 30: no pair of
  columns carries any signal, only the three together.
- proxies: y = 2 x0 - 1.5 x1 + 2 sin(1.5 x2) + noise, 2,000 x 46; x3..x5 are x0..x2 plus noise
  (r = 0.8) and carry nothing of their own; true = x0..x2 (a proxy selected is a false positive).
- copies: y = 2 x0 - 1.5 x1 + x2 x3 + noise, 2,000 x 46; x4, x5 are x0, x1 in another unit
  (divided by 2.54); true = all six, the question of `--goal all-relevant` (the default keeps
  one of each pair and names the other its substitute).
The Boruta-style baseline is described in `methods.py`. With 2 loaded cores the wide problem's
glselect fit alone took 50 minutes (load average above 10): run it with `--seeds 1` there.

Scores per method and seed: precision, recall and F1 of the selected set; top-|T| hits (the
share of the |T| best-ranked columns that are true, |T| = number of true columns); average
precision of the full ranking; number selected; noise selected (false positives); seconds
(wall clock; for glselect the whole CLI process, including Python start-up and artifacts).
Run time: 33 minutes on the 2-core machine while other jobs kept it loaded (load average 5 to
10, which also inflates every `seconds` column several times; glselect's 4 s Friedman fit took
25-36 s here); LassoNet and the random-forest permutations take most of it.
Prints one markdown table per problem (mean ± std over seeds), writes it to `--out` and the
per-seed numbers to the same path with the suffix `.json`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from methods import TARGET, Choice, add_run_arguments, select_all, write_results


@dataclass(frozen=True)
class Problem:
    """A generated table with its known answer; `group_of` maps columns to groups when scored by group."""

    frame: pd.DataFrame
    truth: set[str]
    task: str
    group_of: dict[str, str] | None = None


def _table(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Columns named x0.. by their role-bearing index, then put in a random order."""
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame = frame[list(rng.permutation(frame.columns))]
    frame[TARGET] = y
    return frame


def make_friedman(seed: int) -> Problem:
    from glselect._synthetic import make_friedman1

    rng = np.random.default_rng(seed)
    data = make_friedman1(2000, 100, noise=1.0, seed=seed)
    frame = data[list(rng.permutation(data.columns.drop(TARGET)))].assign(**{TARGET: data[TARGET]})
    return Problem(frame, {f"x{j}" for j in range(5)}, "regression")


def _sign_parity(seed: int, n_rows: int, n_columns: int, n_true: int) -> Problem:
    """Binary label = the parity of the signs of x0 .. x{n_true - 1} (XOR for two), 5% flipped."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, n_columns))
    label = np.logical_xor.reduce(X[:, :n_true] > 0, axis=1)
    flipped = rng.random(len(label)) < 0.05
    return Problem(_table(X, (label ^ flipped).astype(int), rng), {f"x{j}" for j in range(n_true)}, "classification")


def make_xor(seed: int) -> Problem:
    return _sign_parity(seed, 2000, 30, 2)


def make_grouped(seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    n_groups, group_size = 20, 5
    latent = rng.standard_normal((2000, n_groups))
    # x = z + 0.5 e gives a within-group correlation of 1 / 1.25 = 0.8
    X = np.repeat(latent, group_size, axis=1) + 0.5 * rng.standard_normal((2000, n_groups * group_size))
    y = 1.5 * latent[:, 0] + 3 * np.sin(1.5 * latent[:, 1]) + 2 * np.tanh(2 * latent[:, 2]) + rng.standard_normal(2000)
    group_of = {f"x{j}": f"g{j // group_size}" for j in range(X.shape[1])}
    return Problem(_table(X, y, rng), {"g0", "g1", "g2"}, "regression", group_of)


def make_informative_redundant(seed: int) -> Problem:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2000, n_features=210, n_informative=5, n_redundant=5, n_repeated=0, shuffle=False, random_state=seed
    )
    # shuffle=False puts the 5 informative columns first, then the 5 redundant ones
    return Problem(_table(X, y, np.random.default_rng(seed)), {f"x{j}" for j in range(10)}, "classification")


def make_wide(seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((600, 2000))
    coef = np.array([1.0, -0.9, 0.8, -0.7, 0.6, 0.5])
    y = X[:, :6] @ coef + 0.7 * (X[:, 6] ** 2 - 1) + 0.7 * np.sin(2 * X[:, 7]) + rng.standard_normal(600)
    return Problem(_table(X, y, rng), {f"x{j}" for j in range(8)}, "regression")


def make_weak_linear(seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2000, 50))
    y = 2.0 * X[:, 0] * X[:, 1] + 0.4 * X[:, 2] + rng.standard_normal(2000)
    return Problem(_table(X, y, rng), {"x0", "x1", "x2"}, "regression")


def make_grouped_multiclass(seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    n_groups, group_size = 20, 4
    latent = rng.standard_normal((2000, n_groups))
    X = np.repeat(latent, group_size, axis=1) + 0.5 * rng.standard_normal((2000, n_groups * group_size))
    # four active groups, each moving a different class's score
    scores = np.stack([1.5 * latent[:, 0], 1.5 * latent[:, 1], 1.5 * np.abs(latent[:, 2]) - 1.2, -1.5 * latent[:, 3]], axis=1)
    label = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    group_of = {f"x{j}": f"g{j // group_size}" for j in range(X.shape[1])}
    return Problem(_table(X, label, rng), {"g0", "g1", "g2", "g3"}, "classification", group_of)


def make_xor_wide(seed: int) -> Problem:
    return _sign_parity(seed, 2000, 500, 2)


def make_xor_thousands(seed: int) -> Problem:
    return _sign_parity(seed, 4000, 2000, 2)


def make_parity3(seed: int) -> Problem:
    return _sign_parity(seed, 4000, 30, 3)


def make_proxies(seed: int) -> Problem:
    """y from x0, x1, x2; each has a stand-in p_j = x_j + noise (r = 0.8) with no signal of its own; 40 noise columns."""
    rng = np.random.default_rng(seed)
    n = 2000
    X = rng.standard_normal((n, 46))
    X[:, 3:6] = X[:, :3] + 0.75 * rng.standard_normal((n, 3))  # x3..x5: the proxies of x0..x2
    y = 2 * X[:, 0] - 1.5 * X[:, 1] + 2 * np.sin(1.5 * X[:, 2]) + rng.standard_normal(n)
    return Problem(_table(X, y, rng), {"x0", "x1", "x2"}, "regression")


def make_copies(seed: int) -> Problem:
    """y from x0..x3; x4 and x5 are exact copies of x0 and x1 (another unit: x / 2.54); 40 noise columns."""
    rng = np.random.default_rng(seed)
    n = 2000
    X = rng.standard_normal((n, 46))
    X[:, 4:6] = X[:, :2] / 2.54
    y = 2 * X[:, 0] - 1.5 * X[:, 1] + X[:, 2] * X[:, 3] + rng.standard_normal(n)
    return Problem(_table(X, y, rng), {f"x{j}" for j in range(6)}, "regression")


PROBLEMS = {
    "friedman": ("Friedman #1, 2,000 x 100; true x0..x4", make_friedman),
    "xor": ("XOR of two signs, binary, 2,000 x 30; true x0, x1", make_xor),
    "grouped": ("20 correlated groups of 5, 3 active, 2,000 x 100; scored by group", make_grouped),
    "make_classification": (
        "make_classification, 2,000 x 210: 5 informative + 5 redundant + 200 noise; true = the 10",
        make_informative_redundant,
    ),
    "wide": ("p >> n: 600 x 2,000, 6 linear + a U-shape + a wave; true x0..x7", make_wide),
    "weak_linear": ("weak linear x2 (0.4) beside a strong interaction 2 x0 x1, 2,000 x 50; true x0..x2", make_weak_linear),
    "grouped_multiclass": ("4 classes, 20 correlated groups of 4, 4 active, 2,000 x 80; scored by group", make_grouped_multiclass),
    "xor_wide": ("XOR of two signs among 500 columns, binary, 2,000 x 500; true x0, x1", make_xor_wide),
    "xor_thousands": ("XOR of two signs among 2,000 columns, binary, 4,000 x 2,000; true x0, x1", make_xor_thousands),
    "parity3": ("3-way parity of signs, binary, 4,000 x 30; true x0, x1, x2", make_parity3),
    "proxies": ("3 true columns, each with a proxy (r = 0.8, no signal of its own), 2,000 x 46; true x0..x2", make_proxies),
    "copies": ("4 true columns, 2 of them with an exact copy, 2,000 x 46; true = the 6 (ask --goal all-relevant)", make_copies),
}


def _to_groups(names: list[str], group_of: dict[str, str]) -> list[str]:
    """Groups in order of their first column in `names` (a group counts once)."""
    return list(dict.fromkeys(group_of[name] for name in names))


def score(choice: Choice, problem: Problem) -> dict[str, float]:
    """Selected-set and ranking scores of one choice against the truth."""
    selected, ranking = choice.selected, choice.ranking
    if problem.group_of is not None:
        selected, ranking = _to_groups(selected, problem.group_of), _to_groups(ranking, problem.group_of)
    truth = problem.truth
    hits = len(set(selected) & truth)
    if problem.group_of is None:
        true_columns = problem.frame[sorted(truth)].to_numpy()
        kept = problem.frame[sorted(set(selected) & truth)].to_numpy()
        rank = np.linalg.matrix_rank
        spanned = rank(kept, tol=1e-6) / rank(true_columns, tol=1e-6) if kept.size else 0.0
    else:
        spanned = hits / len(truth)  # groups are scored as units
    precision = hits / len(selected) if selected else 0.0
    recall = hits / len(truth)
    found = [rank for rank, name in enumerate(ranking, start=1) if name in truth]
    # precision at the rank of each true item, averaged; every item is ranked, so recall reaches 1
    average_precision = statistics.mean(k / rank for k, rank in enumerate(found, start=1))
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if hits else 0.0,
        "top_hits": len(set(ranking[: len(truth)]) & truth) / len(truth),
        "spanned": spanned,
        "average_precision": average_precision,
        "n_selected": len(selected),
        "noise_selected": len(selected) - hits,
        "seconds": choice.seconds,
    }


COLUMNS = [
    ("precision", "precision", 2),
    ("recall", "recall", 2),
    ("f1", "F1", 2),
    ("top_hits", "top-\\|T\\| hits", 2),
    ("spanned", "signal spanned", 2),
    ("average_precision", "avg precision", 2),
    ("n_selected", "selected", 1),
    ("noise_selected", "noise selected", 1),
    ("seconds", "seconds", 1),
]


def summary_table(rows: list[dict], methods: list[str]) -> str:
    """Markdown table: one line per method, mean ± std over seeds of every score."""
    lines = ["| method | " + " | ".join(header for _, header, _ in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for method in methods:
        mine = [row for row in rows if row["method"] == method]
        if not mine:
            continue
        cells = []
        for key, _, digits in COLUMNS:
            values = [row[key] for row in mine]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "selection.md")
    args = parser.parse_args()

    rows: list[dict] = []
    sections = [
        f"glselect extra arguments: `{args.glselect_args or '(none: defaults)'}`; seeds 0..{args.seeds - 1}; mean ± std over seeds\n"
    ]
    print(sections[0])
    with tempfile.TemporaryDirectory() as folder:
        for problem_name in args.problems:
            title, make = PROBLEMS[problem_name]
            problem_rows = []
            for seed in range(args.seeds):
                problem = make(seed)
                workdir = Path(folder) / f"{problem_name}_{seed}"
                workdir.mkdir()
                choices = select_all(problem.frame, problem.task, seed, workdir, args.glselect_args, problem.group_of, args.methods)
                for method, choice in choices.items():
                    row = {
                        "problem": problem_name,
                        "seed": seed,
                        "method": method,
                        **score(choice, problem),
                        "selected": choice.selected,
                        "top_ranked": choice.ranking[:20],
                    }
                    problem_rows.append(row)
                    print(
                        f"  {problem_name} seed {seed} {method}: F1 {row['f1']:.2f}, top hits {row['top_hits']:.2f}, "
                        f"{row['n_selected']} selected, {row['seconds']:.1f} s",
                        flush=True,
                    )
            rows += problem_rows
            section = f"### {title}\n\n{summary_table(problem_rows, args.methods)}\n"
            sections.append(section)
            print("\n" + section, flush=True)
    write_results(args.out, sections, args.glselect_args, rows)


if __name__ == "__main__":
    main()
