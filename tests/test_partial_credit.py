"""Partial credit: an exercise declared in parts scores the parts it passes; all or nothing stays the default.

Judged here as the grader judges a sandbox's events (grader.trusted), without running a sandbox: the
probe runs the known wrong answers of lesson 01's measure_interference on a student's secret inputs.
"""

from __future__ import annotations

import dataclasses
import json

import nbformat
import pytest

from grader import key as answer_key
from grader import trusted
from grader.key import Exercise, Part
from grader.lessons import lessons, source_notebook, student_notebook
from utils.checks import encode_plain

LESSON = "01_superposition_basics"


@pytest.fixture(scope="module")
def lesson() -> answer_key.LessonKey:
    return trusted.lesson_key(nbformat.read(source_notebook(LESSON), as_version=4))


def grade(key: answer_key.LessonKey, exercise: Exercise, answer, broken_set: int | None = None) -> trusted.CellGrade:
    """The cell grade of `answer` on a student's secret inputs, as judged from the events a sandbox would send."""
    inputs = answer_key.graded_inputs(key, exercise, "alice", 2, "digest")
    probe = key.checks.probe(exercise.name)
    lines = [json.dumps({"event": "probe", "grade_id": exercise.grade_id, "set": k,
                         **({"error": "NameError: name 'np' is not defined"} if k == broken_set
                            else {"data": encode_plain(probe(answer, given))})})
             for k, given in enumerate(inputs)]
    results = trusted.parse_events("\n".join(lines))[1].get(exercise.grade_id, {})
    return trusted._judge_sets(key, exercise, results, inputs, "finished", exercise.points)


def test_each_part_earns_its_points_and_the_feedback_names_the_parts(lesson):
    exercise = lesson.exercise("test_measure_interference")
    wrong = {w.id: w.answer for w in exercise.wrong}
    expected = {"whole_reconstruction": 0.0, "rows_gram": 0.0, "one_dimensional_only": 1.0, "no_shape_error": 2.0}
    for mistake, points in expected.items():
        found = grade(lesson, exercise, wrong[mistake])
        assert (found.points, found.misconception) == (points, mistake)
        assert sum(found.parts.values()) == points  # one point a part here
    only_1d = grade(lesson, exercise, wrong["one_dimensional_only"])
    assert "it seems to handle only 1-D input" in only_1d.message  # the misconception's own message, then the parts
    assert "Right: 1-D features (1 pt). Not yet: a batch of features, dense and sparse (1 pt); " in only_1d.message
    right = grade(lesson, exercise, exercise.reference)
    assert (right.points, right.misconception, all(right.parts.values())) == (3.0, None, True)


def test_all_or_nothing_stays_the_default(lesson):
    exercise = dataclasses.replace(lesson.exercise("test_measure_interference"), parts=())
    key = dataclasses.replace(lesson, exercises=(exercise,))
    found = grade(key, exercise, next(w.answer for w in exercise.wrong if w.id == "no_shape_error"))
    assert (found.points, found.misconception, found.parts) == (0.0, "no_shape_error", {})
    assert "Right:" not in found.message
    assert grade(key, exercise, exercise.reference).points == 3.0


def test_a_set_that_did_not_run_costs_every_part(lesson):
    exercise = lesson.exercise("test_measure_interference")
    found = grade(lesson, exercise, exercise.reference, broken_set=1)
    assert (found.points, found.misconception) == (0.0, "did_not_run")


def test_declarations_that_cannot_be_split_are_refused():
    def spec(**changes) -> dict:
        return {"name": "f", "points": 2, "inputs": lambda g: {}, "reference": lambda x: x} | changes
    with pytest.raises(ValueError, match="add up to 1"):
        Exercise(**spec(parts=(Part("a", 1, ("x",)),)))
    with pytest.raises(ValueError, match="cases of its own"):
        Exercise(**spec(parts=(Part("a", 1, ("x",)), Part("b", 1, ("x", "y")))))
    exercise = Exercise(**spec(parts=(Part("a", 1, ("x",)), Part("b", 1, ("y",)))))
    with pytest.raises(ValueError, match="but the judge compares"):
        exercise.check_parts({"x": 1.0, "y": 2.0, "z": 3.0})  # z would earn nothing
    with pytest.raises(ValueError, match="earned by raising an error"):
        exercise.check_parts({"x": 1.0, "y": {"raised": "ValueError"}})  # code that only raises would earn b
    exercise.check_parts({"x": 1.0, "y": 2.0})


def test_the_released_points_are_the_declared_parts_total():
    """The test cell's nbgrader points (what formgrader and grades.csv count) equal the parts' sum, every lesson."""
    split = 0
    for name in lessons():
        source = nbformat.read(source_notebook(name), as_version=4)
        key = trusted.lesson_key(source)
        released = {trusted.grade_id_of(c): trusted.nbgrader_meta(c).get("points")
                    for c in nbformat.read(student_notebook(name), as_version=4).cells}
        for exercise in key.exercises if key else ():
            if exercise.parts:
                split += 1
                assert released[exercise.grade_id] == exercise.points == sum(p.points for p in exercise.parts)
    assert split >= 1
