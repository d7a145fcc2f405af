"""Each lesson's default time limit, from the measured grading time of its reference solution.

`grader release` grades the reference solution of each lesson once (unsandboxed: it is the
instructor's own code) and records its wall time beside the answer key, in `limits.json`. The
default limit for a submission is then MULTIPLE times that, and at least MINIMUM seconds (room for a
loaded machine and for a student's slower but honest code): a sleeping submission holds a grading
worker for half a minute, not ten. `--timeout` still overrides it.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import nbformat

from grader import key as answer_key
from grader import sandbox, synthetic, trusted
from grader.lessons import course
from grader.view import withheld_view

MULTIPLE, MINIMUM = 8.0, 30.0
FALLBACK = 600.0  # a lesson never measured (no key, or released before this existed)


def limits_file(source: nbformat.NotebookNode) -> Path | None:
    path = answer_key.key_path(source, course())
    return path.parent / "limits.json" if path else None


def measure(lesson: str, source: nbformat.NotebookNode) -> float:
    """Seconds the grader's run of the reference solution takes (the sandbox's job, without the sandbox)."""
    key = trusted.lesson_key(source)
    answers = {answer: exercise.name for exercise in key.exercises for answer in exercise.answers}
    with tempfile.TemporaryDirectory(prefix="timing-") as cache:
        view = withheld_view(answers, Path(cache)) if answers else None
        job, _ = trusted.build_job(synthetic.make_submission(lesson, "all"), source, "timing", 120.0)
        start = time.perf_counter()
        run = sandbox.run(json.dumps(job), sandbox.Limits(), sandboxed=False, utils_view=str(view) if view else None)
        seconds = time.perf_counter() - start
    if run.status != "finished":
        raise SystemExit(f"{lesson}: the reference solution did not finish when timed ({run.detail})")
    return seconds


def record(lesson: str, source: nbformat.NotebookNode) -> Path | None:
    """Measure the lesson's reference and store it in limits.json beside the key; returns that file."""
    path = limits_file(source)
    if path is None:
        return None
    recorded = json.loads(path.read_text()) if path.exists() else {}
    recorded[lesson] = {"reference_seconds": round(measure(lesson, source), 2)}
    path.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return path


def recorded_seconds(lesson: str, source: nbformat.NotebookNode) -> float | None:
    """The reference's recorded grading time, or None when it was never measured."""
    path = limits_file(source)
    try:
        return float(json.loads(path.read_text())[lesson]["reference_seconds"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def default_timeout(lesson: str, source: nbformat.NotebookNode) -> float:
    """MULTIPLE x the recorded reference time, at least MINIMUM seconds (FALLBACK when never measured)."""
    seconds = recorded_seconds(lesson, source)
    return FALLBACK if seconds is None else round(max(MULTIPLE * seconds, MINIMUM))
