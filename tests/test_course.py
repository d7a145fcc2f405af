"""The real course end to end: every lesson's solution runs, grades to full marks, and its student copy is safe.

One autograde batch grades, for every lesson, a reference submission (which also writes warnings to
stderr), the untouched student copy, a partial submission (only the first exercise solved) and, where
listed below, a known wrong answer whose feedback must name the misconception.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import key as answer_key
from grader import synthetic
from grader.check import problems
from grader.lessons import REPO, lessons, source_notebook, student_notebook

LESSONS = lessons()
STDERR_NOISE = "import sys, warnings\nwarnings.warn('deprecated!')\nprint('debug output', file=sys.stderr)"
# lesson -> (exercise cell, a wrong answer, words its feedback must contain)
WRONG_ANSWERS = {
    "01_superposition_basics": ("ex_cosine_similarities", '''
def cosine_similarities(W):
    W_normed = W / W.norm(dim=0, keepdim=True)
    return (W_normed.T @ W_normed).abs()
''', "you used |cos|"),
    "02_toy_model": ("ex_forward", '''
def forward(W, b, x):
    return torch.relu(torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x)))
''', "you forgot the bias"),
    "06_sparse_autoencoders": ("ex_match_features", '''
def match_features(W_dec, W):
    cos = (W_dec / W_dec.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True))
    best = cos.abs().max(dim=0)
    return best.values, best.indices
''', "you used |cos|"),
    "07_neurons_and_computation": ("ex_neuron_forward", '''
def neuron_forward(W1, W2, b, x):
    h = torch.relu(torch.einsum("ihf,bif->bih", W1, x))
    return torch.relu(torch.einsum("ifh,bih->bif", W2, h))
''', "you forgot the bias b"),
    "08_real_network": ("ex_selectivity", '''
def selectivity(table):
    top = table.amax(dim=0)
    rest = table.sum(dim=0) - top
    return (top - rest) / (top + rest)
''', "not their sum"),
}


def test_there_are_lessons():
    assert LESSONS[:2] == ["01_superposition_basics", "02_toy_model"]


def test_committed_notebooks_are_generated_and_clean():
    """`python -m grader check` on the real course: a stale student copy or a stored output fails CI."""
    assert problems() == [], "run `python -m grader release` and clear outputs"


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_copy_has_no_solutions_and_no_rubrics(lesson: str):
    source = nbformat.read(source_notebook(lesson), as_version=4)
    text = student_notebook(lesson).read_text()
    assert "BEGIN SOLUTION" not in text and "Rubric" not in text
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            lines = [line.strip() for line in body.splitlines() if len(line.strip()) > 25]
            assert not any(line in text for line in lines), f"{meta['grade_id']} leaks its solution"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_written_question_stays_in_the_student_copy(lesson: str):
    """The student copy blanks a written-answer cell, so its question must live in the markdown cell above."""
    cells = nbformat.read(source_notebook(lesson), as_version=4).cells
    student = nbformat.read(student_notebook(lesson), as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("written_"):
            assert cell.source.lstrip().startswith("**Reference answer"), f"{cell.id}: the question is inside the answer"
            question = cells[i - 1]
            assert question.cell_type == "markdown" and "nbgrader" not in question.metadata, cell.id
            assert any(c.source == question.source for c in student), f"{cell.id}: question missing from the student copy"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_test_cell_comes_from_one_declaration(lesson: str):
    """The key declares exactly the lesson's test cells; each test cell is the declared visible check, no hidden asserts."""
    source = nbformat.read(source_notebook(lesson), as_version=4)
    key = answer_key.load(source, REPO)
    tests = synthetic.tests_of(lesson)
    assert set(tests) == {e.grade_id for e in key.exercises}, "the key must declare exactly the lesson's test cells"
    assert {e.cell_id for e in key.exercises} <= set(synthetic.exercises(lesson)), "test_<name> grades ex_<name>"
    for cell in source.cells:
        exercise = key.exercise(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if exercise and cell.cell_type == "code" and cell.metadata["nbgrader"].get("grade"):
            assert cell.source == answer_key.test_cell_source(exercise) and tests[exercise.grade_id] == exercise.points


ROUTES = {  # ways to reach the library's answer from an exercise cell (issue 11)
    "aliased": "from {module} import {name} as {exercise}",
    "reached": """
import importlib, inspect
_library = importlib.import_module("{module}")
try:
    exec(inspect.getsource(getattr(_library, "{name}")))  # the source, if the sandbox had it
    {exercise} = {name}
except Exception:
    {exercise} = getattr(_library, "{name}")
""",
}


def aliasing_submission(lesson: str, route: str) -> nbformat.NotebookNode:
    """Every exercise answered by reaching for the library object that answers it (where one exists)."""
    key = answer_key.load(nbformat.read(source_notebook(lesson), as_version=4), REPO)
    nb = synthetic.make_submission(lesson)
    for exercise in key.exercises:
        if exercise.answers:
            module, _, name = exercise.answers[0].rpartition(".")
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise.cell_id)
            cell.source = ROUTES[route].format(module=module, name=name, exercise=exercise.name)
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("course")
    subs, out = root / "subs", root / "out"
    for lesson in LESSONS:
        first = synthetic.exercises(lesson)[0]
        synthetic.write_submission(synthetic.make_submission(lesson, "all", prelude=STDERR_NOISE), subs, "reference", lesson)
        synthetic.write_submission(synthetic.make_submission(lesson), subs, "blank", lesson)
        synthetic.write_submission(synthetic.make_submission(lesson, [first]), subs, "partial", lesson)
        for route in ROUTES:
            synthetic.write_submission(aliasing_submission(lesson, route), subs, route, lesson)
        if lesson in WRONG_ANSWERS:
            cell_id, wrong, _ = WRONG_ANSWERS[lesson]
            nb = synthetic.make_submission(lesson, "all")
            next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == cell_id).source = wrong
            synthetic.write_submission(nb, subs, "mistaken", lesson)
    result = subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out), "--workers", "2"],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    with (out / "grades.csv").open() as f:
        rows = {(r["student_id"], r["lesson"]): r for r in csv.DictReader(f)}
    return rows, out


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_reference_gets_full_marks_even_with_stderr_noise(graded, lesson: str):
    rows, _ = graded
    row = rows[("reference", lesson)]
    assert row["status"] == "graded" and float(row["score"]) == float(row["max_score"]) > 0, row


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_blank_student_copy_gets_zero_without_crashing(graded, lesson: str):
    rows, out = graded
    row = rows[("blank", lesson)]
    assert row["status"] == "graded" and float(row["score"]) == 0.0, row
    assert "not implemented yet" in (out / "feedback" / "blank" / lesson / f"{lesson}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_partial_submission_gets_exactly_the_points_of_what_it_solved(graded, lesson: str):
    rows, _ = graded
    first = synthetic.exercises(lesson)[0].removeprefix("ex_")
    assert float(rows[("partial", lesson)]["score"]) == synthetic.tests_of(lesson)[f"test_{first}"]


@pytest.mark.slow
@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("lesson", LESSONS)
def test_reaching_for_the_library_answers_earns_nothing_and_is_reported(graded, lesson: str, route: str):
    rows, out = graded
    row = rows[(route, lesson)]
    assert row["status"] == "graded" and float(row["score"]) == 0.0, row
    assert "called the withheld library answer" in row["reason"], row


@pytest.mark.slow
@pytest.mark.parametrize("lesson", sorted(WRONG_ANSWERS))
def test_a_known_wrong_answer_is_named_in_the_feedback(graded, lesson: str):
    rows, out = graded
    cell_id, _, words = WRONG_ANSWERS[lesson]
    points = synthetic.tests_of(lesson)[cell_id.replace("ex_", "test_")]
    row = rows[("mistaken", lesson)]
    assert 0 < float(row["score"]) <= float(row["max_score"]) - points  # later exercises may reuse the wrong one
    assert words in (out / "feedback" / "mistaken" / lesson / f"{lesson}.html").read_text()
