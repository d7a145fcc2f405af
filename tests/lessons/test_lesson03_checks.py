"""Lesson 03's checks beyond the declarations' generic tests: the simulation behind the closed form, the cases
that tell mistakes apart, and the messages of answers no declaration names."""

import math

import pytest
import torch

from grader import key as answer_key
from grader.key import lesson03 as key
from utils import phase
from utils.checks import CheckFailed, judge
from utils.checks import lesson03 as checks

LESSON = answer_key._load(str(key.__file__))

#: The simulation behind candidate_losses: 2^17 samples per candidate, a closed form passes within 5 standard errors.
MC_BATCH, MC_SIGMAS = 2**17, 5.0


def test_closed_form_agrees_with_a_toy_model_simulation():
    """The reference's candidate losses against the candidates loaded into utils.ToyModel (the old judge's Monte Carlo
    comparison, now a property of the reference), on the visible cases and on fixed ones."""
    cases = [tuple(case["args"]) for case in answer_key.visible_inputs(LESSON, key.CANDIDATE_LOSSES).values()]
    cases += [(0.5, 0.2), (2.0, 0.4), (1.0, 1.0), (0.3, 0.05)]
    for (r, p), simulated in zip(cases, phase.simulate_candidates(cases, batch_size=MC_BATCH, seed=5000)):
        exact = key.CANDIDATE_LOSSES.reference(r, p)
        for name in phase.CANDIDATES:
            mean, stderr = simulated[name]
            assert abs(exact[name] - mean) <= MC_SIGMAS * stderr + 1e-7, (r, p, name, exact[name], mean, stderr)


def test_a_simulated_answer_is_not_precise_enough():
    """Reading the losses off a simulation (the course's simulate_candidates is withheld, but a student could write
    one) does not pass: the check wants the closed form, to a relative 1e-6."""
    assert "utils.phase.simulate_candidates" in key.CANDIDATE_LOSSES.answers

    def simulated(r, p):
        return {name: mean for name, (mean, _) in phase.simulate_candidates([(r, p)], batch_size=2**16)[0].items()}

    with pytest.raises(CheckFailed):
        checks.check("candidate_losses", simulated)


@pytest.mark.parametrize("number", [0.0, 0.5, lambda r, p: phase.candidate_losses(r, p)["superposed"]])
def test_one_number_is_told_to_return_a_dict_with_the_three_keys(number):
    """Issue 13: whatever single number comes back, the message names the dict and its three keys."""
    answer = number if callable(number) else (lambda r, p: number)
    with pytest.raises(CheckFailed) as failure:
        checks.check("candidate_losses", answer)
    assert "dict" in str(failure.value)
    assert all(name in str(failure.value) for name in phase.CANDIDATES), failure.value


@pytest.mark.parametrize("wrong_key", phase.CANDIDATES)
def test_one_wrong_value_is_named_alone(wrong_key):
    """Issue 13: a dict with one wrong value gets a message that names that key and no other candidate."""
    def answer(r, p):
        losses = phase.candidate_losses(r, p)
        return {**losses, wrong_key: 1.37 * losses[wrong_key]}
    with pytest.raises(CheckFailed) as failure:
        checks.check("candidate_losses", answer)
    message = str(failure.value)
    assert repr(wrong_key) in message, message
    assert not any(name in message for name in phase.CANDIDATES if name != wrong_key), message


def test_missing_key_is_named():
    with pytest.raises(CheckFailed, match="no 'dedicated_2'"):
        checks.check("candidate_losses", lambda r, p: {"dedicated_1": 0.0, "superposed": 0.0})


def test_tensor_losses_are_told_to_return_floats():
    """The old judge took 0-d tensors; the lesson asks for floats, and the message says how to get one."""
    with pytest.raises(CheckFailed, match=r"float\(\.\.\.\)"):
        checks.check("candidate_losses",
                     lambda r, p: {k: torch.tensor(v) for k, v in phase.candidate_losses(r, p).items()})
    with pytest.raises(CheckFailed, match=r"float\(\.\.\.\)"):
        checks.check("superposition_boundary", lambda r: torch.tensor(phase.superposition_boundary(r)))


@pytest.mark.parametrize("seed", range(20))
def test_regime_cases_tell_the_mistakes_apart(seed):
    """Whatever the generator: small weights hold pairs that only their sum lifts over 0.5 and pairs that their norm
    lifts too; the threshold cases hold weights between the threshold and 0.5; every regime shows with both signs."""
    inputs = key.regime_inputs(torch.Generator().manual_seed(seed))
    a = inputs["small weights"]["args"][0][:, 0].abs()
    assert (a <= 0.5).all()
    sums, norms = a.sum(dim=1), a.norm(dim=1)
    assert ((sums > 0.5) & (norms <= 0.5)).any() and (norms > 0.5).any()
    for case, inside in (("threshold below 0.5", lambda w, t: (w > t) & (w < 0.5)),
                         ("threshold above 0.5", lambda w, t: (w > 0.5) & (w < t))):
        W, t = inputs[case]["args"][0], inputs[case]["kwargs"]["threshold"]
        assert t != 0.5 and inside(W.abs(), t).any()
        assert phase.classify_regime(W, t) != phase.classify_regime(W, 0.5)
    W = inputs["every regime"]["args"][0]
    labels = phase.classify_regime(W)
    assert set(labels) == set(phase.REGIMES)
    w = W[:, 0]
    assert ((w < -0.5).any(dim=1) & torch.tensor([x == "dedicated" for x in labels])).any()
    assert ((w[:, 0] * w[:, 1] > 0) & (w.abs() > 0.5).all(dim=1)).any()  # a same-sign represented pair


def test_loss_cases_keep_away_from_where_two_formulas_agree():
    for seed in range(50):
        inputs = key.loss_inputs(torch.Generator().manual_seed(seed))
        rs = [case["args"][0] for case in inputs.values()]
        ps = [case["args"][1] for case in inputs.values()]
        assert any(abs(r - 1) > 0.2 for r in rs)  # dedicated_1 != dedicated_2: a swap shows
        assert all(abs(p - 0.5) > 0.05 for p in ps)  # 1 - p != p: S for 1 - S shows
        assert 1.0 in ps  # the dense case


def test_a_lookup_table_of_the_visible_inputs_fails_graded_inputs():
    seen = {}
    for case in answer_key.visible_inputs(LESSON, key.SUPERPOSITION_BOUNDARY).values():
        seen[case["args"][0]] = phase.superposition_boundary(case["args"][0])

    def memorised(r):
        return seen.get(r, 0.5)

    checks.check("superposition_boundary", memorised)
    inputs = answer_key.graded_inputs(LESSON, key.SUPERPOSITION_BOUNDARY, "mallory")[0]
    verdict = judge(checks.checks.observe("superposition_boundary", memorised, inputs),
                    answer_key.expectation(LESSON, key.SUPERPOSITION_BOUNDARY, inputs))
    assert not verdict.ok


def test_regime_labels_follow_the_definition():
    W = torch.tensor([[[0.9, -0.8]], [[0.9, 0.8]], [[-0.9, 0.1]], [[0.1, 0.7]], [[0.4, 0.4]]])
    assert phase.classify_regime(W) == ["superposed", "same sign", "dedicated", "dedicated", "not represented"]
    assert phase.classify_regime(W, threshold=0.3) == ["superposed", "same sign", "dedicated", "dedicated",
                                                       "same sign"]
    with pytest.raises(ValueError, match="n_instances, 1, 2"):
        phase.classify_regime(W.transpose(1, 2))


def test_boundary_is_where_the_candidate_losses_cross():
    for r in (0.2, 0.5, 1.0, 3.0):
        p = phase.superposition_boundary(r)
        losses = phase.candidate_losses(r, p)
        assert abs(min(losses["dedicated_1"], losses["dedicated_2"]) - losses["superposed"]) < 1e-12
    assert math.isclose(phase.superposition_boundary(1.0), 4 / 7)
