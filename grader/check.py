"""`python -m grader check`: fail when notebooks/ is stale or a committed notebook carries outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from grader import key as answer_key
from grader import timing
from grader.lessons import course, lessons, notebooks_dir, solutions_dir, source_notebook, student_notebook
from grader.release import expectations_file, fingerprint, student_version, with_declared_tests


def notebooks_with_outputs(paths: list[Path]) -> list[str]:
    """Notebooks whose code cells have outputs or execution counts (nbdev's 'clean notebook' rule)."""
    dirty = []
    for path in paths:
        try:
            cells = json.loads(path.read_text())["cells"]
        except (ValueError, KeyError, TypeError):
            dirty.append(f"{path.relative_to(course())} (not a valid notebook)")
            continue
        if any(c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count")) for c in cells):
            dirty.append(f"{path.relative_to(course())} (has outputs or execution counts)")
    return dirty


def problems() -> list[str]:
    """Every reason the committed notebooks are not as generated; empty when all is well."""
    found = notebooks_with_outputs(sorted(solutions_dir().rglob("*.ipynb")) + sorted(notebooks_dir().rglob("*.ipynb")))
    expected = {student_notebook(name) for name in lessons()}
    for name in lessons():
        target = student_notebook(name)
        source = nbformat.read(source_notebook(name), as_version=4)
        declared = with_declared_tests(source)
        if nbformat.writes(declared) != nbformat.writes(source):
            found.append(f"{source_notebook(name).relative_to(course())} has test cells or points that differ from "
                         "its exercise declarations")
        if not target.exists():
            found.append(f"{target.relative_to(course())} is missing")
        elif target.read_text() != student_version(declared):
            found.append(f"{target.relative_to(course())} is stale")
        found += undeclared(name, declared)
        if declared.metadata.get("grader", {}).get("key"):
            found += stale_expectations(name, fingerprint(declared))
            if timing.recorded_seconds(name, declared) is None:
                found.append(f"{name} has no recorded reference time, so its default time limit is "
                             f"{timing.FALLBACK:.0f} s: run `python -m grader release --lesson {name}`")
    for extra in sorted(set(notebooks_dir().rglob("*.ipynb")) - expected):
        if ".ipynb_checkpoints" not in extra.parts:
            found.append(f"{extra.relative_to(course())} has no source in solutions/")
    return found


def undeclared(lesson: str, source: nbformat.NotebookNode) -> list[str]:
    """Test cells without an exercise declaration (they could not be graded), and declarations without a test cell."""
    key = answer_key.load(source, course())
    declared = {e.grade_id for e in key.exercises} if key else set()
    tests = {c.metadata["nbgrader"]["grade_id"] for c in source.cells
             if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    return ([f"{lesson}: test cell {t} has no exercise declaration in the answer key" for t in sorted(tests - declared)]
            + [f"{lesson}: exercise {d.removeprefix('test_')} is declared but the notebook has no cell {d}"
               for d in sorted(declared - tests)])


def stale_expectations(lesson: str, wanted: str) -> list[str]:
    """The visible expectations of a lesson are missing or were recorded from another key, library or lesson."""
    path = expectations_file(lesson)
    try:
        recorded = json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return [f"{path.relative_to(course())} is missing or unreadable"]
    return [] if recorded == wanted else [f"{path.relative_to(course())} is stale"]
