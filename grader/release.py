"""Generate the student copies in notebooks/ from the nbgrader sources in solutions/ and the answer key.

For each lesson: the test cells and their points are written from the key's declarations (into the
source notebook too, so the two never drift); the student copy is what `nbgrader generate_assignment`
would release (the same preprocessors, in-process: solutions replaced by `raise NotImplementedError()`,
mark schemes removed, outputs cleared, graded cells locked and checksummed); and the visible
expectations, the reference's and the known wrong answers' results on the visible inputs, are
recorded as data in notebooks/<lesson>/<lesson>.checks.json.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)

import utils
from grader import key as answer_key
from grader.lessons import course, resolve, source_notebook, student_notebook
from utils.checks import encode_plain

_PIPELINE = (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
             ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata)


def student_version(source: nbformat.NotebookNode) -> str:
    """The student copy of a source notebook, as the exact text written to notebooks/."""
    nb = nbformat.from_dict(source)
    resources: dict = {}
    for preprocessor in _PIPELINE:
        nb, resources = preprocessor().preprocess(nb, resources)
    return nbformat.writes(nb) + "\n"


def with_declared_tests(source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The source notebook with every test cell's code and points written from its exercise declaration."""
    key = answer_key.load(source, course())
    if key is None:
        return source
    nb = nbformat.from_dict(source)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        exercise = key.exercise(meta.get("grade_id")) if meta.get("grade") and cell.cell_type == "code" else None
        if exercise is not None:
            cell.source = answer_key.test_cell_source(exercise)
            meta["points"] = exercise.points
    return nb


def _utils_imports(path: Path) -> set[Path]:
    """The utils source files a Python file imports (read from its import statements, not from what ran)."""
    root = Path(utils.__file__).resolve().parent
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "utils":
                continue
            for depth in range(1, len(parts) + 1):  # every package on the way is imported too
                base = root.joinpath(*parts[1:depth])
                for candidate in (base / "__init__.py", base.with_suffix(".py")):
                    if candidate.is_file():
                        found.add(candidate)
    return found


def library_files(key: answer_key.LessonKey) -> list[Path]:
    """The files the key's results depend on: utils.checks, the lesson's probes, and the utils code they import."""
    todo = {Path(key.module.__file__), Path(sys.modules[key.probe_module].__file__)}
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        seen.add(path)
        todo |= _utils_imports(path) - seen
    return sorted(seen - {Path(key.module.__file__)})


def fingerprint(source: nbformat.NotebookNode) -> str:
    """What the recorded expectations depend on: the key module, the library code it uses, the lesson's tests."""
    digest = hashlib.sha256()
    key = answer_key.load(source, course())
    if key is not None:
        root = Path(utils.__file__).resolve().parent.parent
        digest.update(Path(key.module.__file__).read_bytes())
        for file in library_files(key):
            digest.update(str(file.relative_to(root)).encode() + file.read_bytes())
    digest.update(nbformat.writes(with_declared_tests(source)).encode())
    return digest.hexdigest()


def expectations_text(source: nbformat.NotebookNode) -> str | None:
    """The visible expectations file of a lesson, or None when it declares no key."""
    key = answer_key.load(source, course())
    if key is None:
        return None
    recorded = answer_key.recorded_expectations(key)
    cells = [cell.get("id") for cell in source.cells]  # the student copy keeps them; validate tells added cells apart
    return encode_plain({"fingerprint": fingerprint(source), **recorded, "cells": cells}) + "\n"


def expectations_file(lesson: str) -> Path:
    return student_notebook(lesson).with_suffix(".checks.json")


def release(lesson: str | None = None, timing: bool = True) -> list[str]:
    """Write notebooks/<lesson>/<lesson>.ipynb and its .checks.json for each lesson; returns the paths written.

    With `timing`, also grade each reference solution once and record its time (grader.timing): the
    lesson's default time limit.
    """
    written = []
    for name in resolve(lesson):
        path = source_notebook(name)
        source = nbformat.read(path, as_version=4)
        declared = with_declared_tests(source)
        if nbformat.writes(declared) != nbformat.writes(source):
            nbformat.write(declared, path)
            written.append(str(path.relative_to(course())))
        target = student_notebook(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(student_version(declared))
        written.append(str(target.relative_to(course())))
        text = expectations_text(declared)
        if text is not None:
            expectations_file(name).write_text(text)
            written.append(str(expectations_file(name).relative_to(course())))
            if timing:
                from grader import timing as lesson_timing
                written.append(str(lesson_timing.record(name, declared).relative_to(course())))
    return written
