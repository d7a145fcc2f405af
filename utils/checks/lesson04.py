"""Visible checks for lesson 04 (the geometry of superposition). Each exercise: probe_*, judge_*, check_*."""

from __future__ import annotations

import torch

from utils import metrics
from utils.checks import Plain, as_tensor, call_learner, close, expect_shape, fail, run_check
from utils.device import make_generator


def _generator(seed: int) -> torch.Generator:
    return make_generator(4000 + seed, torch.device("cpu"))


# --- feature_dimensionality ----------------------------------------------------------------------

def _dimensionality_inputs(seed: int) -> torch.Tensor:
    g = _generator(seed)
    W = torch.randn(4, 9, generator=g)
    W[:, :2] = torch.tensor([[1.5, -1.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # an antipodal pair: D = 1/2
    W[0, 2:] = 0.0
    return W


def probe_feature_dimensionality(feature_dimensionality, seed: int) -> Plain:
    W = _dimensionality_inputs(seed)
    return {"D": as_tensor(call_learner(feature_dimensionality, W.clone()), "feature_dimensionality(W)")}


def judge_feature_dimensionality(data: Plain, seed: int) -> str:
    W = _dimensionality_inputs(seed)
    got, want = data["D"], metrics.feature_dimensionality(W)
    if tuple(got.shape) == (W.shape[0],):
        fail("one value per row: features are the columns of W (n_hidden, n_features); return (n_features,).")
    expect_shape(got, tuple(want.shape), "feature_dimensionality(W)", "One D_i per feature (column of W).")
    gram = W.T @ W
    norms2 = gram.diagonal()
    unnormalised = norms2 / (gram ** 2).sum(dim=1)
    if close(got, unnormalised, atol=1e-4):
        fail("the denominator must use the unit vector W_i_hat = W_i / ||W_i||: sum_j (W_i_hat . W_j)^2. "
             "Without normalising, D_i changes when you rescale W, and a dedicated feature no longer has D = 1.")
    projections = ((W / W.norm(dim=0, keepdim=True)).T @ W) ** 2
    without_self = norms2 / (projections.sum(dim=1) - norms2)
    if not torch.isfinite(got).all() or close(got, without_self, atol=1e-4):
        fail("the sum in the denominator runs over ALL j, including j = i (which contributes ||W_i||^2); "
             "otherwise a feature alone in its dimension divides by zero.")
    if not close(got, want, atol=1e-4):
        fail("D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2, with W_i the i-th column. An antipodal pair should "
             "give 1/2 each.")
    return "feature_dimensionality: one D_i per column, antipodal pair = 1/2, matches utils.metrics"


def check_feature_dimensionality(feature_dimensionality, seed: int = 0) -> None:
    run_check(probe_feature_dimensionality, judge_feature_dimensionality, feature_dimensionality, seed)


# --- analyze_superposition -----------------------------------------------------------------------

CASES = (("sparse", 0.95), ("dense", 0.0))


def probe_analyze_superposition(analyze_superposition, seed: int) -> Plain:
    data: Plain = {}
    for name, sparsity in CASES:
        result = call_learner(analyze_superposition, 5, 2, sparsity, steps=1500, seed=seed)
        if not isinstance(result, dict):
            return {"type": type(result).__name__}
        data[name] = {"W": as_tensor(result.get("W"), "result['W']"),
                      "mean_cosine": float(result.get("mean_cosine", float("nan"))),
                      "n_represented": int(result.get("n_represented", -1)),
                      "figure": type(result.get("figure")).__name__}
    data["type"] = "dict"
    return data


def reference_mean_cosine(W: torch.Tensor, threshold: float = 0.5) -> float:
    """Mean signed cosine over pairs of distinct represented features (0.0 with fewer than two)."""
    keep = W.norm(dim=0) > threshold
    cos = metrics.cosine_similarities(W[:, keep])
    k = int(keep.sum())
    return 0.0 if k < 2 else float((cos.sum() - cos.diagonal().sum()) / (k * (k - 1)))


def judge_analyze_superposition(data: Plain, seed: int) -> str:
    if data["type"] != "dict":
        fail(f"analyze_superposition should return a dict (W, mean_cosine, n_represented, figure); got {data['type']}.")
    for name, sparsity in CASES:
        result = data[name]
        W = result["W"]
        if tuple(W.shape) == (5, 2):
            fail("W is (n_features, n_hidden) = (5, 2): return it as (n_hidden, n_features) = (2, 5), columns = features.")
        expect_shape(W, (2, 5), "result['W']", "W of the best instance, (n_hidden, n_features).")
        if result["figure"] != "Figure":
            fail(f"result['figure'] should be a plotly go.Figure of the learned directions; got {result['figure']}.")
        n_rep = int((W.norm(dim=0) > 0.5).sum())
        if result["n_represented"] != n_rep:
            fail(f"n_represented = {result['n_represented']}, but {n_rep} columns of the returned W have norm > 0.5.")
        want = reference_mean_cosine(W)
        keep = W.norm(dim=0) > 0.5
        k = int(keep.sum())
        cos = metrics.cosine_similarities(W[:, keep])
        if k >= 2 and abs(result["mean_cosine"] - float((cos.abs().sum() - k) / (k * (k - 1)))) < 1e-4 \
                and abs(want - float((cos.abs().sum() - k) / (k * (k - 1)))) > 1e-3:
            fail("mean_cosine uses |cos|: the exercise asks for the signed cosine (a pentagon's is negative).")
        if k >= 2 and abs(result["mean_cosine"] - float(cos.mean())) < 1e-4 and abs(want - float(cos.mean())) > 1e-3:
            fail("mean_cosine includes the diagonal (each feature with itself, cos = 1): average over i != j.")
        if abs(result["mean_cosine"] - want) > 1e-3:
            fail(f"mean_cosine = {result['mean_cosine']:.4f}, but the returned W gives {want:.4f} (the mean signed "
                 "cosine over pairs of distinct represented features).")
        if name == "sparse" and n_rep < 4:
            fail(f"with sparsity 0.95 (features active 5% of the time) a trained 5->2 model represents all 5 "
                 f"features (a pentagon); yours represents {n_rep}. Is sparsity passed as S (the probability of "
                 "being zero), was the model trained, and did you keep the lowest-loss of several seeds?")
        if name == "sparse" and abs(result["mean_cosine"] + 0.25) > 0.05:
            fail(f"the sparse model's mean cosine is {result['mean_cosine']:.3f}; a trained pentagon's is -0.25. "
                 "Was the model trained, and did you keep the lowest-loss seed?")
        if name == "dense" and n_rep > 4:
            fail(f"with dense features (S = 0) a 5->2 model cannot afford to represent all 5 features; yours "
                 f"represents {n_rep}. Did it train?")
    return "analyze_superposition: W orientation, mean signed cosine, represented features, pentagon when sparse"


def check_analyze_superposition(analyze_superposition, seed: int = 0) -> None:
    run_check(probe_analyze_superposition, judge_analyze_superposition, analyze_superposition, seed)


# --- rotation_loss_change ------------------------------------------------------------------------

def _rotation_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = _generator(seed)
    W = torch.randn(3, 6, generator=g) * 0.7
    b = -0.1 * torch.ones(6)
    R, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
    x = torch.rand(256, 6, generator=g) * (torch.rand(256, 6, generator=g) < 0.3)
    return W, b, R, x


def reference_losses(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    """(bottleneck loss, hidden-ReLU loss) of reconstructing x (batch, n_features)."""
    bottleneck = torch.relu(x @ W.T @ W + b)
    hidden_relu = torch.relu(torch.relu(x @ W.T) @ W + b)
    return float(((x - bottleneck) ** 2).mean()), float(((x - hidden_relu) ** 2).mean())


def probe_rotation_loss_change(rotation_loss_change, seed: int) -> Plain:
    W, b, R, x = _rotation_inputs(seed)
    result = call_learner(rotation_loss_change, W.clone(), b.clone(), R.clone(), x.clone())
    if not isinstance(result, dict):
        return {"type": type(result).__name__}
    return {"type": "dict", "bottleneck": float(result.get("bottleneck", float("nan"))),
            "hidden_relu": float(result.get("hidden_relu", float("nan")))}


def judge_rotation_loss_change(data: Plain, seed: int) -> str:
    if data["type"] != "dict":
        fail(f"rotation_loss_change should return a dict with keys 'bottleneck' and 'hidden_relu'; got {data['type']}.")
    W, b, R, x = _rotation_inputs(seed)
    before, after = reference_losses(W, b, x), reference_losses(R @ W, b, x)
    want = {"bottleneck": after[0] - before[0], "hidden_relu": after[1] - before[1]}
    if abs(data["bottleneck"]) > 1e-5:
        fail(f"the bottleneck model's loss changed by {data['bottleneck']:.2e} under a rotation of the hidden "
             "space; it must not: (R W)^T (R W) = W^T R^T R W = W^T W. Rotate the hidden space as W -> R W "
             "(R is (n_hidden, n_hidden)), not W R.")
    if abs(data["hidden_relu"]) < 1e-6:
        fail("the hidden-ReLU model's loss did not change: put the ReLU on the hidden layer, h = ReLU(W x), "
             "then x_hat = ReLU(W^T h + b); an elementwise ReLU does not commute with a rotation.")
    if abs(data["hidden_relu"] - want["hidden_relu"]) > 1e-5:
        if abs(data["hidden_relu"] + want["hidden_relu"]) < 1e-5:
            fail("the sign is flipped: return loss(rotated) - loss(original).")
        fail(f"hidden_relu change = {data['hidden_relu']:.6f}, expected {want['hidden_relu']:.6f}: the loss is the "
             "mean over batch and features of (x - x_hat)^2, the rotated weights are R @ W.")
    return "rotation_loss_change: the bottleneck is rotation-invariant, the hidden ReLU is not"


def check_rotation_loss_change(rotation_loss_change, seed: int = 0) -> None:
    run_check(probe_rotation_loss_change, judge_rotation_loss_change, rotation_loss_change, seed)


EXERCISES = {
    "test_feature_dimensionality": ("feature_dimensionality", probe_feature_dimensionality,
                                    judge_feature_dimensionality),
    "test_analyze_superposition": ("analyze_superposition", probe_analyze_superposition, judge_analyze_superposition),
    "test_rotation_loss_change": ("rotation_loss_change", probe_rotation_loss_change, judge_rotation_loss_change),
}
