"""`python -m grader export OUT --format canvas|wide`: final grades as a file a gradebook imports.

One row per student, one column per lesson: the lesson's total (automatic points, plus the written answers'
and any other points entered in formgrader, read from the gradebook now; see grader.gradebook), with its
points possible. A missing or invalid submission counts 0. grades.csv is brought up to date on the way.

Formats (the README's instructor section says how to import them):
  - canvas: Canvas's gradebook CSV, as Canvas itself exports it (instructure/canvas-lms,
    lib/gradebook_exporter.rb): the header `Student, ID, SIS User ID, SIS Login ID, Section, <assignments>`,
    then a row whose Student cell is "    Points Possible" (four spaces first) with each assignment's points,
    then one row per student. On import Canvas needs one of Student (the name), ID or SIS User ID to know
    the student; the student folder name goes in the column `id_column` names (SIS User ID unless said
    otherwise) and in Student, and an assignment column Canvas does not know becomes a new assignment.
  - wide: a plain table: student_id, one column per lesson, total; the first row gives the points possible.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

from grader.lessons import lessons as course_lessons
from grader.report import Submission, read_submissions, safe_cell, save_grades

FORMATS = ("canvas", "wide")
CANVAS_IDS = ("SIS User ID", "SIS Login ID", "ID")  # where the student folder name goes
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"  # Canvas's own label, spaces included


def number(value: float) -> str:
    """Points as a gradebook reads them: at most two decimals, no trailing zeros (Canvas shows two)."""
    return f"{round(value, 2):g}"


def table(submissions: list[Submission]) -> tuple[list[str], dict[str, float], dict[str, dict[str, float]]]:
    """(lessons in course order, lesson -> points possible, student -> lesson -> total)."""
    order = {name: k for k, name in enumerate(course_lessons())}
    lessons = sorted({s.row.lesson for s in submissions}, key=lambda n: (order.get(n, len(order)), n))
    possible = {s.row.lesson: s.final["total_max"] for s in submissions}
    totals: dict[str, dict[str, float]] = {}
    for s in submissions:
        totals.setdefault(s.row.student_id, {})[s.row.lesson] = s.final["total"] if s.row.status == "graded" else 0.0
    return lessons, possible, totals


def rows(fmt: str, submissions: list[Submission], id_column: str = "SIS User ID") -> list[list[str]]:
    lessons, possible, totals = table(submissions)
    if fmt == "canvas":
        if id_column not in CANVAS_IDS:
            raise SystemExit(f"--canvas-id must be one of {', '.join(CANVAS_IDS)}")
        found = [CANVAS_HEADER + lessons, [POINTS_POSSIBLE, "", "", "", ""] + [number(possible[n]) for n in lessons]]
        for student in sorted(totals):
            ids = ["", "", ""]
            ids[CANVAS_HEADER[1:4].index(id_column)] = student
            found.append([student, *ids, ""] + [number(totals[student].get(n, 0.0)) for n in lessons])
        return found
    if fmt == "wide":
        found = [["student_id", *lessons, "total"],
                 ["points_possible", *(number(possible[n]) for n in lessons), number(sum(possible.values()))]]
        for student in sorted(totals):
            mine = [totals[student].get(n, 0.0) for n in lessons]
            found.append([student, *map(number, mine), number(sum(mine))])
        return found
    raise SystemExit(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")


def export(out: Path, fmt: str, target: Path | None = None, id_column: str = "SIS User ID") -> Path:
    """Write the export of OUT (default OUT/export-<format>.csv) and return its path."""
    out = Path(out)
    submissions = read_submissions(out)
    save_grades(out, submissions)
    found = rows(fmt, submissions, id_column)
    target = Path(target) if target else out / f"export-{fmt}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([safe_cell(v) for v in row] for row in found)
    os.replace(tmp, target)
    waiting = [s for s in submissions if s.final["manual_pending"]]
    if waiting:
        print(f"note: {len(waiting)} submissions still have written answers to grade in formgrader "
              f"({sum(s.final['manual_pending'] for s in waiting):g} points); their totals leave them out",
              file=sys.stderr)
    return target
