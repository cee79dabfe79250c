"""The shape of the code, measured: what issue-style architecture claims are checked against.

    .venv/bin/python benchmarks/code_shape.py            # this checkout
    .venv/bin/python benchmarks/code_shape.py --ref b0c9bb2   # any commit, read from git

Prints lines per layer, the five biggest modules, the longest parameter lists (outside the CLI's
commands and the selector's ``__init__``, which take one parameter per option by design),
``fit_dataset``'s length and branches, the task-string comparisons (``task == "..."``), and the
footprint of one existing part of each kind: the modules whose code (names and string constants,
not docstrings or comments) mentions it. A part written in one place has a footprint of its own
file plus the lines that list it; a part wired by hand shows up across the layers. It is a proxy
for "the files a new one needs", read from the code rather than estimated.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["cli", "pipeline", "outputs", "select", "path", "solve", "model", "data"]
TASK_TEST = re.compile(r"""task\s*(==|!=|in)\s*[("']""")
# one existing part of each kind, by what its code is called: the sparse group lasso (a penalty),
# Cox (a datafit), stability selection (a selection stage), Parquet (an input format),
# importances.csv (an output file)
FOOTPRINTS = {
    "penalty (sparse group lasso)": re.compile(r"l1_ratio|sparse_?group|SparseGroup", re.IGNORECASE),
    "datafit (Cox)": re.compile(r"^survival$|cox", re.IGNORECASE),
    "selection stage (stability)": re.compile(r"stability", re.IGNORECASE),
    "input format (Parquet)": re.compile(r"parquet", re.IGNORECASE),
    "output file (importances.csv)": re.compile(r"importances\.csv|importances_csv|IMPORTANCES"),
}


def sources(ref: str | None) -> dict[str, str]:
    """Every module under glselect/ at ``ref`` (None: the work tree), by path."""
    if ref is None:
        return {str(path.relative_to(ROOT)): path.read_text() for path in sorted((ROOT / "glselect").rglob("*.py"))}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "glselect"], capture_output=True, text=True, cwd=ROOT, check=True)
    return {
        name: subprocess.run(["git", "show", f"{ref}:{name}"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
        for name in names.stdout.split()
        if name.endswith(".py")
    }


def layer_of(path: str) -> str:
    parts = Path(path).parts
    name = parts[1].removesuffix(".py") if len(parts) > 1 else ""
    return name if name in LAYERS else "other"


def parameter_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    arguments = node.args
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    return len([name for name in names if name not in ("self", "cls")])


def code_words(tree: ast.AST) -> list[str]:
    """The names and string constants of a module's code, without its docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            words.append(node.name)
        elif isinstance(node, (ast.arg, ast.keyword)) and node.arg:
            words.append(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
    return words


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", help="a git commit to measure instead of the work tree")
    args = parser.parse_args()
    modules = sources(args.ref)
    per_layer: Counter[str] = Counter()
    signatures = []
    task_tests = []
    footprints: dict[str, set[str]] = {kind: set() for kind in FOOTPRINTS}
    for path, text in modules.items():
        words = code_words(ast.parse(text))
        for kind, pattern in FOOTPRINTS.items():
            if any(pattern.search(word) for word in words):
                footprints[kind].add(path.removeprefix("glselect/"))
        per_layer[layer_of(path)] += len(text.splitlines())
        task_tests += [f"{path}:{number}" for number, line in enumerate(text.splitlines(), 1) if TASK_TEST.search(line)]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_cli = path.startswith("glselect/cli/")
                is_selector_init = path == "glselect/sklearn.py" and node.name == "__init__"
                if not in_cli and not is_selector_init:
                    signatures.append((parameter_count(node), f"{path}:{node.name}"))
                if node.name == "fit_dataset":
                    ifs = sum(isinstance(inner, ast.If) for inner in ast.walk(node))
                    conditionals = sum(isinstance(inner, ast.IfExp) for inner in ast.walk(node))
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    print(f"fit_dataset: {length} lines, {ifs} if (elif counted), {conditionals} conditional expressions ({path})")
    print(
        "lines per layer:", ", ".join(f"{layer} {per_layer[layer]}" for layer in [*LAYERS, "other"]), f"(total {sum(per_layer.values())})"
    )
    biggest = sorted(((len(text.splitlines()), path) for path, text in modules.items()), reverse=True)[:5]
    print("biggest modules:", ", ".join(f"{path} {n}" for n, path in biggest))
    print("longest parameter lists:", ", ".join(f"{name} {n}" for n, name in sorted(signatures, reverse=True)[:6]))
    print(f"task-string comparisons: {len(task_tests)} in {len({t.split(':')[0] for t in task_tests})} files")
    for kind, files in footprints.items():
        print(f"footprint of a {kind}: {len(files)} modules ({', '.join(sorted(files))})")


if __name__ == "__main__":
    main()
