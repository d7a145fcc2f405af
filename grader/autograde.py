"""`python -m grader autograde SUBMISSIONS --out OUT`: grade a folder of submissions.

SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb -> OUT/grades.csv, OUT/feedback/<student_id>/<lesson>/,
and the nbgrader workspace OUT/workspace/ (gradebook and working files, for formgrader).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from tqdm.auto import tqdm

from grader import feedback, workspace
from grader.lessons import resolve, source_notebook
from grader.submission import InvalidSubmission, inspect

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class Result:
    """One row of grades.csv: automatic points (score of max_score) and what is left to grade by hand."""

    student_id: str
    lesson: str
    score: float
    max_score: float
    manual_max: float
    status: str  # graded | missing | invalid | error
    reason: str = ""


def find_lessons(submissions: Path, lesson: str | None) -> list[str]:
    """The lesson named, or every lesson some student submitted."""
    if lesson is not None:
        return resolve(lesson)
    submitted = {p.name for p in submissions.glob("*/*") if p.is_dir()}
    return [name for name in resolve(None) if name in submitted]


def autograde(submissions: Path, out: Path, lesson: str | None = None, timeout: float = 900,
              progress: bool = True) -> list[Result]:
    """Grade every student's submission of each lesson; one row per (student, lesson), whatever happens."""
    submissions, out = submissions.resolve(), out.resolve()
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder; expected SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb")
    lessons = find_lessons(submissions, lesson)
    if not lessons:
        raise SystemExit(f"no lesson folders found under {submissions}/<student_id>/; expected e.g. "
                         f"{submissions}/alice/01_superposition_basics/01_superposition_basics.ipynb")
    students = sorted(p.name for p in submissions.iterdir() if p.is_dir())
    ws = workspace.prepare(out / "workspace", lessons)
    jobs = [(student, name) for student in students for name in lessons]
    results = []
    bar = tqdm(jobs, desc="grading", unit="submission", disable=not progress)
    for student, name in bar:
        bar.set_postfix_str(f"{student}/{name}")
        results.append(grade_one(ws, submissions / student / name, student, name, out, timeout))
        write_grades(out / "grades.csv", results)
    print(summary(results))
    return results


def grade_one(ws: Path, folder: Path, student: str, lesson: str, out: Path, timeout: float) -> Result:
    source = nbformat.read(source_notebook(lesson), as_version=4)
    row = Result(student, lesson, 0.0, *_max_points(source), status="graded")
    if not STUDENT_ID.match(student):
        return _with(row, "invalid", "student folder name must be letters, digits, '.', '_' or '-'")
    path = folder / f"{lesson}.ipynb"
    if not path.is_file() or path.is_symlink():
        others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        reason = f"expected {lesson}.ipynb, found {', '.join(others)}" if others else "no submission"
        return _with(row, "missing", reason)
    try:
        inspection = inspect(path, source)
    except InvalidSubmission as error:
        return _with(row, "invalid", str(error))

    target = ws / "submitted" / student / lesson
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    nbformat.write(inspection.notebook, target / f"{lesson}.ipynb")
    try:
        workspace.run_nbgrader(ws, ["autograde", lesson, "--student", student, "--force"],
                               log=f"autograde-{student}-{lesson}", timeout=timeout)
    except workspace.NbgraderFailed as error:
        return _with(row, "error", str(error))

    with Gradebook(f"sqlite:///{ws / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(lesson, lesson, student)
        row.score = float(notebook.code_score)
        cell_scores = {g.name: (g.score, g.max_score, g.cell_type) for g in notebook.grades}
    feedback.write(ws / "autograded" / student / lesson / f"{lesson}.ipynb", cell_scores, row,
                   out / "feedback" / student / lesson)
    return _with(row, "graded", "; ".join(inspection.problems))


def _max_points(source: nbformat.NotebookNode) -> tuple[float, float]:
    """(automatic points, manually graded points) of a lesson's source notebook."""
    auto = manual = 0.0
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            if cell.cell_type == "code":
                auto += float(meta.get("points", 0))
            else:
                manual += float(meta.get("points", 0))
    return auto, manual


def _with(row: Result, status: str, reason: str) -> Result:
    row.status, row.reason = status, reason
    return row


def write_grades(path: Path, results: list[Result]) -> None:
    """Write grades.csv atomically: a crash mid-batch never leaves a half-written table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(Result)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    os.replace(tmp, path)


def summary(results: list[Result]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("graded", "missing", "invalid", "error")}
    graded = [r for r in results if r.status == "graded"]
    mean = sum(r.score / r.max_score for r in graded if r.max_score) / max(1, len(graded))
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"{len(results)} submissions: {line}; mean automatic score of graded ones {100 * mean:.0f}%"
