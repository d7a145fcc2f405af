"""Lesson 07's checks beyond the declarations' generic tests: every known wrong answer fails with its own message,
on the visible inputs and on graded ones; the solution notebook's answers (student-style code, not the library's)
pass; and the pair batches' judged features tell the two kinds of pairs apart."""

from __future__ import annotations

import pytest
import torch

from grader import key as answer_key
from grader.key import lesson07 as key
from utils.checks import CheckFailed, encode_plain
from utils.checks import lesson07 as checks

from lesson_testing import solution_namespace, verdict_on

LESSON = answer_key._load(str(key.__file__))


SOLUTIONS = solution_namespace(key.LESSON)
WRONG = [(exercise, wrong) for exercise in key.EXERCISES for wrong in exercise.wrong]


def _graded_verdict(exercise, answer, student="mallory"):
    return verdict_on(LESSON, exercise, answer, answer_key.graded_inputs(LESSON, exercise, student)[0])


@pytest.mark.parametrize("exercise", key.EXERCISES, ids=lambda e: e.name)
def test_the_solution_notebook_passes_visible_and_graded(exercise, capsys):
    checks.check(exercise.name, SOLUTIONS[exercise.name])
    assert "✔" in capsys.readouterr().out
    assert _graded_verdict(exercise, SOLUTIONS[exercise.name]).ok


@pytest.mark.parametrize("exercise, wrong", WRONG, ids=lambda v: getattr(v, "id", getattr(v, "name", v)))
def test_every_known_wrong_answer_fails_with_its_message(exercise, wrong):
    with pytest.raises(CheckFailed) as failed:
        checks.check(exercise.name, wrong.answer)
    assert str(failed.value) == wrong.message
    verdict = _graded_verdict(exercise, wrong.answer)
    assert not verdict.ok and verdict.misconception == wrong.id


def test_a_correlated_batch_fails_the_anticorrelated_check():
    """Each generator's judged features differ from the other's: a correlated batch is not an anti-correlated one."""
    with pytest.raises(CheckFailed, match="anticorrelated"):
        checks.check("generate_anticorrelated_batch", SOLUTIONS["generate_correlated_batch"])


def test_pair_features_flag_pairs_that_are_not_together():
    spec = {"args": [4000, 2, 3, 0.2]}
    g = torch.Generator().manual_seed(0)
    independent = key._independent(4000, 2, 3, 0.2, g)
    stats = checks.pair_statistics([independent, independent[:50], independent[:50], independent[50:100]])
    found = checks.pair_features({"c": stats}, {"c": spec})["c"]
    assert found[checks.TOGETHER] is False and found[checks.NEVER_BOTH] is False and found[checks.ZERO] is True


@pytest.mark.parametrize("exercise", [key.CORRELATED, key.ANTICORRELATED], ids=lambda e: e.name)
def test_the_pair_probe_sends_back_statistics_not_batches(exercise):
    """The sandbox returns statistics per case (1-2 kB of JSON, growing with the number of pairs), not the batches of
    2500-3500 samples: as JSON (over 10 bytes a value) those would be over 100 times larger."""
    inputs = answer_key.graded_inputs(LESSON, exercise, "mallory")[0]
    sent = encode_plain(checks.probe_pair_batch(SOLUTIONS[exercise.name], inputs))
    values = sum(batch * n_instances * 2 * n_pairs for batch, n_instances, n_pairs, _ in (c["args"] for c in inputs.values()))
    assert len(sent) < values / 10, (len(sent), values)
