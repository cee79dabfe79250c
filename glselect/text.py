"""Wording shared by the command line and the documents it prints."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 group', '2 groups', '0 columns'; ``nouns`` for irregular plurals."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
