"""Read tables (CSV or Parquet, by suffix) and group-map files.

pandas/pyarrow failures are turned into ``GlselectError`` here, where the file name is known.

A CSV file is read as spreadsheets save it: in UTF-8 (with or without a byte order mark), else in
Windows-1252 (Excel on Windows; a superset of Latin-1's letters), or UTF-16 when it starts with that byte
order mark; empty and ``NA``-like cells are missing in every column, text ones included; the all-empty
rows Excel leaves at the end of a sheet (``,,,,``) are dropped; and dates written ``mm/dd/yyyy`` or
``dd/mm/yyyy`` are dates, as ISO dates are. What of this applied is kept in the table's metadata
(``reading_notes``), for the reading report.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from glselect.data.formats import CSV_SUFFIXES, DELIMITERS, ENCODINGS, PARQUET_SUFFIXES
from glselect.errors import GlselectError
from glselect.outputs.outdir import atomic_write

# a number written with thousands separators ("4,676.88"; "4.676,88" where the decimal mark is a comma):
# spreadsheets export these, quoted, into CSV files
THOUSANDS_NUMBER = {
    ".": r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$",
    ",": r"^[+-]?[0-9]{1,3}(\.[0-9]{3})+(,[0-9]+)?$",
}
PLAIN_NUMBER = {".": r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$", ",": r"^[+-]?([0-9]+(,[0-9]*)?|,[0-9]+)$"}
ENCODING_NAMES = {"cp1252": "Windows-1252 (cp1252)", "utf-16": "UTF-16"}
DECODE_CHUNK = 1 << 22
NOTES_KEY = "glselect.reading"  # Arrow schema metadata and DataFrame.attrs key of the reading notes
# a date as spreadsheets write it: day and month in either order, a four-digit year, an optional time
SLASH_DATE = (
    r"^\s*(?P<a>[0-9]{1,2})(?P<s1>[/.-])(?P<b>[0-9]{1,2})(?P<s2>[/.-])(?P<year>[0-9]{4})"
    r"(?:[ T](?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})(?:\.[0-9]+)?)?(?:\s*(?P<ampm>[AaPp][Mm]))?)?\s*$"
)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


class EmptyTable(GlselectError):
    """A table with a header and no data rows: ``columns`` are its column names (``predict`` answers one with none)."""

    def __init__(self, message: str, columns: list[str]) -> None:
        super().__init__(message)
        self.columns = columns


def read_table(path: Path, sep: str | None = None, decimal: str = ".") -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame (``read_arrow_table``, then pandas)."""
    # dates become datetime64, so encoding sees a date column rather than text to one-hot
    table = read_arrow_table(path, sep, decimal)
    frame = table.to_pandas(date_as_object=False)
    notes = reading_notes(table)
    if notes:
        frame.attrs[NOTES_KEY] = notes
    return frame


def reading_notes(table: pa.Table) -> dict:
    """What reading a CSV file did beyond the plain read, as ``read_arrow_table`` records it: ``encoding`` (when
    not UTF-8), ``trailing_empty_rows`` (dropped), ``dates`` (``{column: format}`` of columns read as dates)."""
    raw = (table.schema.metadata or {}).get(NOTES_KEY.encode())
    return json.loads(raw) if raw else {}


def read_arrow_table(path: Path, sep: str | None = None, decimal: str = ".") -> pa.Table:
    """Read a CSV or Parquet file into an Arrow table.

    Parameters
    ----------
    path
        A ``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet`` or ``.pq`` file.
    sep
        A CSV file's field separator (``--sep``); None: ``,``, or a tab for ``.tsv``. Parquet ignores it.
    decimal
        A CSV file's decimal mark (``--decimal``): ``.`` or ``,``. Parquet ignores it.

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
    delimiter = sep if sep is not None else "\t" if suffix == ".tsv" else ","
    if suffix in CSV_SUFFIXES and decimal == delimiter:
        raise GlselectError(
            f"cannot read table '{path}' with the decimal mark {decimal!r}: it separates the fields",
            hint="pass the file's field separator too, e.g. --sep ';'",
        )
    try:
        if suffix in CSV_SUFFIXES:
            encoding = csv_encoding(path)
            table = _read_csv(path, encoding, delimiter, decimal)
            _check_delimiter(path, table.column_names, delimiter)
            table, n_empty = without_trailing_empty_rows(table)
            table = numbers_with_thousands_separators(table, decimal)
            table, dates = spreadsheet_dates(table)
            notes: dict[str, object] = {"encoding": encoding} if encoding != "utf-8" else {}
            if n_empty:
                notes["trailing_empty_rows"] = n_empty
            if dates:
                notes["dates"] = dates
            if notes:
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), NOTES_KEY.encode(): json.dumps(notes).encode()})
        elif suffix in PARQUET_SUFFIXES:
            table = pq.read_table(path)
        else:
            raise GlselectError(
                f"cannot tell the format of '{path}' from its suffix '{suffix}'",
                hint="name the file *.csv, *.tsv or *.parquet",
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = _delimiter_hint(_header_line(path), delimiter) if suffix in CSV_SUFFIXES else None
        raise GlselectError(f"cannot read table '{path}': {detail}", hint=hint) from err
    duplicates = sorted(name for name, count in Counter(table.column_names).items() if count > 1)
    if duplicates:
        raise GlselectError(
            f"table '{path}' has duplicate column names: {', '.join(map(repr, duplicates))}",
            hint="give every column a unique name",
        )
    if table.num_rows == 0:
        raise EmptyTable(f"table '{path}' has no data rows", table.column_names)
    return table


def _read_csv(path: Path, encoding: str, delimiter: str, decimal: str) -> pa.Table:
    """The CSV file through Arrow's reader; a line with more or fewer fields than the header is refused by its
    line number (Arrow's own message names the line's text only)."""
    try:
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(encoding=encoding) if encoding != "utf-8" else None,
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            # an empty or NA cell is missing in a text column too, as in a numeric one: else a text target's
            # empty cells would be a class of their own
            convert_options=pa_csv.ConvertOptions(strings_can_be_null=True, decimal_point=decimal),
        )
    except pa.ArrowInvalid as err:
        ragged = _first_ragged_line(path, encoding, delimiter) if "Expected" in str(err) else None
        if ragged is None:
            raise
        line, n_fields, n_columns = ragged
        raise GlselectError(
            f"cannot read table '{path}': line {line} has {n_fields} field{'s' if n_fields != 1 else ''} but the header has {n_columns}",
            hint=_delimiter_hint(_header_line(path), delimiter)  # the file's separator is another one
            or f"give every line one value per column (an empty one for a missing cell), and quote values that hold "
            f"the separator {delimiter!r}",
        ) from err


def _first_ragged_line(path: Path, encoding: str, delimiter: str) -> tuple[int, int, int] | None:
    """``(line number, fields, header fields)`` of the first line whose fields do not match the header's count
    (blank lines skipped, as Arrow skips them; a quoted value may span lines); None when every line matches."""
    with _opener(path)(path, "rt", encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as file:
        reader = csv.reader(file, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return None
        for row in reader:
            if row and len(row) != len(header):
                return reader.line_num, len(row), len(header)
    return None


def _opener(path: Path):
    return gzip.open if path.name.lower().endswith(".gz") else open


def csv_encoding(path: Path) -> str:
    """The text encoding of a CSV file: "utf-16" when it starts with a UTF-16 byte order mark, else the first of
    ``ENCODINGS`` that decodes every byte (a UTF-8 byte order mark is skipped by the CSV reader).

    Raises
    ------
    GlselectError
        No encoding decodes the file (it names the first byte that none could read).
    """
    with _opener(path)(path, "rb") as file:
        head = file.read(2)
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    failures = []
    for encoding in ENCODINGS:
        decoder, offset = codecs.getincrementaldecoder(encoding)(), 0
        try:
            with _opener(path)(path, "rb") as file:
                while chunk := file.read(DECODE_CHUNK):
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError as err:
            failures.append((offset + err.start, err.object[err.start : err.start + 1]))
    offset, byte = failures[-1]
    raise GlselectError(
        f"cannot read table '{path}': it is not text in UTF-8 or Windows-1252 (byte {offset + 1} of the file, 0x{byte.hex()}, is neither)",
        hint="save the file as UTF-8 (in Excel: Save As, 'CSV UTF-8'), or convert it, e.g. iconv -f ENCODING -t UTF-8",
    )


def without_trailing_empty_rows(table: pa.Table) -> tuple[pa.Table, int]:
    """``table`` without the rows at its end whose every cell is missing (a spreadsheet's ``,,,,`` lines), and
    how many there were. Empty rows inside the table stay, so data rows keep their numbers in messages."""
    if table.num_rows == 0 or table.num_columns == 0:
        return table, 0
    empty = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        if column.null_count == 0:
            return table, 0
        empty &= pc.is_null(column).to_numpy(zero_copy_only=False)
    kept = table.num_rows if not empty[-1] else int(np.flatnonzero(~empty)[-1]) + 1 if (~empty).any() else 0
    return table.slice(0, kept), table.num_rows - kept


def _date_order(days_or_months: np.ndarray, months_or_days: np.ndarray) -> str | None:
    """ "mdy" or "dmy" from the values of the first and second part of every date; None when neither fits
    (a part over 12 in both positions, or a part over 31). Dates whose parts are all 12 or less are read
    month first, as the US spreadsheets that write this format most do; a date is ignored either way."""
    if (
        days_or_months.size == 0
        or max(days_or_months.max(), months_or_days.max()) > 31
        or min(days_or_months.min(), months_or_days.min()) < 1
    ):
        return None
    first_is_day, second_is_day = bool((days_or_months > 12).any()), bool((months_or_days > 12).any())
    if first_is_day and second_is_day:
        return None
    return "dmy" if first_is_day else "mdy"


def spreadsheet_dates(table: pa.Table) -> tuple[pa.Table, dict[str, str]]:
    """Text columns whose every present value is a date written day and month first or month and day first
    (``01/31/2024``, ``31.01.2024``, with an optional time), as timestamp columns, and ``{column: format}``
    of those converted. The order is decided from the values: a first part over 12 is a day, a second part
    over 12 is a day; a column where both happen, or a value that is no real date (``02/30/2024``), stays
    text."""
    converted: dict[str, str] = {}
    for index, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = table.column(index)
        if column.null_count == len(column) or not pc.all(pc.match_substring_regex(column, SLASH_DATE)).as_py():
            continue
        parts = column.to_pandas().str.extract(SLASH_DATE)  # NaN rows: missing cells
        present = parts["a"].notna().to_numpy()
        first, second = (pd.to_numeric(parts[key]).fillna(0).to_numpy(dtype=np.int64) for key in ("a", "b"))
        order = _date_order(first[present], second[present])
        if order is None or not (parts["s1"] == parts["s2"])[present].all():
            continue
        hour, minute, sec = (pd.to_numeric(parts[key]).fillna(0).to_numpy() for key in ("hour", "minute", "second"))
        pm = parts["ampm"].str.lower().to_numpy(dtype=object)
        has_ampm = pd.notna(pm)
        if ((hour > 12) & has_ampm).any() or ((hour == 0) & has_ampm).any():
            continue
        hour = np.where(pm == "pm", hour % 12 + 12, np.where(pm == "am", hour % 12, hour))
        fields = {
            "year": pd.to_numeric(parts["year"]).fillna(2000).to_numpy(dtype=np.int64),
            "month": second if order == "dmy" else first,
            "day": first if order == "dmy" else second,
            "hour": hour,
            "minute": minute,
            "second": sec,
        }
        fields["month"], fields["day"] = np.where(present, fields["month"], 1), np.where(present, fields["day"], 1)
        when = pd.to_datetime(pd.DataFrame(fields), errors="coerce")
        if when.isna().to_numpy().any():
            continue  # not every value is a real date (02/30/2024): text
        has_time = bool(parts["hour"].notna().any())
        separator = parts["s1"][present].iloc[0]
        converted[field.name] = separator.join(("dd", "mm", "yyyy") if order == "dmy" else ("mm", "dd", "yyyy")) + (
            " hh:mm" if has_time else ""
        )
        table = table.set_column(index, field.name, pa.array(when.to_numpy(dtype="datetime64[s]"), type=pa.timestamp("s"), mask=~present))
    return table, converted


def _header_line(path: Path) -> str:
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as file:
            return file.readline()
    except OSError:
        return ""


def _delimiter_hint(header: str, delimiter: str) -> str | None:
    """What to do when a CSV file's header is split by some other character than ``delimiter``, the one read by."""
    counts = {char: header.count(char) for char in DELIMITERS if char != delimiter}
    char = max(counts, key=lambda candidate: counts[candidate])
    if counts[char] == 0 or counts[char] <= header.count(delimiter):
        return None
    # shell-quoted as typed: a tab as $'\t'
    typed = "$'\\t'" if char == "\t" else f"'{char}'"
    return f"the header looks separated by {DELIMITERS[char]}: pass --sep {typed}" + (
        " (and --decimal ',' if numbers are written with decimal commas)" if char == ";" else ""
    )


def _check_delimiter(path: Path, columns: list[str], delimiter: str) -> None:
    """A table read as one column whose name holds another separator was split by the wrong character."""
    if len(columns) != 1:
        return
    hint = _delimiter_hint(columns[0], delimiter)
    if hint is not None:
        raise GlselectError(f"table '{path}' was read as a single column named {columns[0][:60]!r}", hint=hint)


def numbers_with_thousands_separators(table: pa.Table, decimal: str = ".") -> pa.Table:
    """Text columns whose every present value is a number, some written with thousands separators
    ("4,676.88"; with ``decimal=","``, "4.676,88"), as float64 columns; empty cells become missing. Only a
    strict pattern converts (groups of three digits after each separator), so "4,5" or "1,2,3" stay text."""
    thousands = "," if decimal == "." else "."
    for index, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        values = pc.utf8_trim_whitespace(table.column(index))
        with_separators = pc.match_substring_regex(values, THOUSANDS_NUMBER[decimal])
        if not pc.any(with_separators).as_py():
            continue
        empty = pc.equal(values, "")
        number = pc.or_(pc.or_(with_separators, pc.match_substring_regex(values, PLAIN_NUMBER[decimal])), empty)
        if not pc.all(number).as_py():  # nulls are skipped: a missing cell does not stop the conversion
            continue
        plain = pc.replace_substring(values, thousands, "")
        if decimal != ".":
            plain = pc.replace_substring(plain, decimal, ".")
        plain = pc.if_else(empty, pa.scalar(None, pa.string()), plain)
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
        raise GlselectError(f"group map '{source}' must start with the header 'feature,group', found '{','.join(rows[0])}'")
    mapping: dict[str, str] = {}
    for line_number, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise GlselectError(f"group map '{source}' line {line_number}: expected 'feature,group', found '{','.join(row)}'")
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
