"""The nbgrader gradebook of a graded OUT (OUT/workspace/gradebook.db), beside what grader.autograde records there.

Read back: what instructors entered in formgrader, the points of written answers and any change to an
autograded cell's points (`read_manual`), which `grades.csv` and the exports add to the automatic points.
Written in: the missing and invalid submissions (`record_not_graded`), so that formgrader lists every
student, with zero and the reason, instead of leaving them out.
Only nbgrader's own API (nbgrader.api.Gradebook and its tables) touches the database.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import (Assignment, Grade, GradeCell, Gradebook, MissingEntry, Student, SubmittedAssignment,
                          SubmittedNotebook)

from grader.autograde import FINAL_COLUMNS, STUDENT_ID, Result
from grader.lessons import lessons as course_lessons, student_notebook

NOT_GRADED = ("missing", "invalid")  # what appears in the gradebook with zero; "error" is for a rerun to fix


@dataclass(frozen=True)
class ManualGrade:
    """What formgrader holds for one student's lesson, beyond the automatic points."""

    score: float = 0.0  # written answers: the points entered so far
    pending: float = 0.0  # written answers nobody has graded yet: their points
    adjustment: float = 0.0  # autograded cells given other points by hand (manual - automatic, plus extra credit)


def database(workspace: Path) -> Path:
    return workspace / "gradebook.db"


def read_manual(workspace: Path) -> dict[tuple[str, str], ManualGrade]:
    """(student, lesson) -> what formgrader holds; empty when there is no gradebook (nothing is created)."""
    if not database(workspace).is_file():
        return {}
    found: dict[tuple[str, str], list[float]] = {}
    with Gradebook(f"sqlite:///{database(workspace)}") as gradebook:
        rows = (gradebook.db.query(Student.id, Assignment.name, GradeCell.cell_type, GradeCell.max_score,
                                   Grade.auto_score, Grade.manual_score, Grade.extra_credit, Grade.needs_manual_grade)
                .join(GradeCell, GradeCell.id == Grade.cell_id)
                .join(SubmittedNotebook, SubmittedNotebook.id == Grade.notebook_id)
                .join(SubmittedAssignment, SubmittedAssignment.id == SubmittedNotebook.assignment_id)
                .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
                .join(Student, Student.id == SubmittedAssignment.student_id)
                .all())
    for student, lesson, cell_type, max_score, auto, manual, extra, needs in rows:
        totals = found.setdefault((student, lesson), [0.0, 0.0, 0.0])
        if cell_type == "markdown":  # a written answer
            totals[0] += manual or 0.0
            totals[1] += max_score if needs and manual is None else 0.0
            totals[2] += extra or 0.0
        elif manual is not None or extra:
            totals[2] += (manual - (auto or 0.0) if manual is not None else 0.0) + (extra or 0.0)
    return {k: ManualGrade(*v) for k, v in found.items()}


def final_columns(row: Result, manual: ManualGrade | None) -> dict[str, float]:
    """grades.csv's columns beyond the automatic points: manual points, what is left to grade by hand, the total.

    A graded submission the gradebook does not know yet has all its written answers still to grade. One that is not
    graded (missing, invalid, an error) counts 0, as in the exports, even where the gradebook kept points given by
    hand to an earlier version of it."""
    if row.status != "graded":
        manual = ManualGrade()
    elif manual is None:
        manual = ManualGrade(pending=row.manual_max)
    total = row.score + manual.score + manual.adjustment
    return dict(zip(FINAL_COLUMNS, (manual.score, manual.pending, manual.adjustment, total,
                                    row.max_score + row.manual_max), strict=True))


def placeholder(lesson: str, row: Result) -> nbformat.NotebookNode:
    """What formgrader shows for a submission that could not be graded: the student copy, headed by the reason."""
    nb = copy.deepcopy(nbformat.read(student_notebook(lesson), as_version=4))
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**Not graded ({row.status}): {row.reason or 'no reason recorded'}.** Every cell scores 0; this is the "
        "student copy as released, not the student's work."))
    return nb


def record_not_graded(workspace: Path, rows: list[Result]) -> int:
    """Put every missing or invalid submission in the gradebook with zero points and its reason; returns how many.

    Each gets a submission record (zero on every autograded cell, written answers marked as not needing a
    grade, the reason as the comment on every answer cell) and a placeholder notebook in autograded/, so
    that formgrader can open it. Lessons the gradebook does not know (never registered) are left out.
    """
    wanted = [r for r in rows if r.status in NOT_GRADED and STUDENT_ID.fullmatch(r.student_id)
              and r.lesson in course_lessons()]
    if not wanted or not database(workspace).is_file():
        return 0
    recorded = 0
    with Gradebook(f"sqlite:///{database(workspace)}") as gradebook:
        known = {a.name for a in gradebook.assignments}
        for row in wanted:
            if row.lesson not in known:
                continue
            target = workspace / "autograded" / row.student_id / row.lesson
            target.mkdir(parents=True, exist_ok=True)
            nbformat.write(placeholder(row.lesson, row), target / f"{row.lesson}.ipynb")
            gradebook.update_or_create_student(row.student_id)
            gradebook.update_or_create_submission(row.lesson, row.student_id)
            try:
                notebook = gradebook.find_submission_notebook(row.lesson, row.lesson, row.student_id)
            except MissingEntry:
                continue
            for grade in notebook.grades:
                grade.auto_score, grade.needs_manual_grade = 0.0, False
            for comment in notebook.comments:
                comment.auto_comment = f"Not graded ({row.status}): {row.reason}"
            recorded += 1
        gradebook.db.commit()
    return recorded

