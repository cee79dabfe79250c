"""Read tables (CSV or Parquet, by suffix) and group-map files.

pandas/pyarrow failures are turned into ``GlselectError`` here, where the file name is known.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from glselect.errors import GlselectError
from glselect.outputs.outdir import atomic_write

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")

# a number written with thousands separators ("4,676.88"): spreadsheets export these, quoted, into CSV files
THOUSANDS_NUMBER = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"
PLAIN_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame (``read_arrow_table``, then pandas)."""
    # dates become datetime64, so encoding sees a date column rather than text to one-hot
    return read_arrow_table(path).to_pandas(date_as_object=False)


def read_arrow_table(path: Path) -> pa.Table:
    """Read a CSV or Parquet file into an Arrow table.

    Parameters
    ----------
    path
        A ``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet`` or ``.pq`` file.

    Returns
    -------
    pyarrow.Table
        One column per table column, in file order.

    Raises
    ------
    GlselectError
        The file is missing, of an unknown kind, unreadable, empty, or has duplicate column names.
    """
    if not path.exists():
        raise GlselectError(f"table file '{path}' does not exist")
    if path.is_dir():
        raise GlselectError(f"table '{path}' is a directory, expected a CSV or Parquet file")
    suffix = _suffix(path)
    try:
        if suffix in CSV_SUFFIXES:
            delimiter = "\t" if suffix == ".tsv" else ","
            table = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(delimiter=delimiter))
            _check_delimiter(path, table.column_names, delimiter)
            table = numbers_with_thousands_separators(table)
        elif suffix in PARQUET_SUFFIXES:
            table = pq.read_table(path)
        else:
            raise GlselectError(
                f"cannot tell the format of '{path}' from its suffix '{suffix}'",
                hint="name the file *.csv, *.tsv or *.parquet",
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = _delimiter_hint(path, _header_line(path)) if suffix in CSV_SUFFIXES else None
        raise GlselectError(f"cannot read table '{path}': {detail}", hint=hint) from err
    duplicates = sorted(name for name, count in Counter(table.column_names).items() if count > 1)
    if duplicates:
        raise GlselectError(
            f"table '{path}' has duplicate column names: {', '.join(map(repr, duplicates))}",
            hint="give every column a unique name",
        )
    if table.num_rows == 0:
        raise GlselectError(f"table '{path}' has no data rows")
    return table


def _header_line(path: Path) -> str:
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as file:
            return file.readline()
    except OSError:
        return ""


def _delimiter_hint(path: Path, header: str) -> str | None:
    """What to do when a CSV file's header is split by some other character than ',' (or tabs for .tsv)."""
    counts = {char: header.count(char) for char in OTHER_DELIMITERS if char != ("\t" if path.name.lower().endswith(".tsv") else "")}
    char = max(counts, key=counts.get) if counts else None
    if char is None or counts[char] == 0 or counts[char] <= header.count(","):
        return None
    return (
        f"the header looks separated by {OTHER_DELIMITERS[char]}, but glselect reads comma-separated .csv and tab-separated .tsv files; "
        f"convert it, e.g. pandas: read_csv('{path.name}', sep='{char.encode('unicode_escape').decode()}').to_csv('fixed.csv', index=False)"
        + (" (with decimal commas add decimal=',')" if char == ";" else "")
    )


def _check_delimiter(path: Path, columns: list[str], delimiter: str) -> None:
    """A table read as one column whose name holds another separator was split by the wrong character."""
    if len(columns) != 1:
        return
    hint = _delimiter_hint(path, columns[0])
    if hint is not None:
        raise GlselectError(f"table '{path}' was read as a single column named {columns[0][:60]!r}", hint=hint)


def numbers_with_thousands_separators(table: pa.Table) -> pa.Table:
    """Text columns whose every present value is a number, some written with thousands separators
    ("4,676.88"), as float64 columns; empty cells become missing. Only a strict pattern converts
    (groups of three digits after each comma), so "4,5" or "1,2,3" stay text."""
    for index, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        values = pc.utf8_trim_whitespace(table.column(index))
        with_separators = pc.match_substring_regex(values, THOUSANDS_NUMBER)
        if not pc.any(with_separators).as_py():
            continue
        empty = pc.equal(values, "")
        number = pc.or_(pc.or_(with_separators, pc.match_substring_regex(values, PLAIN_NUMBER)), empty)
        if not pc.all(number).as_py():  # nulls are skipped: a missing cell does not stop the conversion
            continue
        plain = pc.if_else(empty, pa.scalar(None, pa.string()), pc.replace_substring(values, ",", ""))
        table = table.set_column(index, field.name, pc.cast(plain, pa.float64()))
    return table


def parse_group_map(text: str, source: str = "<group map>") -> dict[str, str]:
    """Parse a ``feature,group`` CSV text into a mapping from column name to group name.

    Raises
    ------
    GlselectError
        The header is not ``feature,group``, a row is malformed or empty, or a feature is listed twice.
    """
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise GlselectError(f"group map '{source}' is empty", hint="write a header 'feature,group'")
    header = [cell.strip() for cell in rows[0]]
    if header != ["feature", "group"]:
        raise GlselectError(
            f"group map '{source}' must start with the header 'feature,group', found '{','.join(rows[0])}'"
        )
    mapping: dict[str, str] = {}
    for line_number, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise GlselectError(
                f"group map '{source}' line {line_number}: expected 'feature,group', found '{','.join(row)}'"
            )
        feature, group = row[0].strip(), row[1].strip()
        if feature in mapping:
            raise GlselectError(
                f"group map '{source}' line {line_number}: column '{feature}' is listed more than once",
                hint="each column belongs to exactly one group",
            )
        mapping[feature] = group
    return mapping


def format_group_map(mapping: dict[str, str]) -> str:
    """The CSV text that ``parse_group_map`` reads back into ``mapping``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["feature", "group"])
    writer.writerows(mapping.items())
    return buffer.getvalue()


def parse_json_group_map(text: str, source: str = "<group map>") -> dict[str, str]:
    """Parse ``{"group": ["column or pattern", ...], ...}`` into ``{column or pattern: group}``.

    Raises
    ------
    GlselectError
        Not JSON, not an object of lists of names, an empty group, or a name in two groups.
    """
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise GlselectError(f"group map '{source}' is not valid JSON: {err}") from err
    if not isinstance(raw, dict) or not raw:
        raise GlselectError(
            f"group map '{source}' must be a non-empty JSON object of groups",
            hint='write it like {"group": ["column", "prefix_*"]}',
        )
    mapping: dict[str, str] = {}
    for group, members in raw.items():
        if not isinstance(members, list) or not all(isinstance(m, str) and m.strip() for m in members):
            raise GlselectError(f"group map '{source}': group '{group}' must be a list of column names")
        if not members:
            raise GlselectError(f"group map '{source}': group '{group}' is empty")
        for member in members:
            member = member.strip()
            if member in mapping and mapping[member] != group:
                raise GlselectError(
                    f"group map '{source}': column '{member}' is in two groups, '{mapping[member]}' and '{group}'",
                    hint="each column belongs to exactly one group",
                )
            mapping[member] = group
    return mapping


def read_group_map(path: Path) -> dict[str, str]:
    """Read a group map: a ``feature,group`` CSV file, or a JSON object of groups (``.json``).

    Entries may be column names or glob patterns (``sensor_*``); ``groups.py`` resolves them.
    """
    if not path.exists():
        raise GlselectError(f"group map file '{path}' does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise GlselectError(f"cannot read group map '{path}': {err}") from err
    if path.suffix.lower() == ".json":
        return parse_json_group_map(text, source=str(path))
    return parse_group_map(text, source=str(path))


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV or Parquet (by suffix), through a temporary file so a reader never sees half of it.

    Raises
    ------
    GlselectError
        The suffix is not a table format, or the file cannot be written.
    """
    suffix = _suffix(path)
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise GlselectError(f"cannot tell the format of '{path}' from its suffix '{suffix}'", hint="name the file *.csv or *.parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as staging:
            if suffix in PARQUET_SUFFIXES:
                df.to_parquet(staging, index=False)
            else:
                df.to_csv(staging, index=False, sep="\t" if suffix == ".tsv" else ",", compression="gzip" if suffix == ".csv.gz" else None)
    except OSError as err:
        raise GlselectError(f"cannot write '{path}': {err}") from err
