"""Lesson 03's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import pytest
import torch

from utils import phase
from utils.checks import CheckFailed
from utils.checks import lesson03 as checks

LABELS = phase.REGIMES


@pytest.mark.parametrize("wrong, words", [
    (lambda W, threshold=0.5: [LABELS[min(2, int(W[k, 0].abs().sum() > threshold)
                                          + int(W[k, 0].abs().min() > threshold))] for k in range(W.shape[0])], "sum"),
    (lambda W, threshold=0.5: ["superposed" if (W[k, 0].abs() > threshold).all() and W[k, 0].prod() < 0
                               else LABELS[min(1, int((W[k, 0].abs() > threshold).sum()))] for k in range(W.shape[0])],
     "same sign"),
    (lambda W, threshold=0.5: phase.classify_regime(W)[:1], "one label"),
])
def test_classify_regime_names_misconceptions(wrong, words):
    checks.check_classify_regime(phase.classify_regime)
    with pytest.raises(CheckFailed, match=words):
        checks.check_classify_regime(wrong)


def with_key(key, value_fn):
    return lambda r, p: {**phase.candidate_losses(r, p), key: value_fn(r, p)}


@pytest.mark.parametrize("wrong, words", [
    (lambda r, p: phase.candidate_losses(r, 1 - p), "S where"),
    (with_key("superposed", lambda r, p: (1 + r) * p / 12), "BOTH"),
    (with_key("dedicated_1", lambda r, p: r * p / 6), "variance"),
    (with_key("dedicated_1", lambda r, p: r * (p / 3 - p * p / 4)), "divide"),
    (lambda r, p: list(phase.candidate_losses(r, p).values()), "dict"),
])
def test_candidate_losses_names_misconceptions(wrong, words):
    checks.check_candidate_losses(phase.candidate_losses)
    with pytest.raises(CheckFailed, match=words):
        checks.check_candidate_losses(wrong)


def test_superposition_boundary_check():
    checks.check_superposition_boundary(phase.superposition_boundary)
    with pytest.raises(CheckFailed, match="in S"):
        checks.check_superposition_boundary(lambda r: 1 - phase.superposition_boundary(r))
    with pytest.raises(CheckFailed, match="4r"):
        checks.check_superposition_boundary(lambda r: 2 * r / (1 + r))
