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


def interference_1d_matvec(W, x):
    if x.shape[-1] != W.shape[1]:
        raise ValueError("shape")
    gram = W.T @ W
    return torch.mv(gram, x) - torch.diagonal(gram) * x


def interference_rows(W, x):
    if x.shape[-1] != W.shape[1]:
        raise ValueError("shape")
    gram = W @ W.T
    return x @ gram - x * torch.diagonal(gram)


def interference_rows_square_only(W, x):
    """W W^T where it fits (square W), the right answer elsewhere: only the square case can tell."""
    return interference_rows(W, x) if W.shape[0] == W.shape[1] else metrics.interference(W, x)


def interference_unit_norm_orthogonal_only(W, x):
    """Right for random W, but subtracts x_i when the columns are orthogonal (caught by that invariant)."""
    gram = W.T @ W
    if torch.allclose(gram - torch.diag(torch.diagonal(gram)), torch.zeros_like(gram), atol=1e-5):
        return x @ gram - x
    return metrics.interference(W, x)


@pytest.mark.parametrize("wrong, words", [
    (interference_full, "whole linear reconstruction"),
    (interference_unit_norm, "unit norms"),
    (interference_no_error, "ValueError"),
    (interference_1d_only, "1-D only"),
    (interference_1d_matvec, "only 1-D input"),
    (interference_rows, "W W\\^T"),
    (interference_rows_square_only, "transposed W"),
    (interference_unit_norm_orthogonal_only, "orthogonal"),
    (lambda W, x: -metrics.interference(W, x), "sign"),
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
    naive_floor = lambda d, e: math.inf if d * e * e >= 1 else math.floor(d * (1 - e * e) / (1 - d * e * e) - 1e-9)
    with pytest.raises(CheckFailed, match="floating point"):
        checks.check_max_vectors_welch(naive_floor, seed=0)


def expected_ok(S, c=1.0):
    return checks.reference_expected_interference(S, c)


@pytest.mark.parametrize("wrong, words", [
    (lambda S, c=1.0: expected_ok(1 - S, c), "ZERO"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean_square": c * c * (1 - S) / 4}, "1/3"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean_square": c * c * (1 - S)}, "forgot the 1/3"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean_square": c * c * (1 - S) ** 2 / 3}, "squared the probability"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean_square": (c * (1 - S) / 2) ** 2}, "square of the mean"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean": c * (1 - S)}, "forgot the 1/2"),
    (lambda S, c=1.0: {**expected_ok(S, c), "mean": c * (1 - S) ** 2 / 2}, "squared the probability"),
    (lambda S, c=1.0: {**expected_ok(S, c), "p_both_active": 1 - S}, r"\(1 - S\)\^2"),
    (lambda S, c=1.0: {k: v for k, v in expected_ok(S, c).items() if k != "mean"}, "missing mean"),
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


def test_judges_survive_json_round_trip_and_reject_forged_data():
    """What the sandbox sends back is JSON: the judges accept the reference after encode/decode and fail
    (CheckFailed, never a crash) on data that does not match the inputs they rebuild from the seed."""
    from utils.checks import decode_plain, encode_plain
    reference = {"test_measure_interference": interference_ok,
                 "test_cosine_similarities": lambda W: normalise(W).T @ normalise(W),
                 "test_welch_bound": packing.welch_bound, "test_max_vectors_welch": packing.max_vectors_welch,
                 "test_expected_interference": expected_ok}
    assert set(reference) == set(checks.EXERCISES)
    for grade_id, (_, probe, judge) in checks.EXERCISES.items():
        for seed in (0, 1, 2):
            data = decode_plain(encode_plain(probe(reference[grade_id], seed)))
            assert isinstance(judge(data, seed), str)
    forged = decode_plain(encode_plain(checks.probe_measure_interference(interference_ok, 0)))
    with pytest.raises(CheckFailed):
        checks.judge_measure_interference(forged, 1)  # answers for seed 0 do not pass seed 1
    forged = decode_plain(encode_plain(checks.probe_expected_interference(expected_ok, 0)))
    with pytest.raises(CheckFailed):
        checks.judge_expected_interference(forged, 1)
    with pytest.raises(CheckFailed):
        checks.judge_measure_interference({"single": "raised RuntimeError: boom"}, 0)


def test_not_implemented_is_reported_as_such():
    def blank(*args, **kwargs):
        raise NotImplementedError()
    for name in ("measure_interference", "cosine_similarities", "welch_bound", "max_vectors_welch",
                 "expected_interference"):
        with pytest.raises(CheckFailed, match="not implemented yet"):
            getattr(checks, f"check_{name}")(blank)
