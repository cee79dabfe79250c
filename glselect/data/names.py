"""Names the user typed that are not in the table: the closest names that are, for a "did you mean" hint;
and labels that look like a typo of another label (an edit distance).

One place for the rule, so every message about a column name suggests alike: a name that differs only in
letter case or in its Unicode normal form (an accented letter typed as one code point or as a letter and a
combining accent) is the first suggestion; then the closest names by ``difflib``'s similarity.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

from glselect.errors import GlselectError

MAX_SUGGESTIONS = 3
SIMILARITY = 0.6  # difflib's ratio a name must reach to be suggested (its own default)


def _folded(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def closest_names(name: str, candidates: Iterable[str], n: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to ``n`` of ``candidates`` the user may have meant by ``name``, best first: names equal but for
    letter case or Unicode normal form, then the closest by ``difflib.get_close_matches`` (compared without
    case and in NFC)."""
    candidates = [str(candidate) for candidate in candidates if str(candidate) != name]
    folded = _folded(name)
    exact = [candidate for candidate in candidates if _folded(candidate) == folded]
    by_folded: dict[str, list[str]] = {}
    for candidate in candidates:
        by_folded.setdefault(_folded(candidate), []).append(candidate)
    close = difflib.get_close_matches(folded, list(by_folded), n=n + len(exact), cutoff=SIMILARITY)
    ordered = exact + [candidate for key in close for candidate in by_folded[key] if candidate not in exact]
    return ordered[:n]


def did_you_mean(names: Iterable[str], candidates: Iterable[str]) -> str | None:
    """``"did you mean 'y'?"`` (one name) or ``"did you mean 'age' for 'agee', 'score' for 'scor'?"``; None when
    no name has a close candidate."""
    names, candidates = list(names), list(candidates)
    found = [(name, closest_names(name, candidates)) for name in names]
    found = [(name, matches) for name, matches in found if matches]
    if not found:
        return None
    if len(names) == 1:
        return "did you mean " + " or ".join(repr(match) for match in found[0][1]) + "?"
    return "did you mean " + ", ".join(f"{matches[0]!r} for {name!r}" for name, matches in found) + "?"


def with_suggestion(hint: str, names: Iterable[str], candidates: Iterable[str]) -> str:
    """``hint`` led by ``did_you_mean`` when there is a suggestion."""
    suggestion = did_you_mean(names, candidates)
    return hint if suggestion is None else f"{suggestion} {hint}"


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of two neighbouring
    characters each cost 1 ("yse" is 1 from "yes")."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def likely_typo_of(label: str, others: Iterable[str]) -> str | None:
    """The one label of ``others`` that ``label`` looks like a typo of: equal but for case, spaces around it or
    Unicode normal form, or within 1 edit (2 for labels of 6 or more characters); None when there is none or
    more than one is as close."""
    key = _folded(label).strip()
    if not key:
        return None
    limit = 1 if len(key) < 6 else 2
    scored = []
    for other in others:
        other_key = _folded(other).strip()
        if other == label or not other_key:
            continue
        distance = 0 if other_key == key else edit_distance(key, other_key)
        if distance <= limit and distance < max(len(key), len(other_key)):
            scored.append((distance, other))
    if not scored:
        return None
    scored.sort(key=lambda item: item[0])
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None
    return scored[0][1]


def target_not_found(target: str, columns: list[str], source: str) -> GlselectError:
    """The error for a target the table lacks: the closest column names first (``did you mean``), then the
    table's first columns. One message for the in-memory and the streamed fit, and for the command line's
    header check before either starts."""
    return GlselectError(
        f"target column '{target}' is not in '{source}'",
        hint=with_suggestion(f"columns are: {', '.join(columns[:20])}" + (" ..." if len(columns) > 20 else ""), [target], columns),
    )
