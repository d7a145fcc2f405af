"""Lesson 01's checks beyond the declarations' generic tests: the cases that tell mistakes apart."""

import math

import pytest
import torch

from grader.key import lesson01 as key
from utils import metrics
from utils.checks import CheckFailed
from utils.checks import lesson01 as checks


def test_simulation_agrees_with_the_closed_form():
    for S, c in ((0.0, 1.0), (0.9, -0.4), (0.99, 1.0)):
        exact = key.reference_expected_interference(S, c)
        simulated = metrics.simulate_pair_interference(S, c, seed=3)
        for name in exact:
            assert abs(exact[name] - simulated[name]) < 3e-3, (S, c, name)


def test_float_traps_are_whole_numbers_that_floats_miss():
    """The max_vectors_welch cases that catch a missing floating-point guard (issue: dim 3, eps 1/3 -> 3.9999...)."""
    assert (3, 1 / 3) in key._FLOAT_TRAPS
    for dim, eps in key._FLOAT_TRAPS:
        raw = dim * (1 - eps**2) / (1 - dim * eps**2)
        assert math.floor(raw) == round(raw) - 1


def test_a_lookup_table_of_the_visible_inputs_fails_graded_inputs():
    """Special-casing the visible inputs: right on what the student sees, wrong on what the grader uses."""
    from grader import key as answer_key
    from utils.checks import judge
    lesson = answer_key._load(str(key.__file__))
    seen = {}
    for case in answer_key.visible_inputs(lesson, key.COSINE_SIMILARITIES).values():
        W = case["args"][0]
        seen[tuple(W.flatten().tolist())] = metrics.cosine_similarities(W)

    def memorised(W):
        return seen.get(tuple(W.flatten().tolist()), torch.zeros(W.shape[1], W.shape[1]))

    checks.check("cosine_similarities", memorised)
    inputs = answer_key.graded_inputs(lesson, key.COSINE_SIMILARITIES, "mallory")[0]
    verdict = judge(checks.checks.observe("cosine_similarities", memorised, inputs),
                    answer_key.expectation(lesson, key.COSINE_SIMILARITIES, inputs))
    assert not verdict.ok


def test_c_over_two_is_told_the_probability_was_dropped_not_the_half():
    with pytest.raises(CheckFailed, match="dropped the probability"):
        checks.check("expected_interference", lambda S, c=1.0: {**key.reference_expected_interference(S, c), "mean": c / 2})


def test_errors_a_learner_meets_are_explained_not_passed_on_raw():
    """Issue 13: the Welch formula used below dim ('math domain error') and norms broadcast on the wrong axis (a
    RuntimeError) each get a message that names the mistake, as measure_interference's check does."""
    with pytest.raises(CheckFailed, match="math domain error.*Return 0.0 when n_vectors <= dim"):
        checks.check("welch_bound", lambda n_vectors, dim: math.sqrt((n_vectors - dim) / (dim * (n_vectors - 1))))

    def row_norms(W):
        W_normed = W / W.norm(dim=1)
        return W_normed.T @ W_normed
    with pytest.raises(CheckFailed, match="RuntimeError.*wrong axis.*W.norm\\(dim=0, keepdim=True\\)"):
        checks.check("cosine_similarities", row_norms)
