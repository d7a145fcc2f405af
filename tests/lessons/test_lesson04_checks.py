"""Lesson 04's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import copy
from functools import lru_cache

import plotly.graph_objects as go
import pytest
import torch

from utils import ToyModel, best_of_seeds, evaluate_loss, metrics, train
from utils.checks import CheckFailed, decode_plain, encode_plain
from utils.checks import lesson04 as checks
from utils.geometry import regular_polygon


def through_json(probe, judge, learner, seed=0):
    """What the grader does: probe in the sandbox, JSON across, judge in the trusted process."""
    return judge(decode_plain(encode_plain(probe(learner, seed))), seed)


# --- analyze_superposition -----------------------------------------------------------------------

@lru_cache(maxsize=None)
def trained_W(n_features, n_hidden, sparsity, steps, seed):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these matrices are tiny: one thread is as fast, and immune to a busy machine
    try:
        model = ToyModel(n_features, n_hidden, 4, sparsity=sparsity, seed=seed, device="cpu")
        train(model, steps=steps, batch_size=512, lr=5e-3, seed=seed, progress=False)
        return model.W.detach()[best_of_seeds(model, 4)][0]
    finally:
        torch.set_num_threads(threads)


def made_W(n_features, n_hidden, sparsity, steps, seed):
    """What training gives, without training (fast): a polygon when sparse, two orthogonal features when dense."""
    angle = 17.0 * seed
    if sparsity >= 0.5:
        return 1.13 * regular_polygon(n_features, angle)
    return torch.cat([regular_polygon(4, angle)[:, :2], torch.full((2, n_features - 2), 0.01)], dim=1)


def analyze(n_features, n_hidden, sparsity, steps=2000, seed=0, *, W=None, mean=None, absolute=False,
            diagonal=False, every_feature=False, transpose=False, trained=False):
    if W is None:
        W = (trained_W if trained else made_W)(n_features, n_hidden, sparsity, steps, seed)
    keep = torch.ones(n_features, dtype=torch.bool) if every_feature else W.norm(dim=0) > 0.5
    cos = metrics.cosine_similarities(W[:, keep])
    cos = cos.abs() if absolute else cos
    k = int(keep.sum())
    if mean is None:
        mean = cos.mean().item() if diagonal else 0.0 if k < 2 else ((cos.sum() - cos.diagonal().sum()) / (k * (k - 1))).item()
    return {"W": W.T if transpose else W, "mean_cosine": mean, "n_represented": int((W.norm(dim=0) > 0.5).sum()),
            "figure": go.Figure()}


def as_probability(n_features, n_hidden, sparsity, steps=2000, seed=0):
    return analyze(n_features, n_hidden, 1 - sparsity, steps, seed)


def untrained(n_features, n_hidden, sparsity, steps=2000, seed=0):
    return analyze(n_features, n_hidden, sparsity, steps, seed,
                   W=ToyModel(n_features, n_hidden, 4, sparsity=sparsity, seed=seed).W.detach()[0])


def no_figure(*args, **kwargs):
    return {**analyze(*args, **kwargs), "figure": None}


def test_analyze_superposition_reference_passes_through_json():
    trained = lambda *a, **k: analyze(*a, **k, trained=True)  # noqa: E731
    assert "5-gon" in through_json(checks.probe_analyze_superposition, checks.judge_analyze_superposition, trained)
    for seed in (1, 2):
        assert "-gon" in through_json(checks.probe_analyze_superposition, checks.judge_analyze_superposition, analyze, seed)


@pytest.mark.parametrize("wrong, words", [
    (lambda *a, **k: analyze(*a, **k, absolute=True), r"\|cos\|"),
    (lambda *a, **k: analyze(*a, **k, diagonal=True), "includes the diagonal"),
    (lambda *a, **k: analyze(*a, **k, transpose=True), "transposed"),
    (as_probability, "probability a feature is zero"),
    (untrained, "not trained"),
    (no_figure, "go.Figure"),
    (lambda *a, **k: [1, 2], "return a dict"),
])
def test_analyze_superposition_names_misconceptions(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        checks.check_analyze_superposition(wrong)


def test_analyze_superposition_mean_over_represented_features_only():
    W = torch.tensor([[1.0, 0.0, 0.1], [0.0, 1.0, 0.1]])  # feature 2 is not represented
    every = analyze(3, 2, 0.0, W=W, every_feature=True)
    with pytest.raises(CheckFailed, match="represented ones only"):
        checks._judge_measurements({**every, "keys": list(every)}, W, "dense")
    checks._judge_measurements({**analyze(3, 2, 0.0, W=W), "keys": []}, W, "dense")


# --- feature_dimensionality ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feature_dimensionality_reference_passes_through_json(seed):
    through_json(checks.probe_feature_dimensionality, checks.judge_feature_dimensionality,
                 metrics.feature_dimensionality, seed)


@pytest.mark.parametrize("wrong, words", [
    (lambda W: W.norm(dim=0) ** 2 / ((W.T @ W) ** 2).sum(dim=1), "unit vector"),
    (lambda W: W.norm(dim=0) ** 2 / (((W / W.norm(dim=0)).T @ W) ** 2).sum(dim=1).sub(W.norm(dim=0) ** 2), "ALL j"),
    (lambda W: metrics.feature_dimensionality(W.T), "ROW"),
    (lambda W: 1 / metrics.feature_dimensionality(W), "antipodal pair"),
])
def test_feature_dimensionality_names_misconceptions(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        checks.check_feature_dimensionality(wrong)


# --- rotation_loss_change ------------------------------------------------------------------------

def rotated(model, rotation):
    copied = copy.deepcopy(model)
    with torch.no_grad():
        copied.W.copy_(rotation @ model.W)
    return copied


def rotation_ok(model, rotation):
    return float(evaluate_loss(rotated(model, rotation)) - evaluate_loss(model))


def in_place(model, rotation):
    before = evaluate_loss(model)
    with torch.no_grad():
        model.W.copy_(rotation @ model.W)
    return float(evaluate_loss(model) - before)


def fresh_batches(model, rotation):  # compares the losses on two different random batches
    def loss(m):
        x = m.generate_batch(4096)
        return m.loss(x, m(x)).item()
    return loss(rotated(model, rotation)) - loss(model)


def rebuilt_as_toy_model(model, rotation):  # a new ToyModel loses the hidden ReLU
    plain = ToyModel(model.n_features, model.n_hidden, sparsity=float(model.sparsity[0, 0]), activation=model.activation)
    plain.load_state_dict(model.state_dict())
    return rotation_ok(plain, rotation)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotation_loss_change_reference_passes_through_json(seed):
    assert "not" in through_json(checks.probe_rotation_loss_change, checks.judge_rotation_loss_change, rotation_ok, seed)


@pytest.mark.parametrize("wrong, words", [
    (in_place, "deepcopy"),
    (fresh_batches, "SAME batch"),
    (rebuilt_as_toy_model, "own class"),
    (lambda model, rotation: -rotation_ok(model, rotation), "sign"),
    (lambda model, rotation: rotation_ok(model, rotation.T), "rotation.T"),
    (lambda model, rotation: "0.1", "float"),
])
def test_rotation_loss_change_names_misconceptions(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        checks.check_rotation_loss_change(wrong)


def test_exercises_cover_the_three_test_cells():
    assert set(checks.EXERCISES) == {"test_analyze_superposition", "test_feature_dimensionality",
                                     "test_rotation_loss_change"}


# --- utils.geometry (introduced in lesson 04) ----------------------------------------------------

def test_geometry_helpers():
    from utils.geometry import HiddenReLUModel, mean_pairwise_cosine, random_rotation, rotation_2d
    for k in (3, 4, 5, 7):
        assert abs(mean_pairwise_cosine(regular_polygon(k)) + 1 / (k - 1)) < 1e-5  # the lower bound, attained
    R = random_rotation(4, seed=3)
    assert torch.allclose(R.T @ R, torch.eye(4), atol=1e-5) and abs(torch.det(R).item() - 1) < 1e-5
    assert torch.allclose(rotation_2d(90) @ torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), atol=1e-6)
    model = HiddenReLUModel(5, 2, n_instances=2, sparsity=0.9, seed=1)
    x = model.generate_batch(64, torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = torch.relu(torch.einsum("bif,ihf->bih", x, model.W))
        assert torch.allclose(model(x), torch.einsum("bih,ihf->bif", h, model.W) + model.b_final)
    loss = model.loss_and_grads(x)  # must be autograd through the hidden ReLU, not ToyModel's closed form
    W = model.W.detach().clone().requires_grad_()
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W))
    reference = ((x - (torch.einsum("bih,ihf->bif", h, W) + model.b_final.detach())) ** 2).mean(dim=(0, 2))
    reference.sum().backward()
    assert torch.allclose(loss, reference.detach(), atol=1e-6) and torch.allclose(model.W.grad, W.grad, atol=1e-6)
