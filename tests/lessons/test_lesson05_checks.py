"""Lesson 05's checks beyond the declarations' generic tests: inputs that vary, the cases that tell mistakes apart,
the library answers that are withheld, and the numbers the lesson relies on."""

import importlib.util

import pytest
import torch

from grader import key as answer_key
from grader.key import lesson05 as key
from utils import sycophancy as syc
from utils.checks import CheckFailed, judge
from utils.checks import lesson05 as checks

LESSON = answer_key._load(str(key.__file__))
STUDENTS = [f"student{k}" for k in range(25)]


def graded(exercise, students=STUDENTS):
    return [inputs for student in students for inputs in answer_key.graded_inputs(LESSON, exercise, student)]


def antipodal_pair(W: torch.Tensor) -> set[int]:
    """The two features of W whose columns point in opposite directions (cosine -1)."""
    unit = W / W.norm(dim=0)
    cos = unit.T @ unit
    i, j = divmod(int(torch.argmin(cos)), W.shape[1])
    assert cos[i, j] < -1 + 1e-5
    return {i, j}


# --- inputs --------------------------------------------------------------------------------------

def test_the_features_asked_about_are_never_the_visible_ones():
    visible = answer_key.visible_inputs(LESSON, key.FEATURE_DIRECTION)
    asked = {case: spec["args"][1] for case, spec in visible.items()}
    tall = {asked["feature"], asked["another feature"]}
    for inputs in graded(key.FEATURE_DIRECTION):
        assert not {inputs["feature"]["args"][1], inputs["another feature"]["args"][1]} & tall
        assert inputs["square W"]["args"][1] != asked["square W"]
    for exercise in (key.COLLATERAL_DAMAGE, key.STEERING_EFFECT):
        pair = antipodal_pair(answer_key.visible_inputs(LESSON, exercise)["random direction"]["args"][0])
        pairs = [antipodal_pair(inputs["random direction"]["args"][0]) for inputs in graded(exercise)]
        assert not any(p & pair for p in pairs), exercise.name
        assert len({frozenset(p) for p in pairs}) > 3, "the graded pairs vary with the student"


def test_weights_bias_batch_and_alphas_vary_with_the_generator():
    def summary(inputs):
        W, b, x, _, alpha = inputs["raw feature column, alpha < 0"]["args"]
        return W.shape, float(W.sum()), float(b.sum()), x.shape[0], alpha
    sets = [summary(i) for i in [answer_key.visible_inputs(LESSON, key.STEERING_EFFECT)] + graded(key.STEERING_EFFECT)]
    for k in (1, 2):  # weights and bias: never twice the same
        assert len({s[k] for s in sets}) == len(sets), k
    for k in (0, 3, 4):  # shapes, batch sizes and alphas: drawn from a range
        assert len({s[k] for s in sets}) > 1, k
    assert all(s[4] < 0 for s in sets)


@pytest.mark.parametrize("exercise, cases", [
    (key.ABLATE_DIRECTION, ("feature column", "random direction", "batch = n_hidden")),
    (key.ABLATE_ONE_SIDED, ("antipodal pair", "random direction", "batch = n_hidden")),
    (key.COLLATERAL_DAMAGE, ("raw feature column", "random direction")),
    (key.STEERING_EFFECT, ("raw feature column, alpha < 0", "random direction")),
], ids=lambda v: getattr(v, "name", "cases"))
def test_directions_that_should_be_normalised_are_far_from_unit_length(exercise, cases):
    for inputs in [answer_key.visible_inputs(LESSON, exercise)] + graded(exercise, STUDENTS[:5]):
        for case in cases:
            direction = inputs[case]["args"][-2 if exercise is key.STEERING_EFFECT else -1]
            assert abs(float(direction.norm()) - 1) > 0.25, case


def test_the_tricky_shapes_are_there():
    """A square W (row i has the right shape) and a batch as long as n_hidden (a projection on the wrong axis broadcasts)."""
    for inputs in [answer_key.visible_inputs(LESSON, key.FEATURE_DIRECTION)] + graded(key.FEATURE_DIRECTION, STUDENTS[:5]):
        W = inputs["square W"]["args"][0]
        assert W.shape[0] == W.shape[1]
        assert inputs["feature"]["args"][0].shape[0] < inputs["feature"]["args"][0].shape[1]
    for exercise in (key.ABLATE_DIRECTION, key.ABLATE_ONE_SIDED):
        for inputs in [answer_key.visible_inputs(LESSON, exercise)] + graded(exercise, STUDENTS[:5]):
            h = inputs["batch = n_hidden"]["args"][0]
            assert h.shape[0] == h.shape[1]


def test_every_one_sided_case_has_rows_on_both_sides_of_the_direction():
    """Otherwise removing the whole projection, or its absolute value, would pass that case."""
    for inputs in [answer_key.visible_inputs(LESSON, key.ABLATE_ONE_SIDED)] + graded(key.ABLATE_ONE_SIDED, STUDENTS[:5]):
        for case, spec in inputs.items():
            h, d = spec["args"]
            projection = h @ d
            assert (projection > 0.05).any() and (projection < -0.05).any(), case


# --- verdicts ------------------------------------------------------------------------------------

def test_the_notebook_style_answers_pass():
    def collateral_damage(W, b, x, direction):
        h = x @ W.T
        clean = torch.relu(h @ W + b)
        ablated = torch.relu(syc.ablate_direction(h, direction) @ W + b)
        return ((x - ablated) ** 2).mean(dim=0) - ((x - clean) ** 2).mean(dim=0)

    def steering_effect(W, b, x, direction, alpha):
        h = x @ W.T
        d = direction / direction.norm()
        return (torch.relu((h + alpha * d) @ W + b) - torch.relu(h @ W + b)).mean(dim=0)

    checks.check("collateral_damage", collateral_damage)
    checks.check("steering_effect", steering_effect)
    for name, answer in (("collateral_damage", collateral_damage), ("steering_effect", steering_effect)):
        exercise = next(e for e in key.EXERCISES if e.name == name)
        for inputs in graded(exercise, STUDENTS[:3]):
            assert judge(checks.checks.observe(name, answer, inputs),
                         answer_key.expectation(LESSON, exercise, inputs)).ok


def test_a_collateral_damage_built_on_an_unnormalised_ablation_is_told_so():
    def sloppy_ablate(h, d):
        return h - (h @ d)[:, None] * d

    def collateral_damage(W, b, x, direction):
        h = x @ W.T
        return syc.readout_damage(W, b, x, sloppy_ablate(h, direction))

    with pytest.raises(CheckFailed, match="direction was not normalised"):
        checks.check("collateral_damage", collateral_damage)


def test_two_mistakes_at_once_get_the_spec_not_another_mistakes_message():
    def two_mistakes(W, b, x, d):  # no bias and the error not squared
        h = x @ W.T
        return ((x - torch.relu(syc.ablate_direction(h, d) @ W)).mean(dim=0) - (x - torch.relu(h @ W)).mean(dim=0))
    with pytest.raises(CheckFailed) as failure:
        checks.check("collateral_damage", two_mistakes)
    assert str(failure.value).startswith("collateral_damage: the values at")
    assert "ReLU(W^T h + b)" in str(failure.value)


def test_a_lookup_table_of_the_visible_inputs_fails_graded_inputs():
    seen = {}
    for case in answer_key.visible_inputs(LESSON, key.STEERING_EFFECT).values():
        W, b, x, d, alpha = case["args"]
        seen[(float(W.sum()), alpha)] = syc.steering_effect(W, b, x, d, alpha)

    def memorised(W, b, x, d, alpha):
        return seen.get((float(W.sum()), alpha), torch.zeros(W.shape[1]))

    checks.check("steering_effect", memorised)
    inputs = graded(key.STEERING_EFFECT, ["mallory"])[0]
    assert not judge(checks.checks.observe("steering_effect", memorised, inputs),
                     answer_key.expectation(LESSON, key.STEERING_EFFECT, inputs)).ok


# --- withheld library answers --------------------------------------------------------------------

def test_the_library_answers_are_withheld_but_the_read_out_is_not(tmp_path):
    from grader.view import withheld_view
    from utils.withheld import WithheldAnswer

    answers = {answer: e.name for e in key.EXERCISES for answer in e.answers}
    assert "utils.sycophancy.readout_damage" in answers  # readout_damage(W, b, x, ablated h) IS collateral_damage
    assert "utils.sycophancy.reconstruct" not in answers  # the model's read-out: a step, not an answer
    view = withheld_view(answers, tmp_path)
    spec = importlib.util.spec_from_file_location("withheld_sycophancy", view / "sycophancy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    W, b, x = torch.randn(3, 8), -0.1 * torch.ones(8), torch.rand(4, 8)
    assert torch.equal(module.reconstruct(W, b, x @ W.T), syc.reconstruct(W, b, x @ W.T))
    for name in ("feature_direction", "ablate_direction", "collateral_damage", "readout_damage", "ablate_one_sided",
                 "steering_effect"):
        assert "return" not in (view / "sycophancy.py").read_text().split(f"def {name}(")[1].split("\ndef ")[0]
    with pytest.raises(WithheldAnswer):
        module.readout_damage(W, b, x, x @ W.T)


# --- the lesson's data and mechanism -------------------------------------------------------------

def test_correlated_features_keep_their_marginals_and_correlations():
    x = syc.correlated_features(100_000, 2, torch.Generator().manual_seed(0))
    active = (x > 0).float().flatten(0, 1)
    assert torch.allclose(active.mean(0), syc.ACTIVE, atol=0.01)
    corr = torch.corrcoef(active.T)
    agree, conf, sentiment = (syc.index(n) for n in ("agreement_with_user", "confidence", "user_sentiment_positive"))
    assert corr[agree, conf] < -0.1 and corr[agree, sentiment] > 0.3
    with pytest.raises(ValueError, match="unknown feature"):
        syc.index("sycophancy")


def test_an_antipodal_pair_shares_the_damage_and_the_steering():
    """Features 0 and 1 share one hidden dimension (antipodal), feature 2 has its own: what sections 4 and 5 show."""
    W = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    b = torch.full((3,), -0.05)
    x = torch.tensor([[0.8, 0.0, 0.5], [0.0, 0.6, 0.0], [0.0, 0.0, 0.9], [0.4, 0.0, 0.0]])
    direction = syc.feature_direction(W, 0)
    damage = syc.collateral_damage(W, b, x, direction)
    assert damage[0] > 0.05 and damage[1] > 0.05 and abs(damage[2]) < 1e-6
    down = syc.steering_effect(W, b, x, direction, -0.5)
    assert down[0] < 0 < down[1] and abs(down[2]) < 1e-6
