"""Every example in README.md and docs/*.md that runs glselect is run here (convention: docs/README.md).

```bash blocks run with ``bash -e``, ```python blocks with this Python, in order, one fresh
directory per page holding a copy of sample_data/ and ``.venv/bin/{glselect,python}``. The
README runs first: its quick start writes sample_data/friedman.glselect, which every other page
finds in place (as after ``make run``). A block whose first line is ``# exit: N`` must end with
status N; every other block must succeed.

Each ``glselect`` or ``python`` the examples start would spend seconds importing torch, pandas
and scikit-learn, most of the docs' cost. So the shims hand their command line, working
directory, environment and stdin/stdout/stderr to a fork server (``serve`` below) that has
imported them once: each command runs in a fresh forked process, through ``python -m glselect``'s
own entry point, and its exit status comes back to the shim. Set GLSELECT_DOCS_NO_FORK=1 to run
every command as a plain new process instead (slower, same results).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from glselect.outputs.report import top_features_table

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted(path for path in (ROOT / "docs").glob("*.md"))]
RUN = {"bash", "python"}
NOT_RUN = {"text", "csv", "json"}
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"#\s*exit:\s*(\d+)")
QUICK_START_OUT = Path("sample_data") / "friedman.glselect"


@dataclass(frozen=True)
class Block:
    page: str
    number: int  # 1-based among the page's fenced blocks
    language: str
    code: str

    @property
    def expected_exit(self) -> int:
        first = self.code.lstrip().splitlines()[0] if self.code.strip() else ""
        match = EXIT.match(first.strip())
        return int(match.group(1)) if match else 0

    @property
    def runs(self) -> bool:
        # a python block that never touches glselect documents something else (there is none today)
        return self.language == "bash" or (self.language == "python" and "glselect" in self.code)

    def describe(self) -> str:
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        return f"{self.page}, block {self.number} ({self.language}): {first.strip()[:100]}"


def blocks(page: Path) -> list[Block]:
    name = str(page.relative_to(ROOT))
    return [
        Block(name, number, match.group(1), match.group(2))
        for number, match in enumerate(FENCE.finditer(page.read_text(encoding="utf-8")), start=1)
    ]


# the shim a fork server runs behind: send argv, cwd, env and fds 0-2, exit with the status sent back
CLIENT = """import json, os, socket, sys
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect({socket!r})
request = json.dumps({{"kind": {kind!r}, "argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(connection, [request], [0, 1, 2])
connection.shutdown(socket.SHUT_WR)
reply = b""
while chunk := connection.recv(64):
    reply += chunk
sys.exit(int(reply))
"""


def make_workdir(directory: Path, fitted: Path | None, server: str | None) -> dict[str, str]:
    """A directory as after ``make run``: sample_data/ (with the quick start's out dir when
    ``fitted`` is given) and .venv/bin/{glselect,python} running this checkout."""
    shutil.copytree(ROOT / "sample_data", directory / "sample_data", ignore=shutil.ignore_patterns("*.glselect"))
    if fitted is not None:
        shutil.copytree(fitted, directory / QUICK_START_OUT)
    bin_dir = directory / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, plain in (("python", []), ("glselect", ["-m", "glselect"])):
        shim = bin_dir / name
        if server is None:
            shim.write_text("#!/bin/sh\n" + " ".join(f'"{part}"' for part in [sys.executable, *plain]) + ' "$@"\n')
        else:
            shim.write_text(f"#!{sys.executable} -S\n" + CLIENT.format(socket=server, kind=name))
        shim.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        PYTHONHASHSEED="0",
        COLUMNS="100",
    )
    return env


def run_block(block: Block, directory: Path, env: dict[str, str]) -> None:
    script = directory / f".block{block.number}.{'sh' if block.language == 'bash' else 'py'}"
    script.write_text(block.code, encoding="utf-8")
    command = ["bash", "-e", script.name] if block.language == "bash" else [str(directory / ".venv" / "bin" / "python"), script.name]
    done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != block.expected_exit:
        pytest.fail(
            f"{block.describe()}\nexited {done.returncode}, the docs say {block.expected_exit}\n"
            f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}",
            pytrace=False,
        )


def run_page(page: Path, directory: Path, fitted: Path | None, server: str | None) -> None:
    env = make_workdir(directory, fitted, server)
    for block in blocks(page):
        if block.runs:
            run_block(block, directory, env)


@pytest.fixture(scope="module")
def server() -> Iterator[str | None]:
    """The fork server's socket path, or None to run each command as a new process."""
    if os.environ.get("GLSELECT_DOCS_NO_FORK") or not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        yield None
        return
    folder = tempfile.mkdtemp(prefix="glselect-docs-")  # short: a socket path has a ~100-byte limit
    path = os.path.join(folder, "server")
    process = subprocess.Popen([sys.executable, __file__, path], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(path):
            assert process.poll() is None, "the docs fork server did not start"
            assert time.monotonic() < deadline, "the docs fork server took over 2 minutes to start"
            time.sleep(0.05)
        yield path
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory, server: str | None) -> Path:
    """The README's examples run; returns the directory they ran in (its quick start's out dir inside)."""
    directory = tmp_path_factory.mktemp("README")
    run_page(ROOT / "README.md", directory, fitted=None, server=server)
    return directory


def test_every_block_is_run_or_marked_not_run() -> None:
    """A block in a language the convention does not name (```sh, a bare ```) would silently go untested."""
    strays = [block.describe() for page in PAGES for block in blocks(page) if block.language not in RUN | NOT_RUN]
    assert not strays, "fence these as ```bash (run) or ```text (not run):\n" + "\n".join(strays)
    runnable = [block for page in PAGES for block in blocks(page) if block.runs]
    assert any(block.page == "README.md" for block in runnable)


def test_readme_examples(quick_start: Path) -> None:
    out = quick_start / QUICK_START_OUT
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selected_groups"] == ["interaction", "x2", "x3", "x4"]  # the README's "right answer"
    # "every resolved setting": the thread count and device the fit chose (config keeps null/auto)
    assert summary["config"]["threads"] is None
    assert summary["resolved"]["threads"] >= 1 and summary["resolved"]["device"] == "cpu"
    assert (quick_start / "predictions.csv").exists()


def test_readme_group_column_statement(quick_start: Path) -> None:
    """README: the printed table's group column is blank for a column that is its own group and left
    out when every row shown is one; importances.csv always holds a group (the column's own name)."""
    features = pd.read_csv(quick_start / QUICK_START_OUT / "importances.csv", keep_default_na=False)
    headers = lambda top: [column.header for column in top_features_table(features, top).columns]  # noqa: E731
    assert features.loc[0, "feature"] == features.loc[0, "group"] == "x3"  # x3 is its own group and ranked first
    assert "group" not in headers(1)
    assert "group" in headers(7)
    assert (features["group"] != "").all()
    # an ignored column has no group: its blank cell is no reason to show the column, nor "nan" when shown
    ignored = {**features.iloc[-1].to_dict(), "feature": "id", "group": "", "kind": "ignored", "rank": len(features) + 1}
    with_ignored = pd.concat([features, pd.DataFrame([ignored])], ignore_index=True)
    for table in (with_ignored, with_ignored.replace({"group": {"": None}})):
        own_groups = table[table["feature"].isin(["x3", "x2", "x4", "id"])].reset_index(drop=True)
        assert "group" not in [column.header for column in top_features_table(own_groups, 4).columns]
        cells = list(top_features_table(table, len(table)).columns[2].cells)
        assert cells[-1] == "" and "nan" not in cells


LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_resolve() -> None:
    """The README's reference moved to docs/: every relative link must reach a file and a heading."""
    broken = []
    for page in PAGES:
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            file, _, anchor = target.partition("#")
            linked = (page.parent / file).resolve() if file else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", FENCE.sub("", linked.read_text(encoding="utf-8")), re.MULTILINE)
                if anchor not in {slug(heading) for heading in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


DOCS_WITH_EXAMPLES = [page for page in PAGES[1:] if any(block.runs for block in blocks(page))]


@pytest.mark.parametrize("page", DOCS_WITH_EXAMPLES, ids=lambda page: str(page.relative_to(ROOT)))
def test_docs_page_examples(page: Path, quick_start: Path, tmp_path: Path, server: str | None) -> None:
    run_page(page, tmp_path, fitted=quick_start / QUICK_START_OUT, server=server)


# ----- the fork server ------------------------------------------------------------------------
def _run_command(kind: str, argv: list[str]) -> int:
    """In the forked child: what ``python -m glselect ARGV`` or ``python ARGV`` would do; the exit status."""
    import runpy

    try:
        if kind == "glselect":
            sys.argv = ["glselect", *argv]
            runpy.run_module("glselect", run_name="__main__", alter_sys=True)
        elif not argv or (argv[0].startswith("-") and argv[0] != "-c"):  # python -m ..., python -i: the real interpreter
            os.execv(sys.executable, [sys.executable, *argv])
        elif argv[:1] == ["-c"]:
            sys.argv = ["-c", *argv[2:]]
            sys.path.insert(0, "")
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
        return 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1


def serve(path: str) -> None:
    """Import what the examples use once, then fork a child per command (see the module docstring)."""
    import atexit

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import sklearn.linear_model
    import sklearn.model_selection
    import sklearn.pipeline  # noqa: F401

    import glselect.cli.app
    import glselect.outputs.artifacts
    import glselect.outputs.predict
    import glselect.outputs.report
    import glselect.pipeline  # noqa: F401

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(16)
    os.rename(path + ".tmp", path)  # the path appears only once the server listens
    waiting: dict[int, socket.socket] = {}  # child pid -> the shim waiting for its status
    commands: dict[int, list[str]] = {}
    parent = os.getppid()
    while os.getppid() == parent:  # the test run that started it is gone (killed): stop too
        if select.select([listener], [], [], 0.05)[0]:
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
            while chunk := connection.recv(1 << 20):
                message += chunk
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                listener.close()
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                    os.close(fd)
                os.chdir(request["cwd"])
                os.environ.clear()
                os.environ.update(request["env"])
                status = _run_command(request["kind"], request["argv"])
                atexit._run_exitfuncs()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status & 0xFF)
            for fd in fds:
                os.close(fd)
            waiting[pid] = connection
            commands[pid] = [request["kind"], *request["argv"]]
        while waiting:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                break
            command = " ".join(commands.pop(pid))
            if log := os.environ.get("GLSELECT_DOCS_CPU_LOG"):  # where the docs' CPU time goes
                with open(log, "a") as out:
                    out.write(f"{usage.ru_utime + usage.ru_stime:7.2f} s  {command[:120]}\n")
            code = os.waitstatus_to_exitcode(status)
            shim = waiting.pop(pid)
            shim.sendall(str(code if code >= 0 else 128 - code).encode())
            shim.close()  # the shim reads its status up to the end of the stream


if __name__ == "__main__":
    serve(sys.argv[1])
