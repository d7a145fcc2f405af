"""Generated submissions: a lesson's student copy with some exercises solved (tests, benchmarks, demos).

A student who solves exercise `ex_<name>` replaces that cell of the student copy with working code;
here the working code is the reference solution from solutions/, with nbgrader's markers removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import nbformat

from grader.lessons import source_notebook, student_notebook

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def exercises(lesson: str) -> list[str]:
    """grade_ids of the code cells students write, in notebook order."""
    nb = nbformat.read(source_notebook(lesson), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]


def tests_of(lesson: str) -> dict[str, float]:
    """grade_id -> points of the autograded test cells."""
    nb = nbformat.read(source_notebook(lesson), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0)) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def without_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in MARKERS)


def make_submission(lesson: str, solved: Iterable[str] | str = (), prelude: str = "") -> nbformat.NotebookNode:
    """The student copy of `lesson` with the exercises `solved` (grade_ids, or "all") filled in.

    `prelude` is code put at the top of the first solved cell (e.g. a student's stray print to stderr).
    """
    source = {c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(source_notebook(lesson), as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("solution")}
    wanted = set(source) if solved == "all" else set(solved)
    unknown = wanted - set(source)
    if unknown:
        raise ValueError(f"{lesson} has no exercise {', '.join(sorted(unknown))}; it has {', '.join(source)}")
    nb = nbformat.read(student_notebook(lesson), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in wanted:
            cell.source = without_markers(source[grade_id].source)
            if prelude and cell.cell_type == "code":
                cell.source, prelude = f"{prelude}\n{cell.source}", ""
    return nb


def write_submission(nb: nbformat.NotebookNode, submissions: Path, student: str, lesson: str) -> Path:
    path = submissions / student / lesson / f"{lesson}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
