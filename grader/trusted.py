"""Trusted grading: decide what a submission runs, then judge what comes back, outside the sandbox.

The job a sandbox runs is built from the lesson's source, not from the submission: setup cells
and test cells are the instructor's versions, only the exercise cells (and cells the student added)
are the student's, and the lessons' demonstration cells are skipped (exercises must not depend on
them; the pipeline tests check that the reference solutions still get full marks this way).

A test cell whose lesson declares a probe (`EXERCISES` in the lesson's check module, named by the
notebook's `grader.checks` metadata) is graded here: the sandbox only returns the probe's plain data
for each seed, and the judge, run in this process, rebuilds the reference and decides. A test cell
without a probe is graded by running the instructor's cell in the sandbox (hidden tests included),
which is isolated but not tamper-proof; every lesson of this course declares probes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from types import ModuleType

import nbformat

from utils.checks import CheckFailed, decode_plain

SEEDS = (0, 1, 2)  # the visible check's seed and two more; the instructor can change them per run


@dataclass
class CellGrade:
    grade_id: str
    points: float
    max_points: float
    message: str  # the judge's message, or why the cell got no points


@dataclass
class Judgement:
    grades: list[CellGrade]
    problems: list[str] = field(default_factory=list)
    cell_events: dict[int, dict] = field(default_factory=dict)  # submission cell index -> runner "cell" event

    @property
    def score(self) -> float:
        return sum(g.points for g in self.grades)


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def checks_module(source: nbformat.NotebookNode) -> ModuleType | None:
    name = source.metadata.get("grader", {}).get("checks")
    return importlib.import_module(name) if name else None


def fingerprint(source: nbformat.NotebookNode, seeds: tuple[int, ...]) -> str:
    """Changes when anything that decides a grade changes: the lesson source, its checks, the seeds."""
    digest = hashlib.sha256(nbformat.writes(source).encode())
    module = checks_module(source)
    if module is not None and module.__file__:
        with open(module.__file__, "rb") as f:
            digest.update(f.read())
    digest.update(repr(seeds).encode())
    return digest.hexdigest()


def tampering(submission: nbformat.NotebookNode, student_copy: nbformat.NotebookNode) -> list[str]:
    """Locked or test cells edited, points or kinds changed: reported; grading uses the originals anyway."""
    originals = {nbgrader_meta(c).get("grade_id"): c for c in student_copy.cells if nbgrader_meta(c)}
    found = []
    for cell in submission.cells:
        meta = nbgrader_meta(cell)
        original = originals.get(meta.get("grade_id"))
        if original is None:
            continue
        kept = nbgrader_meta(original)
        changed = [key for key in ("points", "grade", "solution", "locked") if meta.get(key) != kept.get(key)]
        if changed:
            found.append(f"cell {meta['grade_id']}: its {', '.join(changed)} metadata was changed (ignored)")
        if kept.get("locked") and not kept.get("solution") and cell.source != original.source:
            found.append(f"cell {meta['grade_id']} is locked but was edited (the original ran instead)")
        if cell.cell_type != original.cell_type:
            found.append(f"cell {meta['grade_id']} changed from {original.cell_type} to {cell.cell_type}")
    return found


def build_job(submission: nbformat.NotebookNode, source: nbformat.NotebookNode, seeds: tuple[int, ...],
              cell_seconds: float) -> dict:
    """The cells the sandbox runs, in the submission's order, with probes where the test cells are."""
    module = checks_module(source)
    exercises = getattr(module, "EXERCISES", {}) if module else {}
    by_id = {nbgrader_meta(c)["grade_id"]: c for c in source.cells if "grade_id" in nbgrader_meta(c)}
    source_ids = {c.get("id") for c in source.cells}
    cells, seen = [], set()

    def add_graded(index: int, grade_id: str, student_source: str) -> None:
        original, meta = by_id[grade_id], nbgrader_meta(by_id[grade_id])
        seen.add(grade_id)
        if original.cell_type != "code":
            return
        if meta.get("solution"):
            cells.append({"index": index, "grade_id": grade_id, "source": student_source})
        elif meta.get("grade") and grade_id in exercises:
            name, probe, _ = exercises[grade_id]
            cells.append({"index": index, "grade_id": grade_id, "probe": {
                "grade_id": grade_id, "module": module.__name__, "probe": probe.__name__, "object": name,
                "seeds": list(seeds)}})
        else:  # setup cells, and test cells without a probe: the instructor's version
            cells.append({"index": index, "grade_id": grade_id, "source": original.source})

    for index, cell in enumerate(submission.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in by_id and grade_id not in seen:
            add_graded(index, grade_id, cell.source if cell.cell_type == "code" else "")
        elif grade_id is None and cell.cell_type == "code" and cell.get("id") not in source_ids:
            cells.append({"index": index, "grade_id": None, "source": cell.source})  # a cell the student added
    for grade_id in by_id:  # deleted cells still run (setup, tests) or count as unanswered
        if grade_id not in seen:
            add_graded(-1, grade_id, "")
    return {"cells": cells, "cell_timeout": cell_seconds}


def parse_events(text: str) -> tuple[dict[int, dict], dict[str, dict[int, dict]]]:
    """The runner's JSON lines -> (cell events by index, probe events by grade_id and seed). Bad lines are skipped."""
    cells: dict[int, dict] = {}
    probes: dict[str, dict[int, dict]] = {}
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if not isinstance(event, dict):
            continue
        if event.get("event") == "cell" and isinstance(event.get("index"), int):
            cells.setdefault(event["index"], event)
        elif event.get("event") == "probe" and isinstance(event.get("seed"), int):
            probes.setdefault(str(event.get("grade_id")), {}).setdefault(event["seed"], event)
    return cells, probes


def judge(events: str, source: nbformat.NotebookNode, job: dict, seeds: tuple[int, ...], ended: str) -> Judgement:
    """Points for every autograded cell of the lesson, from the sandbox's events. `ended` says how the run ended."""
    module = checks_module(source)
    exercises = getattr(module, "EXERCISES", {}) if module else {}
    cells, probes = parse_events(events)
    by_grade_id = {c["grade_id"]: c for c in job["cells"] if c.get("grade_id")}
    grades = []
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if not (meta.get("grade") and cell.cell_type == "code"):
            continue
        grade_id, points = meta["grade_id"], float(meta.get("points", 0))
        if grade_id in exercises:
            ok, message = _judge_probes(exercises[grade_id][2], probes.get(grade_id, {}), seeds, ended)
        else:
            event = cells.get(by_grade_id[grade_id]["index"]) if grade_id in by_grade_id else None
            ok = bool(event) and event.get("error") is None
            message = "passed" if ok else str((event or {}).get("error") or f"the test cell did not run ({ended})")
        grades.append(CellGrade(grade_id, points if ok else 0.0, points, message))
    return Judgement(grades, cell_events=cells)


def _judge_probes(judge_fn, results: dict[int, dict], seeds: tuple[int, ...], ended: str) -> tuple[bool, str]:
    """(True, the judge's message) when it accepts the data for every seed, else (False, the first failure)."""
    message = ""
    for seed in seeds:
        event = results.get(seed)
        if event is None:
            return False, f"not checked: the notebook never got this far ({ended})"
        if event.get("error") is not None:
            return False, str(event["error"])[:2000]
        try:
            message = judge_fn(decode_plain(str(event.get("data"))), seed)
        except CheckFailed as failed:
            return False, str(failed)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError, RecursionError) as error:
            return False, f"the result has an unexpected form ({type(error).__name__}: {str(error)[:200]})"
    return True, str(message)
