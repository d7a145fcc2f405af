"""Answer key of lesson 04 (the geometry of superposition): references, known wrong answers, input builders.

analyze_superposition trains toy models; its reference and wrong answers share the cached seeded training
of utils.checks.lesson04 (the trusted side judges a score of answers on the same inputs, and most of them
differ from the reference only in what they do with the trained W). Its input builder trains too, to pick
seeds whose cases tell the mistakes apart: the sparse cases are regular polygons; the dense case's instance
0 is clearly worse than the best one, one of its features has a norm between 0.5 and sqrt(0.5) and one is
not represented; the 1-D case represents exactly one feature (so that a mean over fewer than two is asked).
Every norm stays 0.01 away from 0.5 and sqrt(0.5), so the counts do not hang on training's last digits.
"""

from __future__ import annotations

import copy
import math

import plotly.graph_objects as go
import torch

from grader.key import Exercise, Wrong, integer, uniform
from utils import metrics
from utils.checks import lesson04 as checks
from utils.checks.lesson04 import (DENSE, MORE_STEPS, ONE_FEATURE, OTHER_SEED, SPARSE, THRESHOLD, is_polygon,
                                   seeded_training, two_features_worth)
from utils.geometry import regular_polygon
from utils.model import ToyModel
from utils.training import evaluate_loss

LESSON = "04_geometry"
CHECKS = "utils.checks.lesson04"


def _seed(g: torch.Generator) -> int:
    return integer(g, 1, 999_999)  # never 0: the seed a learner who ignores `seed` gets


# --- analyze_superposition -------------------------------------------------------------------------

IGNORED_STEPS = 300  # what a wrong answer trains for whatever `steps` says: more than any case asks for


def _best(n_features, n_hidden, sparsity, steps, seed) -> torch.Tensor:
    W, losses = seeded_training(n_features, n_hidden, sparsity, steps, seed)
    return W[int(losses.argmin())]


def _far_from_thresholds(norms: torch.Tensor, margin: float = 0.01) -> bool:
    return bool(((norms - THRESHOLD).abs() > margin).all() and ((norms - math.sqrt(THRESHOLD)).abs() > margin).all())


def _sparse_seed(g, n, S, steps_list) -> int:
    """A seed whose best instance is a regular polygon after each number of steps."""
    for _ in range(50):
        seed = _seed(g)
        if all(is_polygon(_best(n, 2, S, steps, seed)) for steps in steps_list):
            return seed
    raise RuntimeError("no seed gave a polygon")


def _dense_ok(n, steps, seed) -> bool:
    W, losses = seeded_training(n, 2, 0.0, steps, seed)
    best = W[int(losses.argmin())]
    norms = best.norm(dim=0)
    k = int((norms > THRESHOLD).sum())
    means = checks.mean_cosines(best)
    mean = means[checks.MEAN_RIGHT]
    return (bool(losses[0] > 1.01 * losses.min())  # keeping instance 0 is a clearly worse W
            and _far_from_thresholds(norms)  # counts robust to the last digits of training
            and bool(((norms > THRESHOLD) & (norms < math.sqrt(THRESHOLD))).any())  # norm > 0.5 but norm^2 < 0.5
            and 2 <= k < n and abs(mean) > 0.02 and abs(means[checks.MEAN_ALL] - mean) > 0.01
            and two_features_worth(best))


def _one_feature_ok(n, steps, seed) -> bool:
    norms = _best(n, 1, 0.0, steps, seed).norm(dim=0)
    return int((norms > THRESHOLD).sum()) == 1 and _far_from_thresholds(norms)


def analyze_inputs(g: torch.Generator) -> dict:
    with checks.one_thread():
        return _analyze_inputs(g)


def _analyze_inputs(g: torch.Generator) -> dict:
    def case(n, h, S, steps, seed):
        return {"args": [n, h, S], "kwargs": {"steps": steps, "seed": seed}}

    n, S = integer(g, 4, 5), round(uniform(g, 0.9, 0.97), 3)
    steps, more = integer(g, 150, 200), integer(g, 25, 50)
    seed = _sparse_seed(g, n, S, (steps, steps + more))
    other = _sparse_seed(g, n, S, (steps,))
    n_dense, dense_steps = integer(g, 5, 6), integer(g, 60, 90)  # 36% of seeds qualify (24% at 120-180 steps)
    dense_seed = next(s for s in iter(lambda: _seed(g), None) if _dense_ok(n_dense, dense_steps, s))
    n_one, one_steps = integer(g, 2, 3), integer(g, 3, 12)  # in 1-D every cosine is +-1: with 4 features the mean can be 0
    one_seed = next(s for s in iter(lambda: _seed(g), None) if _one_feature_ok(n_one, one_steps, s))
    return {SPARSE: case(n, 2, S, steps, seed), OTHER_SEED: case(n, 2, S, steps, other),
            MORE_STEPS: case(n, 2, S, steps + more, seed), DENSE: case(n_dense, 2, 0.0, dense_steps, dense_seed),
            ONE_FEATURE: case(n_one, 1, 0.0, one_steps, one_seed)}


def _mean_cosine(W: torch.Tensor, *, absolute=False, diagonal=False, once=False, every_feature=False,
                 nan_below_two=False) -> float:
    keep = torch.ones(W.shape[1], dtype=torch.bool) if every_feature else W.norm(dim=0) > THRESHOLD
    k = int(keep.sum())
    cos = metrics.cosine_similarities(W[:, keep])
    cos = cos.abs() if absolute else cos
    if diagonal:
        return cos.mean().item()
    if k < 2 and not nan_below_two:
        return 0.0
    off_diagonal = cos.sum() - cos.diagonal().sum()
    return (off_diagonal / 2 / (k * (k - 1)) if once else off_diagonal / (k * (k - 1))).item()


def reference_analyze_superposition(n_features, n_hidden, sparsity, steps=2000, seed=0) -> dict:
    """ToyModel(n_instances=4) trained with the spec's settings, the lowest-loss instance, and its geometry.

    The figure is an empty go.Figure, the class plots.feature_directions and plots.wtw_heatmap return: the probe
    records only a figure's class, and drawing the 10 graded cases' figures cost 0.35 core-s a student."""
    W = _best(n_features, n_hidden, sparsity, steps, seed)
    keep = W.norm(dim=0) > THRESHOLD
    return {"W": W, "mean_cosine": _mean_cosine(W), "n_represented": int(keep.sum()), "figure": go.Figure()}


def _analyze(n_features, n_hidden, sparsity, steps=2000, seed=0, *, trained=True, instance="best", ignore_steps=False,
             ignore_seed=False, as_probability=False, transpose=False, count=None, mean=None, figure=go.Figure,
             keys=None, as_tuple=False, **mean_options) -> object:
    """analyze_superposition with one mistake (each keyword names one)."""
    steps = IGNORED_STEPS if ignore_steps else steps
    seed = 0 if ignore_seed else seed
    sparsity = 1 - sparsity if as_probability else sparsity
    if trained:
        every, losses = seeded_training(n_features, n_hidden, sparsity, steps, seed)
    else:
        every = ToyModel(n_features, n_hidden, 4, sparsity=sparsity, seed=seed, device="cpu").W.detach()
        losses = torch.zeros(4)
    best = every[0] if instance == "zero" else every[int(losses.argmin())]
    W = every if instance == "all" else best.T if transpose else best
    n_represented = count(best) if count else int((best.norm(dim=0) > THRESHOLD).sum())
    mean_cosine = mean(best) if mean else _mean_cosine(best, **mean_options)
    if as_tuple:
        return W, mean_cosine, n_represented, figure()
    result = {"W": W, "mean_cosine": mean_cosine, "n_represented": n_represented, "figure": figure()}
    return {(keys or {}).get(k, k): v for k, v in result.items()}


def _wrong(**mistake):
    return lambda *args, **kwargs: _analyze(*args, **kwargs, **mistake)


ANALYZE_SUPERPOSITION = Exercise(
    name="analyze_superposition", points=3, inputs=analyze_inputs, reference=reference_analyze_superposition,
    answers=("utils.geometry.mean_pairwise_cosine", "utils.digits.decoder_cosines"),
    wrong=(
        Wrong("not_a_dict", "analyze_superposition should return a dict with keys 'W', 'mean_cosine', "
              "'n_represented' and 'figure', not a tuple or list.", _wrong(as_tuple=True)),
        Wrong("missing_keys", "the returned dict lacks some of the keys 'W', 'mean_cosine', 'n_represented' and "
              "'figure' (spelled exactly so).", _wrong(keys={"mean_cosine": "mean_cos", "n_represented": "n"})),
        Wrong("all_instances", "W has shape (4, n_hidden, n_features): return ONE instance, the lowest-loss one, as "
              "(n_hidden, n_features).", _wrong(instance="all")),
        Wrong("transposed_W", "W is transposed: it has shape (n_features, n_hidden); return it as (n_hidden, "
              "n_features), one column per feature, as ToyModel stores it.", _wrong(transpose=True)),
        Wrong("not_trained", "the returned W is exactly ToyModel's initial weights: the model was not trained. "
              "Call train(model, steps, batch_size=512, lr=5e-3, seed=seed, progress=False) before reading W.",
              _wrong(trained=False)),
        Wrong("sparsity_as_probability", "that looks like DENSE features where they are sparse (and S = 0 raised a "
              "ValueError): ToyModel's sparsity is S, the probability a feature is ZERO; pass `sparsity` unchanged, "
              "not 1 - S. With S = 0.95 a trained n -> 2 model represents all n features as a regular polygon.",
              _wrong(as_probability=True)),
        Wrong("instance_zero", "your W is instance 0 of the 4, and another instance has a clearly lower loss: keep "
              "the lowest-loss instance (best_of_seeds(model, 4)), not the first one; the 4 random starts are there "
              "because some land in worse minima.", _wrong(instance="zero")),
        Wrong("ignores_steps", "a different `steps` gave the same W: train for the `steps` you are given (pass it "
              "to train), not a fixed number.", _wrong(ignore_steps=True)),
        Wrong("ignores_seed", "a different `seed` gave the same W: pass `seed` to both ToyModel(..., seed=seed) and "
              "train(..., seed=seed), so that each seed is its own reproducible run.", _wrong(ignore_seed=True)),
        Wrong("abs_cos", "mean_cosine uses |cos|: the exercise asks for the SIGNED cosine. A pentagon's mean is "
              "negative (-0.25): its strongest interference is negative, which the ReLU removes for free.",
              _wrong(absolute=True)),
        Wrong("with_diagonal", "mean_cosine includes the diagonal (each feature with itself, cos = 1): average over "
              "pairs i != j only, k (k - 1) of them.", _wrong(diagonal=True)),
        Wrong("pairs_once", "mean_cosine counts each pair once but divides by k (k - 1), the number of ordered "
              "pairs: use k (k - 1) / 2 with the upper triangle, or all off-diagonal entries with k (k - 1).",
              _wrong(once=True)),
        Wrong("all_features", "mean_cosine averages over ALL features; average over the represented ones only "
              "(norm > 0.5): a feature the model dropped has a near-zero column whose direction is noise.",
              _wrong(every_feature=True)),
        Wrong("nan_below_two", "mean_cosine is nan when fewer than two features are represented (0 / 0 pairs): the "
              "spec says 0.0 then.", _wrong(nan_below_two=True)),
        Wrong("mean_cosine_tensor", "mean_cosine should be a Python float, not a tensor: use .item() or float(...).",
              _wrong(mean=lambda W: torch.tensor(_mean_cosine(W)))),
        Wrong("n_represented_tensor", "n_represented should be a Python int, not a tensor: use int(...) or .item().",
              _wrong(count=lambda W: (W.norm(dim=0) > THRESHOLD).sum())),
        Wrong("counted_rows", "n_represented counts rows of W (hidden dimensions) with norm > 0.5: features are the "
              "columns of W (n_hidden, n_features), so take the norm over dim=0.",
              _wrong(count=lambda W: int((W.norm(dim=1) > THRESHOLD).sum()))),
        Wrong("squared_norm_count", "n_represented counts the features whose SQUARED norm exceeds 0.5; a feature is "
              "represented when its norm ||W_i|| > 0.5.", _wrong(count=lambda W: int((W.norm(dim=0) ** 2 > 0.5).sum()))),
        Wrong("no_figure", "result['figure'] should be a plotly go.Figure of the learned geometry "
              "(plots.feature_directions(W) when n_hidden == 2, else plots.wtw_heatmap(W)).",
              _wrong(figure=lambda: None)),
    ),
    hints={
        SPARSE: "With sparse features (each active a few percent of the time) a trained n -> 2 model represents "
                "all n features as a regular polygon: mean cosine -1/(n-1), ||W||_F^2 about n. Was the model "
                "trained with the spec's settings (steps, batch_size=512, lr=5e-3, seed), sparsity passed as S, and "
                "did you keep the lowest-loss of the 4 instances?",
        DENSE: "With dense features (S = 0) interference costs on every input, so a trained n -> 2 model keeps about "
               "n_hidden = 2 features' worth of weight: ||W||_F^2 close to 2. Was it trained with the spec's "
               "settings, with sparsity passed as S, and is W the lowest-loss instance?",
        ONE_FEATURE: "With fewer than two represented features there is no pair: mean_cosine is 0.0.",
    },
    spec="Train ToyModel(n_features, n_hidden, n_instances=4, sparsity=sparsity, seed=seed) with train(model, steps, "
         "batch_size=512, lr=5e-3, seed=seed, progress=False), keep the lowest-loss instance's W (n_hidden, "
         "n_features) and return {'W', 'mean_cosine' (float, the mean signed cosine over ordered pairs of distinct "
         "features with norm > 0.5, 0.0 with fewer than two), 'n_represented' (int), 'figure' (a plotly go.Figure)}.",
    passed="analyze_superposition: W is the best trained instance, mean signed cosine and n_represented match it, a "
           "regular polygon when sparse, about 2 features' worth when dense, steps and seed used",
)


# --- feature_dimensionality ------------------------------------------------------------------------

def _scaled_columns(g: torch.Generator, n_hidden: int, n_features: int) -> torch.Tensor:
    W = torch.randn(n_hidden, n_features, generator=g)
    return W / W.norm(dim=0) * (0.3 + 2.2 * torch.rand(n_features, generator=g))


def dimensionality_inputs(g: torch.Generator) -> dict:
    random = _scaled_columns(g, integer(g, 3, 5), integer(g, 6, 10))
    k = integer(g, 3, 5)
    square = _scaled_columns(g, k, k)  # rows and columns give the same shape, not the same values
    n = integer(g, 7, 10)  # an antipodal pair (D = 1/2 each) orthogonal to the other features, in random places
    pair = _scaled_columns(g, 4, n)
    scale = 1.0 + float(torch.rand((), generator=g))
    pair[:, :2] = torch.tensor([[scale, -scale], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    pair[0, 2:] = 0.0
    pair = pair[:, torch.randperm(n, generator=g)]
    polygon = uniform(g, 1.5, 3.5) * regular_polygon(integer(g, 3, 7), uniform(g, 0, 90))
    return {"random": {"args": [random]}, "square": {"args": [square]}, "antipodal pair": {"args": [pair]},
            "scaled polygon": {"args": [polygon]}}


def _norms2(W):
    return W.norm(dim=0) ** 2


def _projections2(W, W_hat=None):
    W_hat = W / W.norm(dim=0, keepdim=True) if W_hat is None else W_hat
    return (W_hat.T @ W) ** 2


FEATURE_DIMENSIONALITY = Exercise(
    name="feature_dimensionality", points=2, inputs=dimensionality_inputs, reference=metrics.feature_dimensionality,
    answers=("utils.metrics.feature_dimensionality",), atol=1e-4, rtol=1e-4,
    wrong=(
        Wrong("rows", "you computed D per ROW (W transposed): features are the columns of W (n_hidden, n_features); "
              "return (n_features,), one D_i per column.", lambda W: metrics.feature_dimensionality(W.T)),
        Wrong("not_normalised", "the denominator must use the unit vector W_i_hat = W_i / ||W_i||: sum_j (W_i_hat . "
              "W_j)^2. Without normalising, D_i changes when you rescale W, and a dedicated feature no longer has "
              "D = 1.", lambda W: _norms2(W) / ((W.T @ W) ** 2).sum(dim=1)),
        Wrong("normalised_rows", "W_i_hat must be column i divided by its own norm (W.norm(dim=0)); you normalised "
              "the rows of W (dim=1).",
              lambda W: _norms2(W) / _projections2(W, W / W.norm(dim=1, keepdim=True)).sum(dim=1)),
        Wrong("numerator_not_squared", "the numerator is the SQUARED norm ||W_i||^2, not ||W_i||: a feature alone in "
              "its dimension must get D = 1 whatever its norm.", lambda W: W.norm(dim=0) / _projections2(W).sum(dim=1)),
        Wrong("cos_squared_denominator", "the denominator is sum_j (W_i_hat . W_j)^2, with W_j itself, not its unit "
              "vector: summing cos^2 makes D_i grow with ||W_i||^2 instead of measuring a fraction of a dimension.",
              lambda W: _norms2(W) / (metrics.cosine_similarities(W) ** 2).sum(dim=1)),
        Wrong("without_self", "the sum in the denominator runs over ALL j, including j = i (which contributes "
              "||W_i||^2); otherwise a feature alone in its dimension divides by zero.",
              lambda W: _norms2(W) / (_projections2(W).sum(dim=1) - _norms2(W))),
        Wrong("inverted", "your D_i is upside down: D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2 is at most 1 (an "
              "antipodal pair gives 1/2 each, a feature orthogonal to all others 1).",
              lambda W: 1 / metrics.feature_dimensionality(W)),
    ),
    hints={"antipodal pair": "Two features pointing in opposite directions (orthogonal to all the others) share one "
                             "dimension: D = 1/2 each.",
           "scaled polygon": "A regular k-gon in 2-D gives D = 2/k to each feature, whatever its scale."},
    spec="D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2 for each column W_i of W (n_hidden, n_features), W_i_hat = "
         "W_i / ||W_i||: a tensor of shape (n_features,).",
    passed="feature_dimensionality: one D_i per column, antipodal pair = 1/2, scale-free, matches the paper's D_i",
)


# --- rotation_loss_change --------------------------------------------------------------------------

def reference_rotation_loss_change(model, rotation) -> float:
    rotated = copy.deepcopy(model)
    with torch.no_grad():
        rotated.W.copy_(rotation @ model.W)
    return float(evaluate_loss(rotated).sum() - evaluate_loss(model).sum())


def _rotation(g: torch.Generator, n: int) -> torch.Tensor:
    Q, R = torch.linalg.qr(torch.randn(n, n, generator=g))
    Q = Q * torch.sign(torch.diagonal(R))
    if torch.det(Q) < 0:
        Q[:, 0] = -Q[:, 0]
    return Q


def _rotation_case(g: torch.Generator, cls: str, activation: str) -> dict:
    while True:
        n_hidden = integer(g, 2, 4)
        n_features = integer(g, n_hidden + 2, 8)
        W = (1.0 + 0.6 * float(torch.rand((), generator=g))) * torch.randn(1, n_hidden, n_features, generator=g) \
            * math.sqrt(2 / (n_hidden + n_features))
        model = {"class": cls, "n_features": n_features, "n_hidden": n_hidden,
                 "sparsity": round(uniform(g, 0.6, 0.9), 3), "activation": activation,
                 "W": W, "b_final": 0.2 * torch.randn(1, n_features, generator=g) - 0.1}
        case = {"model": model, "rotation": _rotation(g, n_hidden), "global_seed": integer(g, 0, 2**31 - 1)}
        if cls == "ToyModel":
            return case
        built = checks.build_model(model)  # the hidden-ReLU change must tell its sign and R from R^T
        change = reference_rotation_loss_change(built, case["rotation"])
        transposed = reference_rotation_loss_change(built, case["rotation"].T)
        if abs(change) > 1e-3 and abs(change - transposed) > 0.05 * abs(change) + 1e-4:
            return case


def rotation_inputs(g: torch.Generator) -> dict:
    with checks.one_thread():
        return {"bottleneck": _rotation_case(g, "ToyModel", "relu"),
                "hidden ReLU": _rotation_case(g, "HiddenReLUModel", "relu"),
                "hidden ReLU, another": _rotation_case(g, "HiddenReLUModel", "relu")}


def _in_place(model, rotation):
    before = evaluate_loss(model)
    with torch.no_grad():
        model.W.copy_(rotation @ model.W)
    return float(evaluate_loss(model) - before)


def _fresh_batches(model, rotation):
    def loss(m):
        x = m.generate_batch(4096)
        return m.loss(x, m(x)).item()
    rotated = copy.deepcopy(model)
    with torch.no_grad():
        rotated.W.copy_(rotation @ model.W)
    return loss(rotated) - loss(model)


def _rebuilt_as_toy_model(model, rotation):
    plain = ToyModel(model.n_features, model.n_hidden, sparsity=float(model.sparsity[0, 0]),
                     activation=model.activation, device="cpu")
    plain.load_state_dict(model.state_dict())
    return reference_rotation_loss_change(plain, rotation)


def _tensor_change(model, rotation):
    rotated = copy.deepcopy(model)
    with torch.no_grad():
        rotated.W.copy_(rotation @ model.W)
    return evaluate_loss(rotated) - evaluate_loss(model)


BOTTLENECK = ("the bottleneck's loss must not change under a rotation of its hidden space: (R W)^T (R W) = W^T R^T R W "
              "= W^T W. Rotate W in BOTH places (the model uses the same W to encode and decode), and compare the "
              "two losses on the SAME batch: utils.evaluate_loss draws a fixed one.")
HIDDEN = ("an elementwise ReLU does not commute with a rotation, so the hidden-ReLU model's loss changes: keep the "
          "model's own class (copy.deepcopy(model)), rotate with rotation @ model.W, and return loss(rotated) - "
          "loss(original), both from utils.evaluate_loss.")

ROTATION_LOSS_CHANGE = Exercise(
    name="rotation_loss_change", points=2, inputs=rotation_inputs, reference=reference_rotation_loss_change,
    atol=1e-6, rtol=1e-3,
    wrong=(
        Wrong("not_a_number", "rotation_loss_change should return a float (the change in loss), not a string.",
              lambda model, rotation: str(reference_rotation_loss_change(model, rotation))),
        Wrong("returns_tensor", "rotation_loss_change should return a Python float, not a tensor: wrap the "
              "difference in float(...) (or use .item()).", _tensor_change),
        Wrong("in_place", "rotation_loss_change changed the model it was given: rotate a copy (copy.deepcopy(model)), "
              "and leave the learner's model as it was.", _in_place),
        Wrong("fresh_batches", "the bottleneck's loss changed under a rotation, by about as much as a fresh random "
              "batch changes a loss: compare the two losses on the SAME batch. utils.evaluate_loss draws a fixed one; "
              "(R W)^T (R W) = W^T W, so the bottleneck's change must be 0.", _fresh_batches),
        Wrong("rebuilt_as_toy_model", "the hidden-ReLU model's loss did not change, but an elementwise ReLU does not "
              "commute with a rotation. Keep the model's own class (copy.deepcopy(model)) so its forward, h = "
              "ReLU(W x), is the one evaluated.", _rebuilt_as_toy_model),
        Wrong("sign_flipped", "the sign is flipped: return loss(rotated) - loss(original), so a rotation that hurts "
              "is positive.", lambda model, rotation: -reference_rotation_loss_change(model, rotation)),
        Wrong("transposed_rotation", "you rotated with rotation.T (W -> R^T W); the rotated weights are rotation @ "
              "W, with rotation (n_hidden, n_hidden) acting on the hidden space.",
              lambda model, rotation: reference_rotation_loss_change(model, rotation.T)),
    ),
    hints={"bottleneck": BOTTLENECK, "hidden ReLU": HIDDEN,
           "hidden ReLU, another": HIDDEN},
    spec="Return a float: evaluate_loss of a copy of the model with W -> rotation @ W, minus evaluate_loss of the "
         "model, which is left unchanged.",
    passed="rotation_loss_change: the bottleneck is rotation-invariant, the hidden ReLU is not, the model is left as "
           "it was",
)

EXERCISES = [ANALYZE_SUPERPOSITION, FEATURE_DIMENSIONALITY, ROTATION_LOSS_CHANGE]
