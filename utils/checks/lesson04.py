"""Visible checks for lesson 04 (the geometry of superposition). Each exercise: probe_*, judge_*, check_*.

probe_* calls the learner's object on inputs built from `seed` and returns plain data only; judge_*
rebuilds the inputs and the reference from `seed` (utils.metrics, utils.ToyModel, utils.evaluate_loss)
and names the likely misconception when something is off.
"""

from __future__ import annotations

import copy
import math
import numbers

import torch

from utils import metrics
from utils.checks import Plain, as_tensor, call_learner, close, expect_shape, fail, make_check
from utils.device import make_generator
from utils.geometry import HiddenReLUModel, mean_pairwise_cosine, random_rotation
from utils.model import ToyModel
from utils.training import evaluate_loss


def _generator(seed: int) -> torch.Generator:
    return make_generator(4000 + seed, torch.device("cpu"))


THRESHOLD = 0.5  # a feature is "represented" when ||W_i|| > THRESHOLD (utils.metrics.represented_features)


# --- analyze_superposition -----------------------------------------------------------------------

STEPS = 1000  # what the probe asks for: enough for 5 -> 2 with lr 5e-3 (about a second)


def analyze_cases(seed: int) -> tuple[tuple[str, int, float], ...]:
    """(name, n_features, sparsity) of the two runs the probe asks for; n_hidden is always 2.

    The sparse run settles into a regular polygon (seed 0: the pentagon; seed 1: a square of two
    antipodal pairs); the dense run spends its two dimensions on about two features' worth of norm.
    """
    sparse = ((5, 0.95), (4, 0.9), (5, 0.97))[seed % 3]
    dense_n = (5, 4, 4)[seed % 3]
    return (("sparse", sparse[0], sparse[1]), ("dense", dense_n, 0.0))


def _plain_result(result) -> Plain:
    if not isinstance(result, dict):
        return {"type": type(result).__name__}
    out: Plain = {"type": "dict", "keys": sorted(str(k) for k in result)}
    W = result.get("W")
    out["W"] = as_tensor(W, "result['W']") if W is not None else "missing"
    for key, kind in (("mean_cosine", float), ("n_represented", int)):
        value = result.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        out[key] = kind(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else \
            f"type {type(value).__name__}"
    out["figure"] = type(result.get("figure")).__name__
    return out


def probe_analyze_superposition(analyze_superposition, seed: int) -> Plain:
    data: Plain = {}
    for name, n_features, sparsity in analyze_cases(seed):
        try:
            result = call_learner(analyze_superposition, n_features, 2, sparsity, steps=STEPS, seed=seed)
        except AssertionError:  # CheckFailed ("not implemented yet") goes to the learner as it is
            raise
        except Exception as error:  # noqa: BLE001 - recorded so the judge can name the likely cause
            data[name] = {"type": "error", "error": f"{type(error).__name__}: {error}"[:500]}
            continue
        data[name] = _plain_result(result)
    return data


def reference_mean_cosine(W: torch.Tensor, threshold: float = THRESHOLD) -> float:
    """Mean signed cosine over pairs of distinct represented features (0.0 with fewer than two)."""
    return mean_pairwise_cosine(W[:, W.norm(dim=0) > threshold])


def _initial_weights(n_features: int, seed: int) -> torch.Tensor:
    """The weights ToyModel(n_features, 2, n_instances=4, seed=seed) starts from: (4, 2, n_features)."""
    return ToyModel(n_features, 2, n_instances=4, seed=seed, device="cpu").W.detach()


def _judge_format(result: Plain, name: str, n_features: int, sparsity: float) -> torch.Tensor:
    call = f"analyze_superposition({n_features}, 2, {sparsity})"
    if result["type"] == "error":
        error = result["error"]
        hint = (" Pass `sparsity` to ToyModel unchanged: it is S, the probability a feature is ZERO, not "
                "1 - S." if "sparsity must be in" in error else "")
        fail(f"{call} raised {error}.{hint}")
    if result["type"] != "dict":
        fail(f"analyze_superposition should return a dict with keys 'W', 'mean_cosine', 'n_represented' and "
             f"'figure'; got {result['type']}.")
    missing = [k for k in ("W", "mean_cosine", "n_represented", "figure") if k not in result["keys"]]
    if missing:
        fail(f"the returned dict has no {', '.join(repr(k) for k in missing)}; it needs 'W', 'mean_cosine', "
             "'n_represented' and 'figure'.")
    W = result["W"]
    if not isinstance(W, torch.Tensor):
        fail("result['W'] should be the best instance's weights, a tensor of shape (n_hidden, n_features).")
    if tuple(W.shape) == (n_features, 2):
        fail(f"W is transposed: it has shape (n_features, n_hidden) = {tuple(W.shape)}; return it as "
             f"(n_hidden, n_features) = (2, {n_features}), one column per feature, as ToyModel stores it.")
    if W.ndim == 3 and tuple(W.shape[1:]) == (2, n_features):
        fail(f"W has shape {tuple(W.shape)}: return ONE instance, the lowest-loss one, as (n_hidden, n_features): "
             "model.W.detach()[best_of_seeds(model, 4)][0].")
    expect_shape(W, (2, n_features), "result['W']", "W of the best instance, (n_hidden, n_features).")
    if not torch.isfinite(W).all():
        fail("result['W'] contains nan or inf: did training diverge?")
    for key in ("mean_cosine", "n_represented"):
        if isinstance(result[key], str):
            fail(f"result['{key}'] should be a number, got {result[key]}.")
    if result["figure"] != "Figure":
        fail(f"result['figure'] should be a plotly go.Figure of the learned geometry (e.g. plots.feature_directions(W)); "
             f"got {result['figure']}.")
    return W


def _judge_measurements(result: Plain, W: torch.Tensor, name: str) -> None:
    norms = W.norm(dim=0)
    keep = norms > THRESHOLD
    k = int(keep.sum())
    if result["n_represented"] != k:
        fail(f"n_represented = {result['n_represented']} in the {name} run, but {k} columns of the returned W have "
             f"norm > {THRESHOLD} (column i is feature i; is W transposed when you count?).")
    got, want = result["mean_cosine"], reference_mean_cosine(W)
    if not math.isfinite(got):
        fail(f"mean_cosine is {got}: with fewer than two represented features return 0.0, and never divide by a "
             "zero norm (only represented features count).")
    if abs(got - want) <= 1e-3:
        return
    if k >= 2:
        cos = metrics.cosine_similarities(W[:, keep])
        off_diagonal = ~torch.eye(k, dtype=torch.bool)
        if abs(got - float(cos[off_diagonal].abs().mean())) < 1e-3:
            fail("mean_cosine uses |cos|: the exercise asks for the SIGNED cosine. A pentagon's mean is negative "
                 "(-0.25): its strongest interference is negative, which the ReLU removes for free.")
        if abs(got - float(cos.mean())) < 1e-3:
            fail("mean_cosine includes the diagonal (each feature with itself, cos = 1): average over pairs i != j "
                 "only, k (k - 1) of them.")
        if abs(got - float(cos[off_diagonal].mean()) / 2) < 1e-3:
            fail("mean_cosine counts each pair once but divides by k (k - 1), the number of ordered pairs: use "
                 "k (k - 1) / 2 with the upper triangle, or all off-diagonal entries with k (k - 1).")
    everything = mean_pairwise_cosine(W)
    if abs(got - everything) < 1e-3 and abs(everything - want) > 1e-3:
        fail("mean_cosine averages over ALL features; average over the represented ones only (norm > 0.5): a "
             "feature the model dropped has a near-zero column whose direction is noise.")
    fail(f"mean_cosine = {got:.4f}, but the returned W gives {want:.4f}: the mean signed cosine over pairs of "
         f"distinct represented features (norm > {THRESHOLD}).")


def judge_analyze_superposition(data: Plain, seed: int) -> str:
    cases = analyze_cases(seed)
    results = {name: data[name] for name, _, _ in cases}
    weights = {}
    for name, n_features, sparsity in cases:  # the format of both runs first
        weights[name] = _judge_format(results[name], name, n_features, sparsity)
    for name, _, _ in cases:
        _judge_measurements(results[name], weights[name], name)
    for name, n_features, sparsity in cases:  # then: did it train, with sparsity meaning S?
        W = weights[name]
        if any(close(W, W0, atol=1e-5) for W0 in _initial_weights(n_features, seed)):
            fail(f"the returned W of the {name} run is exactly ToyModel's initial weights: the model was not trained. "
                 "Call train(model, steps=steps, batch_size=512, lr=5e-3, seed=seed, progress=False) before reading W.")
    (_, n, S), (_, n_dense, _) = cases
    W, result = weights["sparse"], results["sparse"]
    total = float((W**2).sum())
    k = int((W.norm(dim=0) > THRESHOLD).sum())
    polygon = -1 / (n - 1)
    if k < n or abs(result["mean_cosine"] - polygon) > 0.03 or total < 0.8 * n:
        looks_dense = total < 3.0
        fail(f"with sparsity S = {S} (each feature active {1 - S:.0%} of the time) a trained {n} -> 2 model represents all "
             f"{n} features as a regular polygon: mean cosine -1/(n-1) = {polygon:.3f}, ||W||_F^2 about {n}. Yours "
             f"represents {k} with mean cosine {result['mean_cosine']:.3f} and ||W||_F^2 = {total:.2f}. "
             + ("That looks like DENSE features: is sparsity used as the feature probability? ToyModel's sparsity "
                "is S, the probability a feature is zero; pass it unchanged. " if looks_dense else "")
             + "Was the model trained (steps, lr=5e-3, batch_size=512), and did you keep the lowest-loss of the "
               "4 instances (best_of_seeds)?")
    W = weights["dense"]
    total = float((W**2).sum())
    if not 1.5 <= total <= 2.7:
        fail(f"with dense features (S = 0) interference costs on every input, so a trained {n_dense} -> 2 model keeps "
             f"about n_hidden = 2 features' worth of weight: ||W||_F^2 close to 2 (m / ||W||_F^2 = 1, no "
             f"superposition). Yours has ||W||_F^2 = {total:.2f}. Was it trained, with sparsity passed as S?")
    return (f"analyze_superposition: W is (n_hidden, n_features), mean signed cosine and n_represented match W, "
            f"a trained {n}-gon when sparse (mean cosine {polygon:.2f}), about 2 features' worth when dense")


check_analyze_superposition = make_check(probe_analyze_superposition, judge_analyze_superposition)


# --- feature_dimensionality ----------------------------------------------------------------------

def dimensionality_inputs(seed: int) -> torch.Tensor:
    """(4, 9): an antipodal pair (D = 1/2 each) orthogonal to 7 random features; no zero columns."""
    g = _generator(seed)
    W = torch.randn(4, 9, generator=g)
    scale = 1.0 + float(torch.rand((), generator=g))
    W[:, :2] = torch.tensor([[scale, -scale], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    W[0, 2:] = 0.0
    return W[:, torch.randperm(9, generator=g)]


def probe_feature_dimensionality(feature_dimensionality, seed: int) -> Plain:
    W = dimensionality_inputs(seed)
    return {"D": as_tensor(call_learner(feature_dimensionality, W.clone()), "feature_dimensionality(W)")}


def judge_feature_dimensionality(data: Plain, seed: int) -> str:
    W = dimensionality_inputs(seed)
    got, want = data["D"], metrics.feature_dimensionality(W)
    if tuple(got.shape) == (W.shape[0],):
        fail("you computed one value per ROW: features are the columns of W (n_hidden, n_features); return "
             "(n_features,), one D_i per column.")
    expect_shape(got, tuple(want.shape), "feature_dimensionality(W)", "One D_i per feature (column of W).")
    gram = W.T @ W
    norms2 = gram.diagonal()
    unnormalised = norms2 / (gram**2).sum(dim=1)
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
             "give 1/2 each, a feature orthogonal to all others 1.")
    return "feature_dimensionality: one D_i per column, antipodal pair = 1/2, matches utils.metrics"


check_feature_dimensionality = make_check(probe_feature_dimensionality, judge_feature_dimensionality)


# --- rotation_loss_change ------------------------------------------------------------------------

N_FEATURES, N_HIDDEN = 6, 3


def rotation_inputs(seed: int) -> tuple[ToyModel, HiddenReLUModel, torch.Tensor]:
    """A bottleneck ToyModel and a HiddenReLUModel (6 features, 3 hidden, one instance, seeded weights and
    biases, S = 0.8) and a random (3, 3) rotation. Untrained: invariance does not need training."""
    g = _generator(seed)
    models = []
    for cls in (ToyModel, HiddenReLUModel):
        model = cls(N_FEATURES, N_HIDDEN, sparsity=0.8, seed=4000 + seed, device="cpu")
        with torch.no_grad():
            model.W.mul_(1.5)
            model.b_final.copy_(0.2 * torch.randn(1, N_FEATURES, generator=g) - 0.1)
        models.append(model)
    return models[0], models[1], random_rotation(N_HIDDEN, seed=4000 + seed)


def reference_change(model: ToyModel, rotation: torch.Tensor) -> float:
    """evaluate_loss with W -> rotation @ W, minus evaluate_loss of the model; the model is not changed."""
    rotated = copy.deepcopy(model)
    with torch.no_grad():
        rotated.W.copy_(rotation @ model.W)
    return float(evaluate_loss(rotated).sum() - evaluate_loss(model).sum())


def _as_float(value) -> float | str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return f"type {type(value).__name__}" + (f" of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else "")


def probe_rotation_loss_change(rotation_loss_change, seed: int) -> Plain:
    bottleneck, hidden_relu, R = rotation_inputs(seed)
    data: Plain = {}
    for name, model in (("bottleneck", bottleneck), ("hidden_relu", hidden_relu)):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        data[name] = _as_float(call_learner(rotation_loss_change, model, R.clone()))
        data[f"{name}_unchanged"] = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    return data


def judge_rotation_loss_change(data: Plain, seed: int) -> str:
    bottleneck, hidden_relu, R = rotation_inputs(seed)
    for name in ("bottleneck", "hidden_relu"):
        if isinstance(data[name], str):
            fail(f"rotation_loss_change should return a float (the change in loss); for the {name} model it "
                 f"returned {data[name]}.")
        if not math.isfinite(data[name]):
            fail(f"rotation_loss_change returned {data[name]} for the {name} model.")
    for name in ("bottleneck", "hidden_relu"):
        if not data[f"{name}_unchanged"]:
            fail(f"rotation_loss_change changed the model it was given ({name}): rotate a copy "
                 "(copy.deepcopy(model)), and leave the learner's model as it was.")
    want = {"bottleneck": reference_change(bottleneck, R), "hidden_relu": reference_change(hidden_relu, R)}
    if abs(data["bottleneck"]) > 1e-6:
        fail(f"the bottleneck's loss changed by {data['bottleneck']:.2e} under a rotation of its hidden space; it must "
             "not: (R W)^T (R W) = W^T R^T R W = W^T W. Rotate W in BOTH places (the model uses the same W to "
             "encode and decode), and compare the two losses on the SAME batch: utils.evaluate_loss draws a "
             "fixed one; a fresh random batch for each adds noise.")
    if abs(data["hidden_relu"]) < 1e-6:
        fail("the hidden-ReLU model's loss did not change, but an elementwise ReLU does not commute with a rotation. "
             "Keep the model's own class (copy.deepcopy(model)) so its forward, h = ReLU(W x), is the one evaluated.")
    got = data["hidden_relu"]
    tolerance = 0.02 * abs(want["hidden_relu"]) + 1e-6
    if abs(got - want["hidden_relu"]) > tolerance:
        if abs(got + want["hidden_relu"]) <= tolerance:
            fail("the sign is flipped: return loss(rotated) - loss(original), so a rotation that hurts is positive.")
        transposed = reference_change(hidden_relu, R.T)
        if abs(got - transposed) <= 0.02 * abs(transposed) + 1e-6:
            fail("you rotated with rotation.T (W -> R^T W); the rotated weights are rotation @ W, with rotation "
                 "(n_hidden, n_hidden) acting on the hidden space.")
        fail(f"hidden-ReLU change = {got:.6f}, expected {want['hidden_relu']:.6f}: the rotated weights are "
             "rotation @ model.W, and both losses come from utils.evaluate_loss (one fixed batch).")
    return (f"rotation_loss_change: the bottleneck is rotation-invariant, the hidden ReLU is not "
            f"(change {want['hidden_relu']:+.4f})")


check_rotation_loss_change = make_check(probe_rotation_loss_change, judge_rotation_loss_change)


EXERCISES = {
    "test_analyze_superposition": ("analyze_superposition", probe_analyze_superposition, judge_analyze_superposition),
    "test_feature_dimensionality": ("feature_dimensionality", probe_feature_dimensionality,
                                    judge_feature_dimensionality),
    "test_rotation_loss_change": ("rotation_loss_change", probe_rotation_loss_change, judge_rotation_loss_change),
}
