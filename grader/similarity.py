"""Exercise code that is nearly identical to another student's, or to the reference solution.

Code is compared after normalisation, so that renaming variables, reformatting or adding comments
changes nothing:
  - it is split into Python's tokens (names, numbers, strings, operators: the token classes of
    `tokenize`, matched by one regular expression, four times faster than `tokenize` itself);
    comments, whitespace, line breaks and indentation are dropped;
  - every name becomes `v`, except keywords, builtins, attributes after a dot and keyword-argument
    names (`dim=`), which a renamed copy keeps: they carry the API calls;
  - numbers become `0`, strings `s`.
The measure is the Jaccard similarity |A ∩ B| / |A ∪ B| of the sets of token K-grams of two cells,
after removing the K-grams of the student copy's stub (the signature and docstring everyone starts
from, like MOSS's base file). Two cells are "nearly identical" when it is at least THRESHOLD and each
has at least MIN_KGRAMS K-grams of its own: a one-line exercise has only a few ways to be written, so
matching code there is no evidence of anything.

THRESHOLD was chosen by measurement (tests/test_report.py holds the corpus): independently written
solutions of one exercise, similar in approach (lesson 01's measure_interference, 5; lesson 02's
generate_batch, 4), against a copy of one of them with its variables renamed, comments, blank lines
and line breaks changed and a line added. For K = 4..7 the largest honest pair scored 0.38, 0.32,
0.27, 0.24 and the copies at least 0.79, 0.76, 0.73, 0.70; with K = 5, 0.55 sits midway between 0.32
and 0.76. MIN_KGRAMS = 40 leaves out the one- and two-line exercises (their references have 16 to 35
K-grams of their own; the longer ones 45 to 175). A flag informs a person; it never changes a score.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

K = 5  # tokens per K-gram
THRESHOLD = 0.55  # Jaccard similarity at or above which two cells are reported as nearly identical
MIN_KGRAMS = 40  # K-grams of its own (beyond the stub's) a cell needs before a match means anything
REFERENCE = "reference solution"  # the name a match with the reference goes by

TOKEN = re.compile(r"""(?P<skip>\#[^\n]*|\\\n|[ \t\f\r\n]+)
    |(?P<string>(?:[rRbBuUfF]{1,2})?(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''
                |"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
    |(?P<number>(?:\d|\.\d)[\w.]*(?:(?<=[eE])[+-][\w.]+)?)
    |(?P<name>[^\W\d]\w*)
    |(?P<op>\*\*=?|//=?|->|<<=?|>>=?|[-+*/%@&|^<>=!:]=|[^\s\w])""", re.VERBOSE)
KEPT = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)


@lru_cache(maxsize=1 << 16)  # the report asks twice per cell: was it attempted, and whom does it match
def tokens(code: str) -> tuple[str, ...]:
    """The normalised token sequence of `code` (see the module docstring); any text is accepted."""
    items = [(m.lastgroup, m.group()) for m in TOKEN.finditer(code) if m.lastgroup != "skip"]
    out: list[str] = []
    depth = 0  # bracket depth: `name=` inside brackets is a keyword argument (or a default), kept
    for k, (kind, text) in enumerate(items):
        if kind == "name":
            kept = text in KEPT or (out and out[-1] == ".") or \
                (depth and k + 1 < len(items) and items[k + 1][1] == "=")
            text = text if kept else "v"
        elif kind == "number":
            text = "0"
        elif kind == "string":
            text = "s"
        elif text in "([{":
            depth += 1
        elif text in ")]}":
            depth = max(0, depth - 1)
        out.append(text)
    return tuple(out)


def kgrams(code: str, base: frozenset[int] = frozenset()) -> frozenset[int]:
    """The hashed K-grams of `code`'s normalised tokens, less those in `base` (the stub's)."""
    seq = tokens(code)
    return frozenset(hash(tuple(seq[i:i + K])) for i in range(max(0, len(seq) - K + 1))) - base


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


@dataclass(frozen=True)
class Match:
    """`student`'s cell is nearly identical to `other`'s (another student, or REFERENCE)."""

    student: str
    other: str
    similarity: float
    also: int = 0  # how many more students' cells are at or above the threshold too


def near_copies(codes: Mapping[str, str], stub: str = "", reference: str | None = None,
                threshold: float = THRESHOLD, min_kgrams: int = MIN_KGRAMS) -> list[Match]:
    """For each student whose cell is nearly identical to the reference or to others: the reference match,
    and the closest other student (with how many more there are). `codes`: student -> the cell's source."""
    base = kgrams(stub)
    prints = {student: kgrams(code, base) for student, code in codes.items()}
    prints = {student: p for student, p in prints.items() if len(p) >= min_kgrams}
    # Cells with the same K-grams are compared once: a class that shares one copy costs one comparison.
    groups: dict[frozenset[int], list[str]] = {}
    for student, p in prints.items():
        groups.setdefault(p, []).append(student)
    unique = list(groups)
    close: dict[int, list[tuple[float, int]]] = {i: [] for i in range(len(unique))}
    for i, j in _candidates(unique, threshold):
        score = jaccard(unique[i], unique[j])
        if score >= threshold:
            close[i].append((score, j))
            close[j].append((score, i))
    ref = kgrams(reference, base) if reference else frozenset()
    found = []
    for i, p in enumerate(unique):
        members = groups[p]
        ref_score = jaccard(p, ref) if len(ref) >= min_kgrams else 0.0
        for student in members:
            if ref_score >= threshold:
                found.append(Match(student, REFERENCE, ref_score))
            twins = [(1.0, other) for other in members if other != student]
            twins += [(score, name) for score, j in close[i] for name in groups[unique[j]]]
            if twins:
                score, other = max(twins, key=lambda t: (t[0], _desc(t[1])))
                found.append(Match(student, other, score, len(twins) - 1))
    return sorted(found, key=lambda m: (-m.similarity, m.student, m.other))


def _candidates(sets: list[frozenset[int]], threshold: float) -> set[tuple[int, int]]:
    """Every pair (i < j) that can reach Jaccard >= threshold, found without comparing all pairs (prefix filter).

    With the K-grams of every set ordered rarest first, two sets with Jaccard >= t share at least one of
    their first |A| - ceil(t |A|) + 1 (Bayardo et al., "Scaling up all pairs similarity search", 2007).
    """
    frequency = Counter(g for s in sets for g in s)
    index: dict[int, list[int]] = {}
    for i, s in enumerate(sets):
        ordered = sorted(s, key=lambda g: (frequency[g], g))
        for g in ordered[:len(ordered) - math.ceil(threshold * len(ordered) - 1e-9) + 1]:
            index.setdefault(g, []).append(i)
    return {(a, b) for ids in index.values() for a, b in itertools.combinations(ids, 2)}


def _desc(name: str) -> tuple[int, ...]:
    """A key under which max() picks the alphabetically first name: ties name the same student every run."""
    return tuple(-ord(c) for c in name)


def pairs_score(pairs: Iterable[tuple[str, str]], stub: str = "") -> list[float]:
    """The similarity of each (code, code) pair, as near_copies measures it (for measuring the threshold)."""
    base = kgrams(stub)
    return [jaccard(kgrams(a, base), kgrams(b, base)) for a, b in pairs]
