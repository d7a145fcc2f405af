"""Lesson 01's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import math

import pytest
import torch

from utils import metrics, packing
from utils.checks import CheckFailed
from utils.checks import lesson01 as checks


def interference_ok(W, x):
    return metrics.interference(W, x)


def interference_full(W, x):
    if x.shape[-1] != W.shape[1]:
        raise ValueError("shape")
    return x @ W.T @ W


def interference_unit_norm(W, x):
    if x.shape[-1] != W.shape[1]:
        raise ValueError("shape")
    return x @ W.T @ W - x


def interference_no_error(W, x):
    return metrics.interference(W, x) if x.shape[-1] == W.shape[1] else torch.zeros_like(x)


def interference_1d_only(W, x):
    if x.ndim != 1:
        return metrics.interference(W, x)[0]
    return metrics.interference(W, x)


@pytest.mark.parametrize("wrong, words", [
    (interference_full, "whole linear reconstruction"),
    (interference_unit_norm, "norm 1"),
    (interference_no_error, "ValueError"),
    (interference_1d_only, "batch"),
])
def test_measure_interference_names_misconceptions(wrong, words):
    checks.check_measure_interference(interference_ok, seed=0)
    with pytest.raises(CheckFailed, match=words):
        checks.check_measure_interference(wrong, seed=0)


def normalise(W):
    return W / W.norm(dim=0, keepdim=True)


@pytest.mark.parametrize("wrong, words", [
    (lambda W: (normalise(W).T @ normalise(W)).abs(), r"\|cos\|"),
    (lambda W: W.T @ W, "without normalising"),
    (lambda W: (W / W.norm(dim=1, keepdim=True)).T @ (W / W.norm(dim=1, keepdim=True)), "rows"),
    (lambda W: normalise(W) @ normalise(W).T, "compared rows"),
])
def test_cosine_similarities_names_misconceptions(wrong, words):
    checks.check_cosine_similarities(lambda W: normalise(W).T @ normalise(W), seed=1)
    with pytest.raises(CheckFailed, match=words):
        checks.check_cosine_similarities(wrong, seed=1)


def test_welch_checks():
    checks.check_welch_bound(packing.welch_bound, seed=2)
    checks.check_max_vectors_welch(packing.max_vectors_welch, seed=2)
    with pytest.raises(CheckFailed, match="square root"):
        checks.check_welch_bound(lambda n, d: packing.welch_bound(n, d) ** 2, seed=0)
    with pytest.raises(CheckFailed, match="should be 0"):
        checks.check_welch_bound(lambda n, d: math.sqrt(max(n - d, 0) / (d * max(n - 1, 1))) + (n <= d), seed=0)
    with pytest.raises(CheckFailed, match="round down"):
        checks.check_max_vectors_welch(lambda d, e: packing.max_vectors_welch(d, e) + 1, seed=0)
    with pytest.raises(CheckFailed, match="math.inf"):
        checks.check_max_vectors_welch(lambda d, e: 10**6 if d * e * e >= 1 else packing.max_vectors_welch(d, e), seed=0)


def expected_ok(S, c=1.0):
    return checks.reference_expected_interference(S, c)


@pytest.mark.parametrize("wrong, words", [
    (lambda S, c=1.0: expected_ok(1 - S, c), "ZERO"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean_square": c * c * (1 - S) / 4}, "1/3"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean": c * (1 - S)}, "mean 1/2"),
    (lambda S, c=1.0: {**expected_ok(S, c), "p_both_active": 1 - S}, r"\(1 - S\)\^2"),
    (lambda S, c=1.0: (1 - S) ** 2, "dict"),
])
def test_expected_interference_names_misconceptions(wrong, words):
    checks.check_expected_interference(expected_ok, seed=0)
    with pytest.raises(CheckFailed, match=words):
        checks.check_expected_interference(wrong, seed=0)


def test_simulation_agrees_with_the_closed_form():
    for S, c in ((0.0, 1.0), (0.9, -0.4), (0.99, 1.0)):
        exact, simulated = checks.reference_expected_interference(S, c), checks.simulate_interference(S, c, seed=3)
        for key in exact:
            assert abs(exact[key] - simulated[key]) < 3e-3, (S, c, key)
