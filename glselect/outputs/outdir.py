"""The out dir's safety: the checks before a fit, the lock while it writes, and the one atomic write.

Every file or folder glselect writes (the out dir, ``report.html``, a predictions table, a path
checkpoint) is built under a temporary sibling and renamed into place, so a reader, or a run
that failed or was killed midway, never leaves something half-written under the real name.
This module needs nothing but the standard library, so every layer can write through it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glselect.errors import GlselectError

OUTPUT_FORMAT = "glselect-output"
LOCK_KIND = "flock"  # marks a lock file written by this lock; one without it is from an older glselect


def is_glselect_output(directory: Path) -> bool:
    """True when ``directory`` holds a ``summary.json`` written by glselect."""
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("format") == OUTPUT_FORMAT


def check_out_dir(out_dir: Path, force: bool, protected: tuple[Path, ...] = ()) -> None:
    """Refuse, before any work is done, an out dir that would destroy something not ours.

    Parameters
    ----------
    protected
        Files the run reads (the table, the group map): even ``force`` never replaces a
        directory that holds them, nor one that holds the working directory.

    Raises
    ------
    GlselectError
        ``out_dir`` is a file, holds a protected path or the working directory, or is a
        non-empty directory that is not a glselect output (without ``force``).
    """
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise GlselectError(f"output path '{out_dir}' exists and is not a directory", hint="choose another --out")
    resolved = out_dir.resolve()
    for kept in (Path.cwd(), *protected):
        if resolved == kept.resolve() or resolved in kept.resolve().parents:
            raise GlselectError(
                f"output directory '{out_dir}' contains '{kept}', which replacing it would delete",
                hint="choose a new directory for --out",
            )
    if force or is_glselect_output(out_dir) or not any(out_dir.iterdir()):
        return
    raise GlselectError(
        f"output directory '{out_dir}' exists and is not a glselect output",
        hint="choose another --out, or pass --force to replace it",
    )


def _remove(path: Path) -> None:
    """Remove a file or a folder tree at ``path``, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_write(target: Path) -> Iterator[Path]:
    """Build ``target``, a file or a folder, at a temporary sibling, then rename it into place.

    The caller writes a file at the yielded path, or makes a folder there and fills it. When the
    block ends normally the result replaces ``target`` in one rename: a reader sees the old
    ``target`` or the new one, never a half-written one. An existing folder is replaced as a whole,
    never merged with the new one (it is put back if the second rename fails). When the block
    raises, the partial build is removed and ``target`` is left as it was.

    Parameters
    ----------
    target
        The final path; its folder must exist.

    Yields
    ------
    Path
        ``.<name>.tmp-<pid>`` beside ``target``, not yet created (a leftover of a killed run of
        the same process id is removed first).

    Raises
    ------
    OSError
        The temporary sibling cannot be written or renamed; callers name the file in their message.
    """
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    _remove(staging)
    try:
        yield staging
        if staging.is_dir() and target.is_dir():
            retired = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(retired)
            try:
                staging.rename(target)
            except BaseException:
                retired.rename(target)  # interrupted between the two renames: put the old result back
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        _remove(staging)


class OutDirLock:
    """The claim of one fit on its out dir: an OS lock (``flock``) on ``.<name>.lock`` beside it.

    Two fits writing one ``--out`` would both report success while the later rename silently
    replaces the earlier result; with the lock the second stops at once with exit 2. The
    operating system releases the lock when its process ends, however it ends, so a killed run
    never blocks the next one. The file names its holder (pid and host) for the message a second
    run prints. Taking the lock also proves, before any work, that the out dir's folder can be
    written. A lock file from an older glselect, which locked by the pid written in it, is
    respected while that pid is alive on this host (or cannot be checked, on another host).
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir.parent / f".{out_dir.name}.lock"
        self._created: list[Path] = []  # folders made for the out dir, removed again if it is never written
        self._fd: int | None = None

    def acquire(self) -> OutDirLock:
        """Take the lock, or raise ``GlselectError`` naming the run that holds it or why it cannot be written."""
        self._make_parents()
        try:
            for _ in range(3):  # again when the holder removed the file as it finished, between open and lock
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    self._refuse(self._holder())
                except BaseException:
                    os.close(fd)
                    raise
                if not self._is_current(fd):
                    os.close(fd)
                    continue
                holder = self._holder()
                if holder and holder.get("lock") != LOCK_KIND and not self._is_dead(holder):
                    os.close(fd)
                    self._refuse(holder)
                self._fd = fd
                owner = {"pid": os.getpid(), "host": socket.gethostname(), "lock": LOCK_KIND}
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(owner).encode("utf-8"))
                return self
        except OSError as err:
            self.release(written=False)
            raise GlselectError(f"cannot write output directory '{self.out_dir}': {err}", hint="choose another --out") from err
        self._drop_created()
        raise GlselectError(f"cannot take the lock file '{self.path}': another run keeps replacing it", hint="choose another --out")

    def release(self, *, written: bool = True) -> None:
        """Give the lock up; without ``written``, also remove the folders made only for the out dir."""
        if self._fd is not None:
            # removed while still held: a run that opened it meanwhile sees it gone and takes a new one
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None
        if not written:
            self._drop_created()

    def _refuse(self, holder: dict[str, Any]) -> None:
        self._drop_created()
        pid, host = holder.get("pid", "?"), holder.get("host", "?")
        raise GlselectError(
            f"output directory '{self.out_dir}' is being written by another glselect run (pid {pid} on {host}; lock file '{self.path}')",
            hint="wait for that run to finish or choose another --out; if no such run exists, delete the lock file",
        )

    def _is_current(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at the lock's path (not one its holder removed on release)."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)

    def _make_parents(self) -> None:
        folder = self.out_dir.parent
        missing = []
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        if not folder.is_dir():
            raise GlselectError(
                f"cannot write output directory '{self.out_dir}': '{folder}' is not a directory", hint="choose another --out"
            )
        for path in reversed(missing):
            try:
                path.mkdir()
            except OSError as err:
                self._drop_created()
                raise GlselectError(f"cannot write output directory '{self.out_dir}': {err}", hint="choose another --out") from err
            self._created.append(path)

    def _holder(self) -> dict[str, Any]:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    @staticmethod
    def _is_dead(holder: dict[str, Any]) -> bool:
        """For an older glselect's lock file: whether the run it names is gone."""
        pid = holder.get("pid")
        if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
            return False  # another host's: cannot be checked from here, assume alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, under another user
        return False

    def _drop_created(self) -> None:
        for path in reversed(self._created):
            try:
                path.rmdir()
            except OSError:
                break  # something else was put there meanwhile: keep it
        self._created = []
