"""The mistakes a fit can report from the table's header alone, before torch loads (which takes seconds).

A missing table file, a missing group map and a misspelt ``--target`` are found here, with the
messages the fit itself would give, so the user waits for pandas (about a second) instead of torch.
The check only refuses what it is sure of: a target absent from the header however it is split
(commas, semicolons, tabs or pipes). Anything it cannot tell (a UTF-16 file, a Parquet directory)
is left to the fit, which reads the whole table.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from glselect.config import RunConfig
from glselect.data.formats import CSV_SUFFIXES, DELIMITERS, ENCODINGS, PARQUET_SUFFIXES
from glselect.data.names import target_not_found
from glselect.errors import GlselectError

UTF8_BOM = b"\xef\xbb\xbf"


def _first_line(path: Path) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as file:
        return file.readline()


def _csv_headers(path: Path, delimiters: tuple[str, ...]) -> list[list[str]] | None:
    """The header's column names as each delimiter splits it; None when the header cannot be read here."""
    try:
        raw = _first_line(path)
    except (OSError, EOFError):
        return None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: left to the reader
        return None
    raw = raw.removeprefix(UTF8_BOM).rstrip(b"\r\n")
    if not raw.strip():  # an empty file or header: the reader words it
        return None
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    if text.count('"') % 2:  # a quoted name running over the line: left to the reader
        return None
    try:
        return [next(csv.reader([text], delimiter=delimiter), []) for delimiter in delimiters]
    except csv.Error:  # e.g. a carriage return inside a name: the reader words it
        return None


def _parquet_header(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # unreadable here: the reader says why, in its words
        return None


def check_header(config: RunConfig) -> None:
    """Refuse, before torch loads, a table file that does not exist, a group map that does not exist or does
    not parse, and a ``--target`` that is not a column of the table, with the messages the fit gives.

    Raises
    ------
    GlselectError
        One of those, as ``glselect.data`` words it.
    """
    path = config.table
    if not path.exists():
        raise GlselectError(f"table file '{path}' does not exist")
    if config.groups is not None:
        from glselect.data.io import read_group_map

        read_group_map(config.groups)
    if config.target is None or config.is_survival or path.is_dir():
        return
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        header = _parquet_header(path)
        headers = None if header is None else [header]
    elif name.endswith(CSV_SUFFIXES):
        delimiter = "\t" if name.endswith(".tsv") else ","
        named = [config.data.sep] if config.data.sep else []  # a separator the command line names (one character: DataConfig checks)
        delimiters = tuple(dict.fromkeys([delimiter, *named, *DELIMITERS]))
        headers = _csv_headers(path, delimiters)
    else:
        return
    if not headers or any(config.target in header for header in headers):
        return
    raise target_not_found(config.target, headers[0], str(path))
