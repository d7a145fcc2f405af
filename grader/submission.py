"""Reading a submitted notebook without trusting it: size, JSON, nbformat, and its graded cells."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4.rwbase import rejoin_lines

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024  # a lesson with outputs is < 5 MB; anything bigger is not a lesson


class InvalidSubmission(Exception):
    """The file cannot be graded; the message says why, for the grades table and the student."""


@dataclass
class Inspection:
    """What grading needs to know before running a submission."""

    notebook: nbformat.NotebookNode
    problems: list[str] = field(default_factory=list)


def graded_cell_ids(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """grade_id -> cell, for every cell nbgrader tracks (locked, solution, test or task)."""
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            cells[meta["grade_id"]] = cell
    return cells


def sane_metadata(nb: nbformat.NotebookNode) -> list[str]:
    """Drop nbgrader metadata of the wrong shape (a submission may put anything there); returns what was dropped."""
    dropped = []
    for index, cell in enumerate(nb.cells):
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        meta = cell.metadata["nbgrader"]
        if not isinstance(meta, dict) or not isinstance(meta.get("grade_id", ""), str):
            del cell.metadata["nbgrader"]
            dropped.append(f"cell {index + 1} had nbgrader metadata of the wrong type (ignored)")
        elif not all(isinstance(meta.get(k, False), bool) for k in ("grade", "solution", "locked", "task")) \
                or not isinstance(meta.get("points", 0), (int, float)) or isinstance(meta.get("points"), bool):
            dropped.append(f"cell {meta.get('grade_id', index + 1)} had nbgrader flags or points of the wrong type "
                           "(ignored)")
            for key in ("grade", "solution", "locked", "task", "points"):
                meta.pop(key, None)
    return dropped


def inspect(path: Path, source: nbformat.NotebookNode) -> Inspection:
    """Load `path` as a notebook and compare its graded cells with the lesson's `source`.

    Raises InvalidSubmission when it cannot be graded at all; problems that still allow grading
    (a deleted or edited test cell) are listed in Inspection.problems.
    """
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(f"notebook is {size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit; "
                                "clear its outputs (Edit > Clear Outputs of All Cells) and submit again")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InvalidSubmission(f"not a notebook: the file is not valid JSON ({type(error).__name__}); "
                                "submit the .ipynb file saved by Jupyter") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise InvalidSubmission("not a notebook: the JSON has no list of cells; submit the .ipynb file saved by Jupyter")
    if data.get("nbformat") != 4:
        raise InvalidSubmission(f"unsupported notebook format version {data.get('nbformat')!r}; expected 4")
    try:
        nb = rejoin_lines(nbformat.from_dict(data))  # sources saved as lists of lines become strings
        nbformat.validate(nb)
    except (nbformat.ValidationError, RecursionError, TypeError, AttributeError) as error:
        raise InvalidSubmission(f"not a valid notebook: {str(error).splitlines()[0][:200]}") from None

    problems = sane_metadata(nb)
    submitted = graded_cell_ids(nb)
    expected = graded_cell_ids(source)
    missing = [grade_id for grade_id in expected if grade_id not in submitted]
    if missing:
        problems.append(f"missing cells: {', '.join(missing)} (restore them from notebooks/; their points are lost)")
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
    ids = [i for i in ids if isinstance(i, str)]
    duplicated = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if duplicated:
        problems.append(f"duplicated cells: {', '.join(duplicated)}")
    return Inspection(nb, problems)
