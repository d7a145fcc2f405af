"""Lesson 03's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import json

import pytest
import torch

from utils import phase
from utils.checks import CheckFailed, decode_plain, encode_plain
from utils.checks import lesson03 as checks

LABELS = phase.REGIMES


def from_counts(W, represented, superposed_if=lambda w: w[0] * w[1] < 0):
    """Labels from a per-instance count of represented features (a learner's building block)."""
    out = []
    for k in range(W.shape[0]):
        n = int(represented[k])
        out.append("dedicated" if n == 1 else "superposed" if n == 2 and superposed_if(W[k, 0]) else "not represented")
    return out


def sum_based(W, threshold=0.5):  # judges the pair by |W_1| + |W_2|, then by the smaller one
    w = W[:, 0].abs()
    return from_counts(W, (w.sum(dim=1) > threshold).int() + (w.min(dim=1).values > threshold).int())


def sign_ignored(W, threshold=0.5):  # two represented features are "superposed" whatever their signs
    return from_counts(W, (W[:, 0].abs() > threshold).sum(dim=1), lambda w: True)


def transposed(W, threshold=0.5):  # reads W as (n_instances, n_features, n_hidden): only feature 1 is seen
    return from_counts(W, (W[:, :, 0].abs() > threshold).sum(dim=1))


def no_abs(W, threshold=0.5):  # a negative weight is not counted as represented
    return from_counts(W, (W[:, 0] > threshold).sum(dim=1) + ((W[:, 0] < -threshold).sum(dim=1) == 2).int() * 2)


def fixed_threshold(W, threshold=0.5):
    return phase.classify_regime(W, 0.5)


@pytest.mark.parametrize("wrong, words", [
    (sum_based, "not by the sum"),
    (sign_ignored, "SAME sign"),
    (transposed, "wrong axis"),
    (no_abs, "NEGATIVE"),
    (fixed_threshold, "threshold` argument"),
    (lambda W, threshold=0.5: phase.classify_regime(W, threshold)[:1], "one per instance"),
    (lambda W, threshold=0.5: [LABELS.index(x) for x in phase.classify_regime(W, threshold)], "unknown labels"),
    (lambda W, threshold=0.5: "superposed", "list of strings"),
])
def test_classify_regime_names_misconceptions(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        checks.check_classify_regime(wrong)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_references_pass_on_every_seed(seed):
    checks.check_classify_regime(phase.classify_regime, seed=seed)
    checks.check_candidate_losses(phase.candidate_losses, seed=seed)
    checks.check_superposition_boundary(phase.superposition_boundary, seed=seed)


def test_probes_return_json_plain_data():
    for name, probe, judge in checks.EXERCISES.values():
        data = probe(getattr(phase, name), 1)
        assert judge(decode_plain(encode_plain(data)), 1)
        json.dumps(encode_plain(data))


def with_key(key, value_fn):
    return lambda r, p: {**phase.candidate_losses(r, p), key: value_fn(r, p)}


def all_keys(fn):
    return lambda r, p: {key: fn(r, p, key) for key in phase.CANDIDATES}


@pytest.mark.parametrize("wrong, words", [
    (lambda r, p: phase.candidate_losses(r, 1 - p), "S where 1 - S"),
    (all_keys(lambda r, p, key: 2 * phase.candidate_losses(r, p)[key]), "AVERAGES"),
    (lambda r, p: {**phase.candidate_losses(r, p), "dedicated_1": phase.candidate_losses(r, p)["dedicated_2"],
                   "dedicated_2": phase.candidate_losses(r, p)["dedicated_1"]}, "swapped"),
    (lambda r, p: {**phase.candidate_losses(1.0, p)}, "importance weight"),
    (with_key("superposed", lambda r, p: (1 + r) * p / 12), "BOTH"),
    (with_key("dedicated_1", lambda r, p: r * p / 6), "optimal bias"),
    (with_key("dedicated_2", lambda r, p: (p - p * p) / 2), "second moment is 1/3"),
    (with_key("superposed", lambda r, p: (1 + r) * p * p / 2), "1/6"),
    (with_key("superposed", lambda r, p: (1 + r) * p * p / 6), "min\\(x1, x2\\)"),
    (with_key("superposed", lambda r, p: (1 + r) * p * p / 11), "ToyModel with W"),  # unnamed: the simulation
    (with_key("superposed", lambda r, p: -1.0), "cannot be negative"),
    (lambda r, p: {"dedicated_1": 0.0, "superposed": 0.0}, "missing keys"),
    (lambda r, p: list(phase.candidate_losses(r, p).values()), "dict"),
])
def test_candidate_losses_names_misconceptions(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        checks.check_candidate_losses(wrong)


def test_candidate_losses_accepts_tensors():
    checks.check_candidate_losses(lambda r, p: {k: torch.tensor(v) for k, v in phase.candidate_losses(r, p).items()})


@pytest.mark.parametrize("wrong, words", [
    (lambda r: 1 - phase.superposition_boundary(r), "in S"),
    (lambda r: 4 * r / (2 + 5 * r), "BEST dedicated"),
    (lambda r: 4 / (2 * r + 5), "compared superposition with dedicated_2"),
    (lambda r: 2 * min(r, 1) / (1 + r), "b = 0"),
    (lambda r: 2 * r / (1 + r), "solve for p"),
    (lambda r: float("nan"), "finite"),
])
def test_superposition_boundary_names_misconceptions(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        checks.check_superposition_boundary(wrong)


def test_regime_labels_follow_the_definition():
    W = torch.tensor([[[0.9, -0.8]], [[0.9, 0.8]], [[-0.9, 0.1]], [[0.1, 0.7]], [[0.4, 0.4]]])
    assert phase.classify_regime(W) == ["superposed", "not represented", "dedicated", "dedicated", "not represented"]
    assert phase.classify_regime(W, threshold=0.3) == ["superposed", "not represented", "dedicated", "dedicated",
                                                       "not represented"]
    with pytest.raises(ValueError, match="n_instances, 1, 2"):
        phase.classify_regime(W.transpose(1, 2))


def test_boundary_is_where_the_candidate_losses_cross():
    for r in (0.2, 0.5, 1.0, 3.0):
        p = phase.superposition_boundary(r)
        losses = phase.candidate_losses(r, p)
        assert abs(min(losses["dedicated_1"], losses["dedicated_2"]) - losses["superposed"]) < 1e-12
