"""Lesson 04's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import pytest
import torch

from utils import ToyModel, best_of_seeds, metrics, train
from utils.checks import CheckFailed
from utils.checks import lesson04 as checks


def dimensionality(W):
    return metrics.feature_dimensionality(W)


@pytest.mark.parametrize("wrong, words", [
    (lambda W: W.norm(dim=0) ** 2 / ((W.T @ W) ** 2).sum(dim=1), "unit vector"),
    (lambda W: W.norm(dim=0) ** 2 / (((W / W.norm(dim=0)).T @ W) ** 2).sum(dim=1).sub(W.norm(dim=0) ** 2), "ALL j"),
    (lambda W: metrics.feature_dimensionality(W.T), "row"),
])
def test_feature_dimensionality_names_misconceptions(wrong, words):
    checks.check_feature_dimensionality(dimensionality)
    with pytest.raises(CheckFailed, match=words):
        checks.check_feature_dimensionality(wrong)


def analyze(n_features, n_hidden, sparsity, steps=2000, seed=0, *, absolute=False, transpose=False, as_probability=False):
    model = ToyModel(n_features, n_hidden, 4, sparsity=1 - sparsity if as_probability and sparsity else sparsity, seed=seed)
    train(model, steps=steps, batch_size=512, lr=5e-3, seed=seed, progress=False)
    W = model.W.detach()[best_of_seeds(model, 4)][0]
    keep = W.norm(dim=0) > 0.5
    cos = metrics.cosine_similarities(W[:, keep])
    cos = cos.abs() if absolute else cos
    k = int(keep.sum())
    mean = 0.0 if k < 2 else ((cos.sum() - cos.diagonal().sum()) / (k * (k - 1))).item()
    import plotly.graph_objects as go
    return {"W": W.T if transpose else W, "mean_cosine": mean, "n_represented": k, "figure": go.Figure()}


def test_analyze_superposition_check():
    checks.check_analyze_superposition(analyze)
    with pytest.raises(CheckFailed, match=r"\|cos\|"):
        checks.check_analyze_superposition(lambda *a, **k: analyze(*a, **k, absolute=True))
    with pytest.raises(CheckFailed, match="n_hidden, n_features"):
        checks.check_analyze_superposition(lambda *a, **k: analyze(*a, **k, transpose=True))
    with pytest.raises(CheckFailed, match="probability of being zero"):
        checks.check_analyze_superposition(lambda *a, **k: analyze(*a, **k, as_probability=True))


def rotation_ok(W, b, R, x):
    before, after = checks.reference_losses(W, b, x), checks.reference_losses(R @ W, b, x)
    return {"bottleneck": after[0] - before[0], "hidden_relu": after[1] - before[1]}


def rotation_no_hidden_relu(W, b, R, x):
    return {"bottleneck": 0.0, "hidden_relu": 0.0}


def rotation_wrong_side(W, b, R, x):
    changed = torch.relu(x @ (R @ W).T @ W + b)  # rotates the encoder only, not the read-out
    return {"bottleneck": float(((x - changed) ** 2).mean() - checks.reference_losses(W, b, x)[0]),
            "hidden_relu": rotation_ok(W, b, R, x)["hidden_relu"]}


@pytest.mark.parametrize("wrong, words", [(rotation_no_hidden_relu, "hidden layer"), (rotation_wrong_side, "R W")])
def test_rotation_loss_change_names_misconceptions(wrong, words):
    checks.check_rotation_loss_change(rotation_ok)
    with pytest.raises(CheckFailed, match=words):
        checks.check_rotation_loss_change(wrong)
