"""Lesson 08's checks beyond the declarations' generic tests: every known wrong answer is told its own mistake on
many input sets (not only the two the generic tests draw), other correct ways of writing each exercise pass, and
the library (withheld while the lesson is graded) agrees with the references."""

import pytest
import torch

from grader import key as answer_key
from grader.key import lesson08 as key
from utils import digits
from utils.checks import CheckFailed
from utils.checks import lesson08 as checks
from utils.sae import TopKSparseAutoencoder

from lesson_testing import verdict_on

LESSON = answer_key._load(str(key.__file__))
SEEDS = range(25)


def _verdict(exercise, learner, inputs):
    return verdict_on(LESSON, exercise, learner, inputs)


@pytest.mark.parametrize("exercise", key.EXERCISES, ids=lambda e: e.name)
def test_every_wrong_answer_is_named_on_every_input_set_and_the_reference_passes(exercise):
    for seed in SEEDS:
        inputs = exercise.inputs(torch.Generator().manual_seed(seed))
        assert _verdict(exercise, exercise.reference, inputs).ok, seed
        for wrong in exercise.wrong:
            verdict = _verdict(exercise, wrong.answer, inputs)
            assert not verdict.ok and verdict.misconception == wrong.id, (seed, wrong.id, verdict)


def _per_class_one_hot(acts, y, n_classes):
    one_hot = torch.nn.functional.one_hot(y, n_classes).float()               # (batch, n_classes)
    return (one_hot.T @ acts) / one_hot.sum(0)[:, None]


def _selectivity_sorted(table):
    values = table.sort(dim=0, descending=True).values
    top, rest = values[0], values[1:].mean(0)
    return (top - rest) / (top + rest)


def _topk_by_threshold(pre, k):
    kth = pre.topk(k, dim=-1).values[:, -1:]                                 # each row's k-th largest
    return torch.where(pre >= kth, torch.relu(pre), torch.zeros_like(pre))


def _drop_with_bincount(clean, edited, y, n_classes):
    counts = torch.bincount(y, minlength=n_classes).float()

    def accuracy(logits):
        return torch.bincount(y, weights=(logits.argmax(1) == y).float(), minlength=n_classes) / counts
    return accuracy(clean) - accuracy(edited)


@pytest.mark.parametrize("name, other", [
    ("per_class_activation", _per_class_one_hot), ("selectivity", _selectivity_sorted),
    ("topk_activation", _topk_by_threshold), ("accuracy_drop", _drop_with_bincount)])
def test_other_correct_ways_pass_the_visible_check_and_graded_inputs(name, other, capsys):
    checks.check(name, other)
    assert "✔" in capsys.readouterr().out
    exercise = next(e for e in key.EXERCISES if e.name == name)
    for inputs in answer_key.graded_inputs(LESSON, exercise, "dana"):
        assert _verdict(exercise, other, inputs).ok


def test_a_silent_unit_must_be_nan_and_a_clamped_denominator_is_named():
    def clamped(table):
        top = table.max(0).values
        rest = (table.sum(0) - top) / (table.shape[0] - 1)
        return (top - rest) / (top + rest).clamp_min(1e-12)
    with pytest.raises(CheckFailed, match="nan is the honest answer"):
        checks.check("selectivity", clamped)


def test_inputs_keep_the_properties_that_tell_mistakes_apart():
    for seed in SEEDS:
        g = torch.Generator().manual_seed(seed)
        for spec in key.class_table_inputs(g).values():
            acts, y, n = spec["args"]
            counts = torch.bincount(y, minlength=n)
            assert acts.shape[1] != n and (counts > 0).all() and counts.max() > counts.min() and (acts == 0).any()
        for spec in key.selectivity_inputs(g).values():
            s = digits.selectivity(spec["args"][0])
            assert s.isnan().sum() == 1 and (s == 1).any() and (s.abs() < 1e-6).any()
        for spec in key.topk_inputs(g).values():
            pre, k = spec["args"]
            assert ((pre > 0).sum(1) < k).any() and (pre.abs().topk(k, dim=1).values != pre.topk(k, dim=1).values).any()
            assert ((pre > 0).sum(0) > k).any()
        for spec in key.drop_inputs(g).values():
            clean, edited, y, n = spec["args"]
            right, right_after = clean.argmax(1) == y, edited.argmax(1) == y
            assert (~right & right_after).any() and (right & ~right_after & (y == 1)).any()


def test_the_library_agrees_with_the_references():
    g = torch.Generator().manual_seed(0)
    pre = torch.randn(6, 10, generator=g)
    sae = TopKSparseAutoencoder(4, 10, k=3, seed=0)
    h = torch.randn(6, 1, 4, generator=g)
    with torch.no_grad():
        expected = key.reference_topk_activation(torch.einsum("bid,idl->bil", h - sae.b_dec, sae.W_enc) + sae.b_enc, 3)
        assert torch.equal(sae.encode(h), expected)
    assert torch.equal(key.reference_topk_activation(pre, 3), _topk_by_threshold(pre, 3))
    clean, edited, y, n = key.drop_inputs(g)["targeted edit"]["args"]
    assert torch.allclose(digits.accuracy_drop(clean, edited, y, n), _drop_with_bincount(clean, edited, y, n))
