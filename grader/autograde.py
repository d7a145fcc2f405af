"""`python -m grader autograde SUBMISSIONS --out OUT`: grade a folder of submissions, safely and in parallel.

SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb  ->  OUT/grades.csv, OUT/feedback/<student_id>/<lesson>/,
OUT/results/ (one record per graded submission: what makes a re-run resume) and OUT/workspace/ (an
nbgrader course folder with the gradebook, for formgrader).

Per submission, in this (trusted) process: inspect the file and derive the key of its secret inputs from
the instructor's secret; on a grading worker (a thread here, or a Dask worker process, possibly on another
machine): build the job from the lesson's source (the secret inputs, from that key), run it in a fresh
sandbox (grader.sandbox), then judge the plain results (grader.trusted) and render the feedback page, so
that building and judging run in parallel too (with Dask workers this process never imports torch); back
here: write the record, the feedback, the gradebook and grades.csv. Only this process writes those, one
submission at a time, each write atomic, so killing the grader at any moment leaves them consistent, and
the next run picks up where it stopped.
"""

from __future__ import annotations

import compileall
import copy
import csv
import hashlib
import json
import os
import re
import stat
import threading
from contextlib import nullcontext
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as local_wait
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from tqdm.auto import tqdm

from grader import feedback, sandbox, skip_collection_at_exit, timing, trusted, workspace
from grader.key import GRADED_SETS, submission_key
from grader.view import withheld_view
from grader.lessons import resolve, source_notebook, student_notebook
from grader.submission import MAX_NOTEBOOK_BYTES, InvalidSubmission, inspect

if TYPE_CHECKING:  # nbgrader's import costs 0.6 s, which the grading workers (importing this module) never need
    from dask.distributed import LocalCluster
    from nbgrader.api import Gradebook

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # matched whole (fullmatch): no trailing newline
GRADING_CODE = [Path(__file__).parent]  # the grader package, answer keys included


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
    flags: str = ""  # evidence for a person to look at (hard links, identical notebooks); never changes a score


@dataclass
class Options:
    limits: sandbox.Limits = sandbox.Limits()
    sandboxed: bool = True
    sets: int = GRADED_SETS  # secret input sets per exercise and student
    workers: int = max(1, os.cpu_count() or 1)
    scheduler: str | None = None  # None: threads on this machine; "local" or an address: Dask distributed
    force: tuple[str, ...] | None = None  # regrade even if unchanged: () everyone, or these students


@dataclass
class Pending:
    """A submission waiting for its grading worker, with what the worker needs to build its job."""

    row: Result
    source: nbformat.NotebookNode
    submission: nbformat.NotebookNode
    problems: list[str]  # found here (the file, edited locked cells); the worker adds the cells naming answers
    record: Path
    key: dict
    limits: sandbox.Limits
    sets: int
    inputs_key: bytes  # grader.key.submission_key: this submission's secret inputs, without the secret itself
    views: Path  # where the lesson's withheld view of utils is made (OUT/views)
    retried: bool = False


@dataclass
class Job:
    """A submission's sandbox job, built on its grading worker (where the answer key, and torch, are imported)."""

    job: dict
    inputs: dict[str, list]  # grade_id -> this student's secret input sets (never sent back from the sandbox)
    problems: list[str]  # exercise or added cells that name a library answer


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
    students = sorted(p.name for p in submissions.iterdir() if p.is_dir() or p.is_symlink())
    kept = [r for r in read_grades(out / "grades.csv") if r.lesson not in lessons]  # --lesson keeps the others
    code = grading_code_digest()
    ws = workspace.prepare(out / "workspace", lessons, code)
    results: dict[tuple[str, str], Result] = {}
    pending: list[Pending] = []
    reused = 0
    for name in lessons:
        source = nbformat.read(source_notebook(name), as_version=4)
        student_copy = nbformat.read(student_notebook(name), as_version=4)
        limits = options.limits if options.limits.wall_seconds else \
            replace(options.limits, wall_seconds=timing.default_timeout(name, source))
        fingerprint = {"lesson": trusted.fingerprint(source, options.sets), "code": code,
                       "limits": {k: v for k, v in asdict(limits).items() if k != "threads"}}
        for student in students:
            row = Result(student, name, 0.0, *_max_points(source), status="graded")
            try:
                prepared = prepare(submissions, row, source, student_copy, fingerprint, out, options, limits)
            except Exception as error:  # noqa: BLE001 - one submission can only cost its own row
                prepared = _with(row, "error", f"grading failed before the run: {type(error).__name__}: {error}"), False
            if isinstance(prepared, Pending):
                pending.append(prepared)
            else:
                results[(student, name)], was_reused = prepared
                reused += was_reused
    write_grades(out / "grades.csv", list(results.values()) + kept)
    bar = tqdm(total=len(pending), desc="grading", unit="submission", disable=not progress or not pending)
    from nbgrader.api import Gradebook

    # One gradebook session for the batch: opening one checks the whole database (about 0.1 s a submission).
    with Gradebook(f"sqlite:///{ws / 'gradebook.db'}") if pending else nullcontext() as gradebook:
        for task, outcome in run_all(pending, options):
            results[(task.row.student_id, task.row.lesson)] = finish_safely(task, outcome, ws, out, gradebook)
            write_grades(out / "grades.csv", list(results.values()) + kept)
            bar.update()
    bar.close()
    ordered = [results[(s, n)] for n in lessons for s in students]
    flag_shared_notebooks(ordered, submissions)
    write_grades(out / "grades.csv", ordered + kept)
    print(summary(ordered, reused))
    class_report(out)
    return ordered


def class_report(out: Path) -> Path | None:
    """Once the grades are saved: the missing and invalid submissions into the gradebook (grader.gradebook), then
    OUT/report.html (grader.report), which also adds the manual points to grades.csv. A failure only says why."""
    try:
        from grader.gradebook import record_not_graded  # imported here: both import this module
        from grader.report import write
        record_not_graded(out / "workspace", read_grades(out / "grades.csv"))
        page = write(out)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the grades are written; the report is extra
        print(f"the class report could not be written ({type(error).__name__}: {error}); the grades are saved. "
              f"Try again with `python -m grader report {out}`.")
        return None
    print(f"class report: {page}")
    return page


def grading_code_digest() -> str:
    """Everything that judges a submission: the grader package, the answer keys, and the library they run."""
    digest = hashlib.sha256()
    for folder in (*GRADING_CODE, sandbox.UTILS):
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _worth_retrying(run: sandbox.Run) -> bool:
    return run.status == "timeout" or run.detail.startswith("the grading worker failed")


def find_lessons(submissions: Path, lesson: str | None) -> list[str]:
    """The lesson named, or every lesson some student submitted."""
    if lesson is not None:
        return resolve(lesson)
    submitted = {p.name for p in submissions.glob("*/*") if p.is_dir()}
    return [name for name in resolve(None) if name in submitted]


def lesson_view(source: nbformat.NotebookNode, views: Path) -> str | None:
    """The copy of utils this lesson's submissions see: the library with the lesson's answers withheld."""
    key = trusted.lesson_key(source)
    answers = {answer: exercise.name for exercise in (key.exercises if key else ()) for answer in exercise.answers}
    if not answers:
        return None
    view = withheld_view(answers, views)
    # Bytecode compiled once per grading process, under the name the sandbox imports it by, not in every sandbox.
    compileall.compile_dir(view, ddir=str(sandbox.UTILS), quiet=2)
    return str(view)


def prepare(submissions: Path, row: Result, source: nbformat.NotebookNode, student_copy: nbformat.NotebookNode,
            fingerprint: dict, out: Path, options: Options,
            limits: sandbox.Limits | None = None) -> Pending | tuple[Result, bool]:
    """Everything before the grading worker: (row, reused) when no run is needed, else the Pending submission."""
    student, lesson = row.student_id, row.lesson
    if not STUDENT_ID.fullmatch(student):
        return _with(row, "invalid", "student folder name must be letters, digits, '.', '_' or '-'"), False
    path = submissions / student / lesson / f"{lesson}.ipynb"
    for level in (submissions / student, submissions / student / lesson, path):
        if level.is_symlink():
            return _with(row, "invalid", f"{level.relative_to(submissions)} is a symbolic link (to "
                                         f"{os.readlink(level)!s}): links are not graded; copy the file itself"), False
    try:
        info = os.lstat(path)
    except OSError:
        folder = path.parent
        others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        return _with(row, "missing", f"expected {lesson}.ipynb, found {', '.join(others)}" if others
                     else "no submission"), False
    if not stat.S_ISREG(info.st_mode):
        return _with(row, "invalid", f"{path.relative_to(submissions)} is not a regular file"), False
    if info.st_size > MAX_NOTEBOOK_BYTES:  # before anything reads it
        return _with(row, "invalid", f"notebook is {info.st_size / 2**20:.0f} MB, over the "
                                     f"{MAX_NOTEBOOK_BYTES // 2**20} MB limit; clear its outputs and submit again"), False
    if info.st_nlink > 1:
        row.flags = f"hard-linked ({info.st_nlink} names for the same file)"
    key = {"submission_sha256": notebook_digest(path), **fingerprint}
    record = out / "results" / student / f"{lesson}.json"
    previous = _read_record(record)
    forced = options.force is not None and (not options.force or student in options.force)
    if previous and previous.get("key") == key and not forced:
        return Result(**{**previous["result"], "flags": row.flags}), True
    try:
        inspection = inspect(path, source)
    except InvalidSubmission as error:
        return _with(row, "invalid", str(error)), False
    problems = inspection.problems + trusted.tampering(inspection.notebook, student_copy)
    return Pending(row, source, inspection.notebook, problems, record, key, limits or options.limits, options.sets,
                   submission_key(student, lesson, key["submission_sha256"]), out / "views")


def notebook_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def flag_shared_notebooks(rows: list[Result], submissions: Path) -> None:
    """Add a flag to every row whose notebook is byte-for-byte another student's (identical or hard-linked)."""
    by_digest: dict[tuple[str, str], list[Result]] = {}
    for row in rows:
        path = submissions / row.student_id / row.lesson / f"{row.lesson}.ipynb"
        if row.status == "graded" and path.is_file() and not path.is_symlink() \
                and path.stat().st_size <= MAX_NOTEBOOK_BYTES:
            by_digest.setdefault((row.lesson, notebook_digest(path)), []).append(row)
    for group in by_digest.values():
        for row in group if len(group) > 1 else ():
            others = ", ".join(r.student_id for r in group if r is not row)
            row.flags = "; ".join(f for f in (row.flags, f"identical notebook to {others}") if f)


@dataclass
class Assessed:
    """A judged run, ready to be recorded."""

    row: Result
    judgement: trusted.Judgement
    graded: nbformat.NotebookNode  # the submission as graded, with the outputs of its sandboxed run
    page: str  # its feedback page (HTML)


@dataclass
class Outcome:
    """What a grading worker sends back for one submission."""

    run: sandbox.Run
    assessed: Assessed | None = None  # None: not judged (to be run again, or the worker was lost)
    error: str = ""  # why building the job or judging failed


def run_all(pending: list[Pending], options: Options):
    """Yield (task, Outcome) as submissions are graded: on local threads, or on a Dask cluster.

    A timeout or a lost worker is run once more at once (before it is final), while the others go on.
    """
    if not pending:
        return
    if options.scheduler is None:
        with ThreadPoolExecutor(max_workers=options.workers) as pool:
            yield from _stream(pending, lambda task: pool.submit(grade, task, options.sandboxed),
                               lambda futures: local_wait(futures, return_when=FIRST_COMPLETED).done)
        return
    from dask.distributed import Client, wait

    cluster = local_cluster(options.workers) if options.scheduler == "local" else None
    with Client(cluster if cluster is not None else options.scheduler) as client:
        yield from _stream(pending, lambda task: client.submit(grade, task, options.sandboxed, pure=False),
                           lambda futures: wait(list(futures), return_when="FIRST_COMPLETED").done)
    if cluster is not None:
        cluster.close()


def local_cluster(workers: int) -> LocalCluster:
    """A Dask LocalCluster of single-threaded worker processes, without the periodic work nothing here uses.

    On a small machine that work takes CPU from grading. Without a dashboard nothing reads the workers' sampling
    profiler or the system monitors (every 10 s instead of 0.5 s); tasks wait on the scheduler until a worker is free
    (each worker holds at most one more), so work stealing has next to nothing to move; the event loops' tick only
    times warnings; the nannies and workers still check the workers' memory, once a second. Measured with 2 workers
    on 2 cores, per lesson-01 submission: the main process (where the scheduler and the nannies run) spends 15-16 ms
    beyond recording results instead of 50-72 ms, and the profiler alone cost the workers about 0.1 core-s.
    """
    import dask
    from dask.distributed import LocalCluster

    quiet = {"distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.interval": "10s",
             "distributed.scheduler.work-stealing": False, "distributed.admin.tick.interval": "1s",
             "distributed.worker.memory.monitor-interval": "1s"}
    with dask.config.set(quiet):
        # The scheduler reads its settings as it starts; each nanny hands a worker it (re)starts its own config,
        # a copy made here, since dask.config.set restores the shared one in place on leaving this block.
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            config=copy.deepcopy(dask.config.config))


def _stream(pending: list[Pending], submit, first_done):
    """Submit every task; yield (task, Outcome) as each is final, submitting a second try where one is due."""
    futures = {submit(task): task for task in pending}
    while futures:
        for future in first_done(futures):
            task, outcome = futures.pop(future), _outcome(future)
            if outcome.assessed is None and not outcome.error and not task.retried and _worth_retrying(outcome.run):
                task.retried = True
                futures[submit(task)] = task
            else:
                yield task, outcome


def _outcome(future) -> Outcome:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a lost worker or a sandbox failure is one submission's error
        return Outcome(sandbox.Run("", "crashed", f"the grading worker failed: {type(error).__name__}: {error}"))


def grade(task: Pending, sandboxed: bool) -> Outcome:
    """On a grading worker: build the submission's job, run it in a fresh sandbox, then judge it and render its
    feedback page.

    A first try that timed out is sent back unjudged, to be run once more.
    """
    skip_collection_at_exit()  # a Dask worker's exit (closing the cluster) waits for it
    try:
        job = build(task)
        view = utils_view(task)
    except Exception as error:  # noqa: BLE001 - one submission can only cost its own row
        return Outcome(sandbox.Run("", "crashed", "not run"),
                       error=f"grading failed before the run: {type(error).__name__}: {error}")
    run = sandbox.run(json.dumps(job.job), task.limits, sandboxed, view)
    if _worth_retrying(run) and not task.retried:
        return Outcome(run)
    try:
        return Outcome(run, assess(task, run, job))
    except Exception as error:  # noqa: BLE001 - one submission can only cost its own row
        return Outcome(run, error=f"grading failed after the run: {type(error).__name__}: {error}")


def finish_safely(task: Pending, outcome: Outcome, ws: Path, out: Path, gradebook: Gradebook) -> Result:
    """finish(), where any failure (judging, feedback, gradebook) becomes this row's reason and the batch goes on.

    (A gradebook that cannot even be opened stops the batch before any submission runs: no row could be recorded.)"""
    try:
        return finish(task, outcome, ws, out, gradebook)
    except Exception as error:  # noqa: BLE001 - one submission can only cost its own row
        reason = f"grading failed after the run: {type(error).__name__}: {error}"
        try:
            gradebook.db.rollback()  # whatever this submission half wrote to the gradebook
        except Exception as also:  # noqa: BLE001
            reason += f" (and the gradebook could not be rolled back: {type(also).__name__}: {also})"
        return _with(task.row, "error", reason)


def finish(task: Pending, outcome: Outcome, ws: Path, out: Path, gradebook: Gradebook) -> Result:
    """Record a graded submission everywhere, from this process only: feedback, gradebook, result record."""
    if outcome.error:
        return _with(task.row, "error", outcome.error)
    if outcome.assessed is None:  # the worker was lost twice: not the submission's grade, so nothing is recorded
        return _with(task.row, "error", f"{outcome.run.detail} (also on a second try; the next run tries again)")
    assessed = outcome.assessed
    row, judgement = assessed.row, assessed.judgement
    feedback.save(assessed.page, row, out / "feedback" / row.student_id / row.lesson)
    record_in_gradebook(ws, gradebook, assessed.graded, row, judgement)
    _write_record(task.record, {"key": task.key, "result": asdict(row),
                                "grades": [asdict(g) for g in judgement.grades]})
    return row


# Judging computes references in this process's torch, whose random state is global, and building a job fills the
# answer key's caches: one at a time per process (Dask workers are processes of their own, so they run in parallel).
_JUDGING = threading.Lock()
_VIEWS: dict[tuple[str, str, str], str | None] = {}  # (views folder, lesson fingerprint, code digest) -> the view


def build(task: Pending) -> Job:
    """The submission's sandbox job and secret inputs (grader.trusted.build_job), and the cells that name answers."""
    with _JUDGING:
        job, inputs = trusted.build_job(task.submission, task.source, task.row.student_id, task.limits.cell_seconds,
                                        task.sets, inputs_key=task.inputs_key)
        return Job(job, inputs, trusted.reached_for_answers(task.submission, task.source))


def utils_view(task: Pending) -> str | None:
    """The lesson's withheld view of utils (lesson_view), made once per process and lesson, and again if its folder
    went (a Dask worker can outlive a run whose OUT was deleted)."""
    made = (str(task.views), task.key["lesson"], task.key["code"])
    with _JUDGING:
        if made not in _VIEWS or (_VIEWS[made] is not None and not Path(_VIEWS[made]).is_dir()):
            _VIEWS[made] = lesson_view(task.source, task.views)
        return _VIEWS[made]


def assess(task: Pending, run: sandbox.Run, job: Job) -> Assessed:
    """Judge a finished run and render its feedback; writes nothing."""
    row = task.row
    ended = run.detail or run.status
    with _JUDGING:
        judgement = trusted.judge(run.events, task.source, job.inputs, ended)
    row.score = judgement.score
    withheld = trusted.parse_events(run.events)[2].get("withheld")
    called = [f"called the withheld library answer {name}" for name in withheld if isinstance(name, str)][:5] \
        if isinstance(withheld, list) else []
    reasons = ([run.detail + (" (also on a second try)" if task.retried else "")] if run.status != "finished" else [])
    reasons += (task.problems + job.problems + called
                + trusted.demonstration_helpers(task.submission, task.source, judgement))
    _with(row, "graded", "; ".join(reasons))
    scores = {g.grade_id: (g.points, g.max_points, "code", g.message) for g in judgement.grades}
    scores.update({gid: (None, pts, "markdown", "") for gid, pts in _written_points(task.source).items()})
    graded_nb = feedback.graded_notebook(task.submission, task.source, judgement.cell_events)
    return Assessed(row, judgement, graded_nb, feedback.page(graded_nb, scores, row))


def record_in_gradebook(ws: Path, gradebook: Gradebook, graded_nb: nbformat.NotebookNode, row: Result,
                        judgement: trusted.Judgement) -> None:
    """Store the automatic scores where nbgrader's formgrader finds them; written answers await a person."""
    target = ws / "autograded" / row.student_id / row.lesson
    target.mkdir(parents=True, exist_ok=True)
    nbformat.write(feedback.with_verdicts(graded_nb, judgement.grades), target / f"{row.lesson}.ipynb")
    submitted = ws / "submitted" / row.student_id / row.lesson  # where formgrader counts an assignment's submissions
    submitted.mkdir(parents=True, exist_ok=True)
    nbformat.write(graded_nb, submitted / f"{row.lesson}.ipynb")
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
    for comment in gradebook.find_submission_notebook(row.lesson, row.lesson, row.student_id).comments:
        comment.auto_comment = None  # a reason left from when this submission was missing or invalid
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


# grades.csv's columns after Result's: the manual points from the gradebook (grader.gradebook.final_columns)
FINAL_COLUMNS = ("manual_score", "manual_pending", "adjustment", "total", "total_max")


def write_grades(path: Path, results: list[Result],
                 final: dict[tuple[str, str], dict[str, float]] | None = None) -> None:
    """Write grades.csv atomically: a crash mid-batch never leaves a half-written table.

    `final`: (student, lesson) -> FINAL_COLUMNS, read from the gradebook by `grader report`; left empty while
    grading (the report at the end of the run fills them in).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8", errors="replace") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(Result)] + list(FINAL_COLUMNS))
        writer.writeheader()
        writer.writerows({**{k: feedback.printable(v) if isinstance(v, str) else v for k, v in asdict(r).items()},
                          **(final or {}).get((r.student_id, r.lesson), {})} for r in results)
    os.replace(tmp, path)


def read_grades(path: Path) -> list[Result]:
    """The rows of an existing grades.csv (none when there is no readable one)."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    names, kept = {f.name for f in fields(Result)}, []
    for r in rows:
        try:
            kept.append(Result(**{**{k: v for k, v in r.items() if k in names},
                                  **{k: float(r[k]) for k in ("score", "max_score", "manual_max")}}))
        except (KeyError, TypeError, ValueError):
            continue  # a row nobody could have written (edited by hand): dropped, the others are kept
    return kept


def summary(results: list[Result], reused: int = 0) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("graded", "missing", "invalid", "error")}
    graded = [r for r in results if r.status == "graded"]
    mean = sum(r.score / r.max_score for r in graded if r.max_score) / max(1, len(graded))
    line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    again = f" ({reused} unchanged since the last run, not re-run)" if reused else ""
    return f"{len(results)} submissions: {line}{again}; mean automatic score of graded ones {100 * mean:.0f}%"
