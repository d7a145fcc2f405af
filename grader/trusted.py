"""Trusted grading: decide what a submission runs, then judge what comes back, outside the sandbox.

The job a sandbox runs is built from the lesson's source, not from the submission: setup cells are
the instructor's versions, only the exercise cells (and cells the student added) are the student's,
and the lessons' demonstration cells are skipped (exercises must not depend on them; the pipeline
tests check that the reference solutions still get full marks this way).

Each test cell is graded from its exercise's declaration in the lesson's answer key (grader.key):
the job carries the exercise's secret inputs for this student, as plain data; the sandbox returns
only what the learner's object gave on them (the probe's data); the expectation on those inputs
(the reference's result and the known wrong answers') is computed here, and `utils.checks.judge`
decides. Nothing the sandbox says about itself earns a point: only the learner's results, compared
with a reference the sandbox never sees.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import nbformat

from grader import key as answer_key
from grader.lessons import course

# utils.checks (and torch under it) is imported where a job is built or judged: see grader.key.


@dataclass
class CellGrade:
    grade_id: str
    points: float
    max_points: float
    message: str  # the judge's message, or why the cell got no points
    misconception: str | None = None  # the declared id of the mistake, "other", or None when it passed
    parts: dict[str, bool] = field(default_factory=dict)  # part label -> earned, for an exercise declared in parts


@dataclass
class Judgement:
    grades: list[CellGrade]
    cell_events: dict[int, dict] = field(default_factory=dict)  # submission cell index -> runner "cell" event

    @property
    def score(self) -> float:
        return sum(g.points for g in self.grades)


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id_of(cell: nbformat.NotebookNode) -> str | None:
    """A cell's grade_id when it is a string (a submission may put anything in its metadata)."""
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) else None


def lesson_key(source: nbformat.NotebookNode) -> answer_key.LessonKey | None:
    return answer_key.load(source, course())


def fingerprint(source: nbformat.NotebookNode, sets: int) -> str:
    """Changes when anything that decides a grade changes: the lesson source, its key, the secret, the input sets."""
    digest = hashlib.sha256(nbformat.writes(source).encode())
    path = answer_key.key_path(source, course())
    if path is not None:
        digest.update(path.read_bytes())
    digest.update(f"{answer_key.secret_id()} {sets}".encode())
    return digest.hexdigest()


def tampering(submission: nbformat.NotebookNode, student_copy: nbformat.NotebookNode) -> list[str]:
    """Locked or test cells edited, points or kinds changed: reported; grading uses the originals anyway."""
    originals = {grade_id_of(c): c for c in student_copy.cells if grade_id_of(c)}
    found = []
    for cell in submission.cells:
        meta, grade_id = nbgrader_meta(cell), grade_id_of(cell)
        original = originals.get(grade_id)
        if original is None:
            if meta.get("grade"):
                found.append(f"an added cell ({grade_id or 'no grade_id'}) claims to be graded"
                             + (f" for {meta.get('points')} points" if meta.get("points") else "") + " (ignored)")
            continue
        kept = nbgrader_meta(original)
        changed = [key for key in ("points", "grade", "solution", "locked") if meta.get(key) != kept.get(key)]
        if changed:
            found.append(f"cell {grade_id}: its {', '.join(changed)} metadata was changed (ignored)")
        if kept.get("locked") and not kept.get("solution") and cell.source != original.source:
            found.append(f"cell {grade_id} is locked but was edited (the original ran instead)")
        if cell.cell_type != original.cell_type:
            found.append(f"cell {grade_id} changed from {original.cell_type} to {cell.cell_type}")
    return found


def build_job(submission: nbformat.NotebookNode, source: nbformat.NotebookNode, student: str, cell_seconds: float,
              sets: int = answer_key.GRADED_SETS, digest: str = "",
              inputs_key: bytes | None = None) -> tuple[dict, dict[str, list]]:
    """(the job the sandbox runs, the secret inputs per grade_id) for one student's submission (file sha256 `digest`;
    `inputs_key`: its grader.key.submission_key, when the instructor's secret is not at hand).

    The job lists the cells to run in the submission's order; where a test cell stood, the probe of its
    exercise with this student's inputs (plain data). The inputs are also returned, for the judge.
    """
    from utils.checks import encode_plain
    key = lesson_key(source)
    by_id = {grade_id_of(c): c for c in source.cells if grade_id_of(c)}
    source_ids = {c.get("id") for c in source.cells}
    cells, seen, inputs = [], set(), {}

    def add_graded(index: int, grade_id: str, student_source: str) -> None:
        original, meta = by_id[grade_id], nbgrader_meta(by_id[grade_id])
        seen.add(grade_id)
        if original.cell_type != "code":
            return
        exercise = key.exercise(grade_id) if key and meta.get("grade") else None
        if meta.get("solution"):
            cells.append({"index": index, "grade_id": grade_id, "source": student_source})
        elif exercise is not None:
            inputs[grade_id] = answer_key.graded_inputs(key, exercise, student, sets, digest, inputs_key)
            cells.append({"index": index, "grade_id": grade_id, "probe": {
                "module": key.probe_module, "exercise": exercise.name, "object": exercise.name,
                "inputs": [encode_plain(i) for i in inputs[grade_id]]}})
        elif not meta.get("grade"):  # the setup cells: the instructor's version
            cells.append({"index": index, "grade_id": grade_id, "source": original.source})

    for index, cell in enumerate(submission.cells):
        grade_id = grade_id_of(cell)
        if grade_id in by_id and grade_id not in seen:
            add_graded(index, grade_id, cell.source if cell.cell_type == "code" else "")
        elif grade_id is None and cell.cell_type == "code" and cell.get("id") not in source_ids:
            cells.append({"index": index, "grade_id": None, "source": cell.source})  # a cell the student added
    for grade_id in by_id:  # deleted cells still run (setup, tests) or count as unanswered
        if grade_id not in seen:
            add_graded(-1, grade_id, "")
    return {"cells": cells, "cell_timeout": cell_seconds}, inputs


def parse_events(text: str) -> tuple[dict[int, dict], dict[str, dict[int, list[dict]]], dict]:
    """The runner's JSON lines -> (cell events by index, probe events by grade_id and set, the "done" event).

    Lines that are not events are skipped, whatever they hold. Every probe event is kept, so that a
    result reported twice for the same set (a submission writing records of its own) can be refused.
    """
    cells: dict[int, dict] = {}
    probes: dict[str, dict[int, list[dict]]] = {}
    done: dict = {}
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except Exception:  # noqa: BLE001 - a line may hold anything (huge integers, deep nesting, bad bytes)
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        if kind == "cell" and type(event.get("index")) is int:
            cells.setdefault(event["index"], event)
        elif kind == "probe" and type(event.get("set")) is int and isinstance(event.get("grade_id"), str):
            probes.setdefault(event["grade_id"], {}).setdefault(event["set"], []).append(event)
        elif kind == "done" and not done:
            done = event
    return cells, probes, done


def judge(events: str, source: nbformat.NotebookNode, inputs: dict[str, list], ended: str) -> Judgement:
    """Points for every autograded cell of the lesson, from the sandbox's events. `ended` says how the run ended."""
    key = lesson_key(source)
    cells, probes, _ = parse_events(events)
    grades = []
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if not (meta.get("grade") and cell.cell_type == "code"):
            continue
        grade_id, points = grade_id_of(cell), float(meta.get("points", 0))
        exercise = key.exercise(grade_id) if key else None
        if exercise is None:
            grades.append(CellGrade(grade_id, 0.0, points, "this test cell has no declaration in the answer key, so "
                                                           "it cannot be graded (tell your instructor)", "other"))
            continue
        grades.append(_judge_sets(key, exercise, probes.get(grade_id, {}), inputs.get(grade_id, []), ended, points))
    return Judgement(grades, cell_events=cells)


def _judge_sets(key: answer_key.LessonKey, exercise: answer_key.Exercise, results: dict[int, list[dict]],
                inputs: list, ended: str, points: float) -> CellGrade:
    """The cell's grade over every input set: the whole exercise must be right on all of them, or, for an
    exercise declared in parts, each part on all of them (its score is the sum of the parts passed). The
    message is the first failure's; a result that is missing or malformed costs every part, a wrong case only
    its own part."""
    from utils.checks import decode_plain, judge as judge_results, judged
    features = key.checks.features.get(exercise.name)
    passed = {part.label: True for part in exercise.parts}
    failure: tuple[str, str | None] | None = None
    message = ""
    for k, given in enumerate(inputs):
        events = results.get(k, [])
        if len(events) > 1:
            return CellGrade(exercise.grade_id, 0.0, points, "more than one result was reported for this exercise: "
                             "records written by the submission itself are refused", "forged_results")
        if not events:
            return CellGrade(exercise.grade_id, 0.0, points, f"not checked: the notebook never got this far ({ended})",
                             "did_not_run")
        event = events[0]
        if event.get("error") is not None:
            return CellGrade(exercise.grade_id, 0.0, points, str(event["error"])[:2000], "did_not_run")
        try:
            data = judged(decode_plain(str(event.get("data"))), features, given)
            # The reference alone tells a right result; the known wrong answers are run only to name a mistake
            # (in a result of the probe's form, a dict: anything else is judged before they are looked at).
            expected = answer_key.expectation(key, exercise, given, wrong=False)
            verdict = judge_results(data, expected, reveal=False)
            if verdict.misconception == "other" and isinstance(data, dict):
                expected = answer_key.expectation(key, exercise, given)
                verdict = judge_results(data, expected, reveal=False)
            for part in exercise.parts if not verdict.ok else ():
                mine = {c: data[c] for c in part.cases if c in data} if isinstance(data, dict) else data
                passed[part.label] &= judge_results(mine, answer_key.part_expectation(expected, part.cases),
                                                    reveal=False).ok
        except Exception as error:  # noqa: BLE001 - whatever came back, it is this submission's problem only
            return CellGrade(exercise.grade_id, 0.0, points, f"the result has an unexpected form "
                             f"({type(error).__name__}: {str(error)[:200]})", "other")
        if not verdict.ok and failure is None:
            failure = verdict.message, verdict.misconception
        if failure is not None and not any(passed.values()):
            break  # nothing left to earn: the other sets' expectations (a trained reference, maybe) are not needed
        message = message or verdict.message
    if failure is None:
        return CellGrade(exercise.grade_id, points, points, message, None, passed)
    if not exercise.parts:
        return CellGrade(exercise.grade_id, 0.0, points, failure[0], failure[1])
    earned = min(points, float(sum(part.points for part in exercise.parts if passed[part.label])))
    return CellGrade(exercise.grade_id, earned, points, f"{failure[0]} {parts_note(exercise, passed)}", failure[1],
                     passed)


def parts_note(exercise: answer_key.Exercise, passed: dict[str, bool]) -> str:
    """Which parts of an exercise earned their points, e.g. "Right: 1-D input (1 pt). Not yet: a batch (1 pt)."."""
    def listed(parts: list[answer_key.Part]) -> str:
        return "; ".join(f"{part.label} ({part.points:g} pt)" for part in parts)
    right = [p for p in exercise.parts if passed.get(p.label)]
    wrong = [p for p in exercise.parts if not passed.get(p.label)]
    return " ".join(text for text in (f"Right: {listed(right)}." if right else "",
                                      f"Not yet: {listed(wrong)}." if wrong else "") if text)


def reached_for_answers(submission: nbformat.NotebookNode, source: nbformat.NotebookNode) -> list[str]:
    """Exercise or added cells that name a library object which answers one of this lesson's exercises."""
    key = lesson_key(source)
    if key is None:
        return []
    answers = sorted({answer for exercise in key.exercises for answer in exercise.answers})
    source_ids = {c.get("id") for c in source.cells}
    found = []
    for index, cell in enumerate(submission.cells):
        if cell.cell_type != "code" or not isinstance(cell.source, str):
            continue
        label = grade_id_of(cell) if nbgrader_meta(cell).get("solution") else \
            (f"added cell {index + 1}" if cell.get("id") not in source_ids else None)
        for answer in answers if label else ():
            name = answer.rpartition(".")[2]
            pattern = (rf"\.\s*{re.escape(name)}\b"  # an attribute of whatever the module was imported as
                       rf"|\bimport\b[^\n]*\b{re.escape(name)}\b")
            if re.search(pattern, cell.source):
                found.append(f"{label} names the library answer {answer}")
    return found


def demonstration_helpers(submission: nbformat.NotebookNode, source: nbformat.NotebookNode,
                          judgement: Judgement) -> list[str]:
    """Reasons a person can act on when grading hit a NameError for something a demonstration cell defines."""
    source_ids = {c.get("id") for c in source.cells if not nbgrader_meta(c)}
    demo_code = "\n".join(c.source for c in submission.cells if c.cell_type == "code" and not nbgrader_meta(c)
                          and c.get("id") in source_ids and isinstance(c.source, str))
    texts = [g.message for g in judgement.grades] + [str(e.get("error") or "") for e in judgement.cell_events.values()]
    missing = sorted({name for text in texts for name in re.findall(r"name '(\w+)' is not defined", text)})
    found = []
    for name in missing:
        if re.search(rf"^\s*(def|class)\s+{name}\b|^\s*{name}\s*=|^\s*(from\s+\S+\s+)?import\b[^\n]*\b{name}\b",
                     demo_code, re.MULTILINE):
            found.append(f"`{name}` is defined in a demonstration cell, which grading does not run (it runs only the "
                         f"exercise cells and the cells you added): move `{name}` into the exercise cell that uses it")
    return found
