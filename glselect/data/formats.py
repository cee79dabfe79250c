"""The table formats glselect reads, by name: light (no pandas or pyarrow), so the command line can
check a table's header before the heavy modules load (``glselect.cli.header``) with the same rules
as the reader (``glselect.data.io``)."""

from __future__ import annotations

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}  # what a header may be split by
ENCODINGS = ("utf-8", "cp1252")  # tried in this order: a Windows-1252 file is rarely valid UTF-8, the reverse always decodes
