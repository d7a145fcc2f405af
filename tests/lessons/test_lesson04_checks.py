"""Lesson 04's checks, beyond the generic ones of test_answer_keys.py: the features of the trained exercise, the
tricky cases the input builders guarantee, mistakes no declaration names, and the library code the lesson uses."""

import copy
import math

import nbformat
import plotly.graph_objects as go
import pytest
import torch

from grader import key as answer_key
from grader.key import lesson04 as key
from grader.lessons import REPO, source_notebook
from utils import ToyModel, evaluate_loss, metrics, train
from utils.checks import CheckFailed, judge
from utils.checks import lesson04 as checks
from utils.geometry import random_rotation, regular_polygon

LESSON_KEY = answer_key.load(nbformat.read(source_notebook("04_geometry"), as_version=4), REPO)


def visible(name):
    exercise = next(e for e in LESSON_KEY.exercises if e.name == name)
    return exercise, answer_key.visible_inputs(LESSON_KEY, exercise)


# --- analyze_superposition -----------------------------------------------------------------------

def test_the_builder_makes_every_case_telling():
    """Sparse cases are polygons, the dense case's instance 0 is clearly worse than the best one and has a feature
    with 0.5 < norm < sqrt(0.5), and the last case represents exactly one feature."""
    exercise, inputs = visible("analyze_superposition")
    for given in [inputs, *answer_key.graded_inputs(LESSON_KEY, exercise, "carol")]:
        for case in checks.SPARSE_CASES:
            assert checks.is_polygon(key._best(*given[case]["args"], **given[case]["kwargs"])), case
        args, kwargs = given[checks.DENSE]["args"], given[checks.DENSE]["kwargs"]
        W, losses = checks.seeded_training(*args, **kwargs)
        assert losses[0] > 1.01 * losses.min()
        norms = W[int(losses.argmin())].norm(dim=0)
        assert ((norms > 0.5) & (norms < math.sqrt(0.5))).any() and (norms < 0.5).any()
        best = key._best(*given[checks.ONE_FEATURE]["args"], **given[checks.ONE_FEATURE]["kwargs"])
        assert int((best.norm(dim=0) > 0.5).sum()) == 1
        assert given[checks.MORE_STEPS]["kwargs"]["steps"] > given[checks.SPARSE]["kwargs"]["steps"]
        assert given[checks.OTHER_SEED]["kwargs"]["seed"] != given[checks.SPARSE]["kwargs"]["seed"]


def test_mean_cosine_candidates_tell_the_formulas_apart():
    W = torch.tensor([[1.0, 0.0, -0.6, 0.1], [0.0, 1.0, -0.6, 0.1]])  # feature 3 is not represented
    found = checks.mean_cosines(W)
    cos = metrics.cosine_similarities(W[:, :3])
    right = float((cos.sum() - 3) / 6)
    assert found[checks.MEAN_RIGHT] == pytest.approx(right, abs=1e-6)
    assert found[checks.MEAN_ABS] == pytest.approx(float((cos.abs().sum() - 3) / 6), abs=1e-6)
    assert found[checks.MEAN_DIAGONAL] == pytest.approx(float(cos.mean()), abs=1e-6)
    assert found[checks.MEAN_HALF] == pytest.approx(right / 2, abs=1e-6)
    assert found[checks.MEAN_ALL] != pytest.approx(right, abs=1e-6)
    assert checks.counts(W) == {checks.COUNT_RIGHT: 3, checks.COUNT_SQUARED: 3, checks.COUNT_ROWS: 2}
    assert checks.mean_cosines(W[:, :1])[checks.MEAN_RIGHT] == 0.0  # fewer than two: 0.0, never nan


def test_a_regular_polygon_is_one_and_a_random_w_is_not():
    for k in (4, 5, 6):
        assert checks.is_polygon(1.1 * regular_polygon(k, 17.0))
    assert not checks.is_polygon(torch.randn(2, 5, generator=torch.Generator().manual_seed(0)))
    assert not checks.is_polygon(0.3 * regular_polygon(5))  # the shape without the norms


def _solution(n_features, n_hidden, sparsity, steps=2000, seed=0, *, lr=5e-3, train_seed=None):
    model = ToyModel(n_features, n_hidden, n_instances=4, sparsity=sparsity, seed=seed, device="cpu")
    train(model, steps, batch_size=512, lr=lr, seed=seed if train_seed is None else train_seed, progress=False)
    losses = evaluate_loss(model)
    W = model.W.detach()[int(losses.argmin())]
    keep = W.norm(dim=0) > 0.5
    k = int(keep.sum())
    cos = metrics.cosine_similarities(W[:, keep])
    mean = 0.0 if k < 2 else ((cos.sum() - cos.diagonal().sum()) / (k * (k - 1))).item()
    return {"W": W, "mean_cosine": mean, "n_represented": k, "figure": go.Figure()}


def test_a_student_style_solution_passes_and_the_reference_passes_graded_inputs():
    checks.check("analyze_superposition", _solution)
    exercise = key.ANALYZE_SUPERPOSITION
    for inputs in answer_key.graded_inputs(LESSON_KEY, exercise, "dave"):
        verdict = judge(LESSON_KEY.checks.observe(exercise.name, _solution, inputs),
                        answer_key.expectation(LESSON_KEY, exercise, inputs))
        assert verdict.ok, verdict


def test_a_run_with_other_random_draws_passes_as_on_a_gpu():
    """On a GPU the batches are drawn by another generator: W is not the CPU's, but every feature still holds."""
    checks.check("analyze_superposition", lambda *a, **k: _solution(*a, **k, train_seed=k.get("seed", 0) + 1))


def test_training_with_other_settings_is_told_the_sparse_geometry():
    with pytest.raises(CheckFailed, match="regular polygon"):
        checks.check("analyze_superposition", lambda *a, **k: _solution(*a, **k, lr=2e-4))


def test_a_diverged_w_fails():
    def diverged(*args, **kwargs):
        result = _solution(*args, **kwargs)
        return {**result, "W": result["W"] * math.nan}
    with pytest.raises(CheckFailed, match="W finite"):
        checks.check("analyze_superposition", diverged)


# --- feature_dimensionality ----------------------------------------------------------------------

def test_feature_dimensionality_closed_forms():
    assert torch.allclose(metrics.feature_dimensionality(3.0 * regular_polygon(5)), torch.full((5,), 0.4), atol=1e-5)
    assert torch.allclose(metrics.feature_dimensionality(torch.tensor([[2.0, -2.0]])), torch.full((2,), 0.5))
    exercise, inputs = visible("feature_dimensionality")
    D = metrics.feature_dimensionality(inputs["antipodal pair"]["args"][0])
    assert int(torch.isclose(D, torch.tensor(0.5), atol=1e-5).sum()) == 2  # the pair; the others share 3 dimensions


def test_feature_dimensionality_is_the_papers_formula():
    W = torch.randn(5, 12, generator=torch.Generator().manual_seed(7))
    W_hat = W / W.norm(dim=0, keepdim=True)
    assert torch.allclose(metrics.feature_dimensionality(W), W.norm(dim=0) ** 2 / ((W_hat.T @ W) ** 2).sum(dim=1),
                          atol=1e-5)


# --- rotation_loss_change ------------------------------------------------------------------------

def test_the_bottleneck_is_rotation_invariant_and_the_hidden_relu_is_not():
    exercise, inputs = visible("rotation_loss_change")
    for case, spec in inputs.items():
        change = key.reference_rotation_loss_change(checks.build_model(spec["model"]), spec["rotation"])
        assert (abs(change) < 1e-6) == case.startswith("bottleneck"), (case, change)
    model = ToyModel(7, 4, sparsity=0.9, seed=11, device="cpu")
    assert abs(key.reference_rotation_loss_change(model, random_rotation(4, seed=11))) < 1e-6
    assert torch.equal(model.W, ToyModel(7, 4, sparsity=0.9, seed=11, device="cpu").W)


def test_fresh_batches_of_another_size_are_told_to_use_the_same_batch():
    def fresh_batches(model, rotation):
        rotated = copy.deepcopy(model)
        with torch.no_grad():
            rotated.W.copy_(rotation @ model.W)
        x, y = model.generate_batch(1000), model.generate_batch(1000)
        return rotated.loss(x, rotated(x)).item() - model.loss(y, model(y)).item()
    with pytest.raises(CheckFailed, match="SAME batch"):
        checks.check("rotation_loss_change", fresh_batches)


def test_a_zero_dimensional_tensor_is_not_a_float():
    with pytest.raises(CheckFailed, match=r"float\(\.\.\.\)"):
        checks.check("rotation_loss_change", lambda model, rotation: torch.tensor(
            key.reference_rotation_loss_change(model, rotation)))


def test_changing_the_bias_in_place_is_a_changed_model():
    def bias_changed(model, rotation):
        change = key.reference_rotation_loss_change(model, rotation)
        with torch.no_grad():
            model.b_final.zero_()
        return change
    with pytest.raises(CheckFailed, match="changed the model it was given"):
        checks.check("rotation_loss_change", bias_changed)


# --- utils.geometry (introduced in lesson 04) ----------------------------------------------------

def test_geometry_helpers():
    from utils.geometry import HiddenReLUModel, mean_pairwise_cosine, rotation_2d
    for k in (3, 4, 5, 7):
        assert abs(mean_pairwise_cosine(regular_polygon(k)) + 1 / (k - 1)) < 1e-5  # the lower bound, attained
    R = random_rotation(4, seed=3)
    assert torch.allclose(R.T @ R, torch.eye(4), atol=1e-5) and abs(torch.det(R).item() - 1) < 1e-5
    assert torch.allclose(rotation_2d(90) @ torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), atol=1e-6)
    model = HiddenReLUModel(5, 2, n_instances=2, sparsity=0.9, seed=1)
    with torch.no_grad():
        model.b_final.fill_(-0.3)  # some outputs negative before the output ReLU
    x = model.generate_batch(64, torch.Generator().manual_seed(0))
    with torch.no_grad():  # the paper's ReLU(W^T ReLU(W x) + b); activation="linear" drops the output ReLU
        h = torch.relu(torch.einsum("bif,ihf->bih", x, model.W))
        before_relu = torch.einsum("bih,ihf->bif", h, model.W) + model.b_final
        assert (before_relu < 0).any() and torch.allclose(model(x), torch.relu(before_relu))
        linear = HiddenReLUModel(5, 2, n_instances=2, sparsity=0.9, seed=1, activation="linear")
        linear.load_state_dict(model.state_dict())
        assert torch.allclose(linear(x), before_relu)
    loss = model.loss_and_grads(x)  # must be autograd through both ReLUs, not ToyModel's closed form
    W = model.W.detach().clone().requires_grad_()
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W))
    reference = ((x - torch.relu(torch.einsum("bih,ihf->bif", h, W) + model.b_final.detach())) ** 2).mean(dim=(0, 2))
    reference.sum().backward()
    assert torch.allclose(loss, reference.detach(), atol=1e-6) and torch.allclose(model.W.grad, W.grad, atol=1e-6)
