"""`python -m grader autograde SUBMISSIONS --out OUT`: grade a folder of submissions, safely and in parallel.

SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb  ->  OUT/grades.csv, OUT/feedback/<student_id>/<lesson>/,
OUT/results/ (one record per graded submission: what makes a re-run resume) and OUT/workspace/ (an
nbgrader course folder with the gradebook, for formgrader).

Per submission, in this (trusted) process: inspect the file, build the job from the lesson's source;
in a sandbox (grader.sandbox), possibly on another machine (Dask): run it; back here: judge the plain
results (grader.trusted), then write the record, the feedback, the gradebook and grades.csv. Only this
process writes those, one submission at a time, each write atomic, so killing the grader at any moment
leaves them consistent, and the next run picks up where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import as_completed as local_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from tqdm.auto import tqdm

from grader import feedback, sandbox, trusted, workspace
from grader.key import GRADED_SETS
from grader.view import withheld_view
from grader.lessons import resolve, source_notebook, student_notebook
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


@dataclass
class Options:
    limits: sandbox.Limits = sandbox.Limits()
    sandboxed: bool = True
    sets: int = GRADED_SETS  # secret input sets per exercise and student
    workers: int = max(1, os.cpu_count() or 1)
    scheduler: str | None = None  # None: threads on this machine; "local" or an address: Dask distributed


@dataclass
class Pending:
    """A submission waiting for its sandbox run."""

    row: Result
    source: nbformat.NotebookNode
    submission: nbformat.NotebookNode
    job: dict
    inputs: dict[str, list]  # grade_id -> this student's secret input sets (never sent back from the sandbox)
    problems: list[str]
    record: Path
    key: dict
    utils_view: str | None


def autograde(submissions: Path, out: Path, lesson: str | None = None, options: Options | None = None,
              progress: bool = True) -> list[Result]:
    """Grade every student's submission of each lesson; one row per (student, lesson), whatever happens."""
    options = options or Options()
    submissions, out = submissions.resolve(), out.resolve()
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder; expected SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb")
    if options.sandboxed and not sandbox.bwrap_available():
        raise SystemExit("bubblewrap (bwrap) is not installed, so submissions cannot be sandboxed. Install it "
                         "(Debian/Ubuntu: sudo apt-get install bubblewrap) or, only for code you trust, pass "
                         "--unsafe-no-sandbox.")
    lessons = find_lessons(submissions, lesson)
    if not lessons:
        raise SystemExit(f"no lesson folders found under {submissions}/<student_id>/; expected e.g. "
                         f"{submissions}/alice/01_superposition_basics/01_superposition_basics.ipynb")
    students = sorted(p.name for p in submissions.iterdir() if p.is_dir())
    ws = workspace.prepare(out / "workspace", lessons)
    results: dict[tuple[str, str], Result] = {}
    pending: list[Pending] = []
    reused = 0
    for name in lessons:
        source = nbformat.read(source_notebook(name), as_version=4)
        student_copy = nbformat.read(student_notebook(name), as_version=4)
        fingerprint = trusted.fingerprint(source, options.sets)
        view = lesson_view(source, out)
        for student in students:
            prepared = prepare(submissions / student / name, student, name, source, student_copy, fingerprint, out,
                               options, view)
            if isinstance(prepared, Pending):
                pending.append(prepared)
            else:
                results[(student, name)], was_reused = prepared
                reused += was_reused
    write_grades(out / "grades.csv", list(results.values()))
    bar = tqdm(total=len(pending), desc="grading", unit="submission", disable=not progress or not pending)
    for task, run in run_all(pending, options):
        results[(task.row.student_id, task.row.lesson)] = finish(task, run, ws, out, options)
        write_grades(out / "grades.csv", list(results.values()))
        bar.update()
    bar.close()
    ordered = [results[(s, n)] for n in lessons for s in students]
    write_grades(out / "grades.csv", ordered)
    print(summary(ordered, reused))
    return ordered


def find_lessons(submissions: Path, lesson: str | None) -> list[str]:
    """The lesson named, or every lesson some student submitted."""
    if lesson is not None:
        return resolve(lesson)
    submitted = {p.name for p in submissions.glob("*/*") if p.is_dir()}
    return [name for name in resolve(None) if name in submitted]


def lesson_view(source: nbformat.NotebookNode, out: Path) -> str | None:
    """The copy of utils this lesson's submissions see: the library with the lesson's answers withheld."""
    key = trusted.lesson_key(source)
    answers = {answer: exercise.name for exercise in (key.exercises if key else ()) for answer in exercise.answers}
    return str(withheld_view(answers, out / "views")) if answers else None


def prepare(folder: Path, student: str, lesson: str, source: nbformat.NotebookNode,
            student_copy: nbformat.NotebookNode, fingerprint: str, out: Path,
            options: Options, view: str | None = None) -> Pending | tuple[Result, bool]:
    """Everything before the sandbox: (row, reused) when no run is needed, else the Pending job."""
    row = Result(student, lesson, 0.0, *_max_points(source), status="graded")
    if not STUDENT_ID.match(student):
        return _with(row, "invalid", "student folder name must be letters, digits, '.', '_' or '-'"), False
    path = folder / f"{lesson}.ipynb"
    if not path.is_file() or path.is_symlink():
        others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        return _with(row, "missing", f"expected {lesson}.ipynb, found {', '.join(others)}" if others
                     else "no submission"), False
    key = {"submission_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "fingerprint": fingerprint}
    record = out / "results" / student / f"{lesson}.json"
    previous = _read_record(record)
    if previous and previous.get("key") == key:
        return Result(**previous["result"]), True
    try:
        inspection = inspect(path, source)
    except InvalidSubmission as error:
        return _with(row, "invalid", str(error)), False
    problems = (inspection.problems + trusted.tampering(inspection.notebook, student_copy)
                + trusted.reached_for_answers(inspection.notebook, source))
    job, inputs = trusted.build_job(inspection.notebook, source, student, options.limits.cell_seconds, options.sets)
    return Pending(row, source, inspection.notebook, job, inputs, problems, record, key, view)


def run_all(pending: list[Pending], options: Options):
    """Yield (task, sandbox.Run) as runs finish: on local threads, or on a Dask cluster."""
    if not pending:
        return
    args = [(json.dumps(task.job), options.limits, options.sandboxed, task.utils_view) for task in pending]
    if options.scheduler is None:
        with ThreadPoolExecutor(max_workers=options.workers) as pool:
            futures: dict[Future, Pending] = {pool.submit(sandbox.run, *a): t for a, t in zip(args, pending)}
            for future in local_completed(futures):
                yield futures[future], _outcome(future)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = (LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True, dashboard_address=None)
               if options.scheduler == "local" else None)
    with Client(cluster if cluster is not None else options.scheduler) as client:
        futures = {client.submit(sandbox.run, *a, pure=False): t for a, t in zip(args, pending)}
        for future in as_completed(futures):
            yield futures[future], _outcome(future)
    if cluster is not None:
        cluster.close()


def _outcome(future) -> sandbox.Run:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a lost worker or a sandbox failure is one submission's error
        return sandbox.Run("", "crashed", f"the grading worker failed: {type(error).__name__}: {error}")


def finish(task: Pending, run: sandbox.Run, ws: Path, out: Path, options: Options) -> Result:
    """Judge a finished run and record it everywhere: result record, feedback, gradebook."""
    row = task.row
    ended = run.detail or run.status
    judgement = trusted.judge(run.events, task.source, task.inputs, ended)
    row.score = judgement.score
    withheld = trusted.parse_events(run.events)[2].get("withheld")
    called = [f"called the withheld library answer {name}" for name in withheld if isinstance(name, str)][:5] \
        if isinstance(withheld, list) else []
    reasons = ([run.detail] if run.status != "finished" else []) + task.problems + called
    _with(row, "graded", "; ".join(reasons))
    scores = {g.grade_id: (g.points, g.max_points, "code", g.message) for g in judgement.grades}
    scores.update({gid: (None, pts, "markdown", "") for gid, pts in _written_points(task.source).items()})
    graded_nb = feedback.graded_notebook(task.submission, task.source, judgement.cell_events)
    feedback.write(graded_nb, scores, row, out / "feedback" / row.student_id / row.lesson)
    record_in_gradebook(ws, graded_nb, row, judgement)
    _write_record(task.record, {"key": task.key, "result": asdict(row),
                                "grades": [asdict(g) for g in judgement.grades]})
    return row


def record_in_gradebook(ws: Path, graded_nb: nbformat.NotebookNode, row: Result, judgement: trusted.Judgement) -> None:
    """Store the automatic scores where nbgrader's formgrader finds them; written answers await a person."""
    target = ws / "autograded" / row.student_id / row.lesson
    target.mkdir(parents=True, exist_ok=True)
    nbformat.write(graded_nb, target / f"{row.lesson}.ipynb")
    with Gradebook(f"sqlite:///{ws / 'gradebook.db'}") as gradebook:
        if not any(s.id == row.student_id for s in gradebook.students):
            gradebook.add_student(row.student_id)
        gradebook.update_or_create_submission(row.lesson, row.student_id)
        for grade in judgement.grades:
            cell = gradebook.find_grade(grade.grade_id, row.lesson, row.lesson, row.student_id)
            cell.auto_score = grade.points
            cell.needs_manual_grade = cell.manual_score is not None
        for cell in graded_nb.cells:
            meta = trusted.nbgrader_meta(cell)
            if meta.get("grade") and cell.cell_type == "markdown":
                grade = gradebook.find_grade(meta["grade_id"], row.lesson, row.lesson, row.student_id)
                grade.auto_score, grade.needs_manual_grade = None, True
        gradebook.db.commit()


def _written_points(source: nbformat.NotebookNode) -> dict[str, float]:
    return {trusted.nbgrader_meta(c)["grade_id"]: float(trusted.nbgrader_meta(c).get("points", 0))
            for c in source.cells if trusted.nbgrader_meta(c).get("grade") and c.cell_type == "markdown"}


def _max_points(source: nbformat.NotebookNode) -> tuple[float, float]:
    """(automatic points, manually graded points) of a lesson's source notebook."""
    auto = manual = 0.0
    for cell in source.cells:
        meta = trusted.nbgrader_meta(cell)
        if meta.get("grade"):
            if cell.cell_type == "code":
                auto += float(meta.get("points", 0))
            else:
                manual += float(meta.get("points", 0))
    return auto, manual


def _with(row: Result, status: str, reason: str) -> Result:
    row.status, row.reason = status, reason
    return row


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def write_grades(path: Path, results: list[Result]) -> None:
    """Write grades.csv atomically: a crash mid-batch never leaves a half-written table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(Result)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    os.replace(tmp, path)


def summary(results: list[Result], reused: int = 0) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("graded", "missing", "invalid", "error")}
    graded = [r for r in results if r.status == "graded"]
    mean = sum(r.score / r.max_score for r in graded if r.max_score) / max(1, len(graded))
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    again = f" ({reused} unchanged since the last run, not re-run)" if reused else ""
    return f"{len(results)} submissions: {line}{again}; mean automatic score of graded ones {100 * mean:.0f}%"
