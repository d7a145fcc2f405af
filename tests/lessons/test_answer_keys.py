"""Every exercise's declaration, for every lesson: the reference passes, each known wrong answer fails with its own
message (on the visible inputs and on graded ones), graded inputs are secret, per student and never the visible
ones, and the recorded expectations are the ones the key gives."""

from __future__ import annotations

from dataclasses import replace

import nbformat
import pytest

from grader import key as answer_key
from grader import trusted
from grader.lessons import REPO, lessons, source_notebook
from grader.release import expectations_file
from utils.checks import CheckFailed, decode_plain, encode_plain, fresh, judge

from lesson_testing import verdict_on


def _load(lesson: str):
    try:
        return answer_key.load(nbformat.read(source_notebook(lesson), as_version=4), REPO)
    except Exception as error:  # noqa: BLE001 - reported by test_every_lesson_has_a_key, not at collection
        return error


KEYS = {lesson: _load(lesson) for lesson in lessons()}
BROKEN = {lesson: key for lesson, key in KEYS.items() if not isinstance(key, answer_key.LessonKey)}
KEYS = {lesson: key for lesson, key in KEYS.items() if lesson not in BROKEN}
CASES = [(lesson, exercise) for lesson, key in KEYS.items() for exercise in key.exercises]
WRONG = [(lesson, exercise, wrong) for lesson, exercise in CASES for wrong in exercise.wrong]
STUDENTS = ("alice", "bob")


@pytest.fixture(autouse=True, scope="module")
def secret(tmp_path_factory):
    """One instructor secret for the module, so that expectations computed for one test serve the next ones."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADER_SECRET_FILE", str(tmp_path_factory.mktemp("secret") / "secret"))
        yield


def test_every_lesson_has_a_key():
    assert not BROKEN, BROKEN


@pytest.mark.parametrize("lesson, exercise", CASES, ids=lambda v: getattr(v, "name", v))
def test_the_reference_passes_its_visible_check(lesson, exercise, capsys):
    KEYS[lesson].checks.check(exercise.name, exercise.reference)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("lesson, exercise, wrong", WRONG, ids=lambda v: getattr(v, "name", getattr(v, "id", v)))
def test_each_known_wrong_answer_fails_the_visible_check_with_its_own_message(lesson, exercise, wrong):
    with pytest.raises(CheckFailed) as failure:
        KEYS[lesson].checks.check(exercise.name, wrong.answer)
    assert str(failure.value) == wrong.message, f"{wrong.id} was told another mistake's message"


@pytest.mark.parametrize("lesson, exercise, wrong", WRONG, ids=lambda v: getattr(v, "name", getattr(v, "id", v)))
def test_each_known_wrong_answer_fails_graded_inputs_with_its_own_id(lesson, exercise, wrong):
    key = KEYS[lesson]
    for student in STUDENTS:
        for inputs in answer_key.graded_inputs(key, exercise, student):
            verdict = verdict_on(key, exercise, wrong.answer, inputs)
            assert not verdict.ok and verdict.misconception == wrong.id, (student, verdict)


@pytest.mark.parametrize("lesson, exercise", CASES, ids=lambda v: getattr(v, "name", v))
def test_graded_inputs_are_secret_per_student_and_never_the_visible_ones(lesson, exercise, tmp_path, monkeypatch):
    key = KEYS[lesson]
    visible = {encode_plain(v) for case, v in answer_key.visible_inputs(key, exercise).items()
               if case not in exercise.fixed_cases}
    by_student = {s: [encode_plain(i) for i in answer_key.graded_inputs(key, exercise, s)] for s in STUDENTS}
    assert by_student["alice"] != by_student["bob"]
    assert by_student["alice"] == [encode_plain(i) for i in answer_key.graded_inputs(key, exercise, "alice")]
    for sets in by_student.values():
        for inputs in sets:
            assert not any(encode_plain(v) in visible for case, v in decode_plain(inputs).items()
                           if case not in exercise.fixed_cases)
    for student, sets in by_student.items():
        for inputs in map(decode_plain, sets):
            verdict = verdict_on(key, exercise, exercise.reference, inputs)
            assert verdict.ok, (student, verdict)
    monkeypatch.setenv("GRADER_SECRET_FILE", str(tmp_path / "another-secret"))
    assert [encode_plain(i) for i in answer_key.graded_inputs(key, exercise, "alice")] != by_student["alice"]


@pytest.mark.parametrize("lesson", sorted(KEYS))
def test_recorded_expectations_are_what_the_key_gives(lesson):
    recorded = decode_plain(expectations_file(lesson).read_text())
    fresh = answer_key.recorded_expectations(KEYS[lesson])
    assert set(recorded["exercises"]) == set(fresh["exercises"])
    for name, case in fresh["exercises"].items():
        assert encode_plain(recorded["exercises"][name]["inputs"]) == encode_plain(case["inputs"]), name
        kept = recorded["exercises"][name]["expectation"]
        assert [w["id"] for w in kept["wrong"]] == [w["id"] for w in case["expectation"]["wrong"]], name
        assert judge(kept["reference"], case["expectation"]).ok, name


def test_a_blank_answer_is_told_it_is_not_implemented():
    def blank(*args, **kwargs):
        raise NotImplementedError()
    for lesson, exercise in CASES:
        with pytest.raises(CheckFailed, match="not implemented yet"):
            KEYS[lesson].checks.check(exercise.name, blank)


def test_graded_judging_runs_the_known_wrong_answers_only_to_name_a_mistake():
    """A right result is judged against the reference alone; a wrong one still gets its declared id."""
    key = KEYS["01_superposition_basics"]
    exercise = next(e for e in key.exercises if e.name == "cosine_similarities")
    ran = []

    def counted(wrong):
        def answer(*args, **kwargs):
            ran.append(wrong.id)
            return wrong.answer(*args, **kwargs)
        return replace(wrong, answer=answer)
    exercise = replace(exercise, wrong=tuple(map(counted, exercise.wrong)))
    inputs = answer_key.graded_inputs(key, exercise, "lazy-judge")
    probe = key.checks.probe(exercise.name)

    def grade(learner):
        results = {k: [{"data": encode_plain(probe(learner, fresh(given)))}] for k, given in enumerate(inputs)}
        return trusted._judge_sets(key, exercise, results, inputs, "the end", exercise.points)
    right = grade(exercise.reference)
    assert right.points == exercise.points and ran == []
    mistaken = grade(exercise.wrong[0].answer)
    assert mistaken.points == 0 and mistaken.misconception == exercise.wrong[0].id and ran
