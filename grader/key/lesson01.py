"""Answer key of lesson 01 (superposition basics): references, known wrong answers, input builders."""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from grader.key import Exercise, Part, Wrong, integer, uniform
from utils import metrics, packing

LESSON = "01_superposition_basics"
CHECKS = "utils.checks.lesson01"


# --- measure_interference ------------------------------------------------------------------------

def interference_inputs(g: torch.Generator) -> dict:
    n_hidden, n_features = integer(g, 2, 5), integer(g, 6, 11)
    W = torch.randn(n_hidden, n_features, generator=g)
    batch = torch.rand(integer(g, 3, 8), n_features, generator=g)
    sparse = batch * (torch.rand(batch.shape, generator=g) < 0.3)
    k = integer(g, 4, 6)  # n_hidden = n_features: W W^T has the right shape, but not the values
    square_W, square_x = torch.randn(k, k, generator=g), torch.rand(4, k, generator=g)
    Q, _ = torch.linalg.qr(torch.randn(k + 2, k, generator=g))  # k orthonormal columns ...
    orthogonal_W = Q * (0.5 + 2 * torch.rand(k, generator=g))  # ... with different norms
    return {"single": {"args": [W, batch[0]]}, "batch": {"args": [W, batch]}, "sparse": {"args": [W, sparse]},
            "square": {"args": [square_W, square_x]},
            "orthogonal": {"args": [orthogonal_W, torch.rand(3, k, generator=g)]},
            "transposed": {"args": [W.T.contiguous(), batch[0]]}}


def _checked(fn):
    """A wrong answer that still raises ValueError on a transposed W, so that only its own mistake shows."""
    def answer(W, x):
        if W.ndim != 2 or x.shape[-1] != W.shape[1]:
            raise ValueError("W does not fit the features")
        return fn(W, x)
    return answer


def _gram_minus_diagonal(gram: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x @ gram - x * torch.diagonal(gram)


COLUMNS = ("Features are the columns of W (n_hidden, n_features): interference uses W^T W "
           "(n_features, n_features), not W W^T (n_hidden, n_hidden).")

MEASURE_INTERFERENCE = Exercise(
    name="measure_interference", points=3, inputs=interference_inputs, reference=metrics.interference,
    answers=("utils.metrics.interference",), atol=1e-4,
    # Three independent skills; the refusal of a transposed W shares a part with real values, so that code
    # which only raises earns nothing.
    parts=(Part("1-D features", 1, ("single",)), Part("a batch of features, dense and sparse", 1, ("batch", "sparse")),
           Part("square and orthogonal W, and a transposed W refused", 1, ("square", "orthogonal", "transposed"))),
    wrong=(
        Wrong("whole_reconstruction", "you returned the whole linear reconstruction W^T W x; interference is only "
              "the part from *other* features: subtract each feature's own contribution ||W_i||^2 x_i.",
              _checked(lambda W, x: x @ W.T @ W)),
        Wrong("unit_norms", "you subtracted x_i, which assumes every column of W has norm 1 (unit norms); a "
              "feature's own contribution is ||W_i||^2 x_i.", _checked(lambda W, x: x @ W.T @ W - x)),
        Wrong("sign_flipped", "the sign is flipped: interference is (W^T W x)_i minus the feature's own part, not "
              "the reverse.", _checked(lambda W, x: -metrics.interference(W, x))),
        Wrong("rows_gram", "for a square W your result matches W W^T: you used the rows of W (transposed W). "
              "Features are the columns of W (n_hidden, n_features); their dot products are W^T W.",
              lambda W, x: _gram_minus_diagonal(W @ W.T, x)),
        Wrong("one_dimensional_only", "it seems to handle only 1-D input: features can also be a batch (batch, "
              "n_features); `features @ (W.T @ W)` works for both.",
              _checked(lambda W, x: _gram_minus_diagonal(W.T @ W, x) if x.ndim == 1
                       else torch.mv(W.T @ W, x) - torch.diagonal(W.T @ W) * x)),
        Wrong("no_shape_error", "given a transposed W of shape (n_features, n_hidden), measure_interference should "
              "raise a ValueError that says W looks transposed; yours did not.",
              lambda W, x: metrics.interference(W, x) if x.shape[-1] == W.shape[1] else torch.zeros_like(x)),
    ),
    hints={"orthogonal": "Feature directions that are orthogonal (here with different norms) do not interfere: use "
                         "the dot products between *columns* of W (W^T W) and subtract ||W_i||^2 x_i, not x_i.",
           "square": COLUMNS, "single": COLUMNS,
           "batch": "It should handle a batch (batch, n_features) too and return the shape of `features`.",
           "transposed": "A W that does not fit the features (e.g. transposed) should raise a ValueError that says so."},
    spec="For W of shape (n_hidden, n_features), interference_i = sum over j != i of (W_i . W_j) x_j, where W_i "
         "is column i of W; the result has the shape of `features`.",
    passed="measure_interference: single, batched and sparse features, square and orthogonal W, transposed W",
)


# --- cosine_similarities -------------------------------------------------------------------------

def cosine_inputs(g: torch.Generator) -> dict:
    W = torch.randn(integer(g, 3, 5), integer(g, 6, 10), generator=g)
    W_pair = torch.randn(integer(g, 3, 5), integer(g, 5, 9), generator=g)
    W_pair[:, 3] = -uniform(g, 0.5, 3) * W_pair[:, 0]  # an antipodal pair: cosine exactly -1
    return {"random": {"args": [W]}, "antipodal": {"args": [W_pair]}}


def _unit_columns(W: torch.Tensor) -> torch.Tensor:
    return W / W.norm(dim=0, keepdim=True)


COSINE_SIMILARITIES = Exercise(
    name="cosine_similarities", points=2, inputs=cosine_inputs, reference=metrics.cosine_similarities,
    answers=("utils.metrics.cosine_similarities", "utils.digits.decoder_cosines"), atol=1e-4,
    wrong=(
        Wrong("compared_rows", "you compared rows of W: the result is (n_hidden, n_hidden). Features are the "
              "columns of W (n_hidden, n_features): the result should be (n_features, n_features).",
              lambda W: (W / W.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=1, keepdim=True)).T),
        Wrong("abs_cos", "all your similarities are >= 0: you used |cos|. The question asks for the signed cosine; "
              "an antipodal pair (cos = -1) is a different geometry from a repeated feature (cos = +1).",
              lambda W: (_unit_columns(W).T @ _unit_columns(W)).abs()),
        Wrong("not_normalised", "you returned W^T W without normalising: divide each column by its norm first, so "
              "the diagonal is 1.", lambda W: W.T @ W),
        Wrong("normalised_rows", "you normalised the rows of W (dim=1); each feature is a column: normalise with "
              "W.norm(dim=0).", lambda W: (W / W.norm(dim=1, keepdim=True)).T @ (W / W.norm(dim=1, keepdim=True))),
        Wrong("norms_broadcast_wrong_axis", "it raised a RuntimeError (the sizes of two tensors do not match): the "
              "norms you divided by line up with the wrong axis of W. W.norm(dim=1) is one norm per row, shape "
              "(n_hidden,), and broadcasting matches it against W's last axis (n_features). Each feature is a "
              "column: divide by W.norm(dim=0, keepdim=True), shape (1, n_features).",
              lambda W: (W / W.norm(dim=1)).T @ (W / W.norm(dim=1))),
    ),
    hints={"antipodal": "Columns 0 and 3 point in opposite directions: their signed cosine is exactly -1."},
    spec="Entry [i, j] is the signed cosine W_i . W_j / (||W_i|| ||W_j||) between columns i and j (the diagonal is 1).",
    passed="cosine_similarities: shape, sign, normalisation and values",
)


# --- welch_bound and max_vectors_welch -----------------------------------------------------------

def welch_inputs(g: torch.Generator) -> dict:
    cases = {}
    for k in range(5):
        dim = integer(g, 2, 40)
        cases[f"N>n {k}"] = {"args": [dim + integer(g, 1, 300), dim]}
    dim = integer(g, 2, 40)
    cases["N<n"] = {"args": [integer(g, 1, dim - 1), dim]}
    cases["N=n"] = {"args": [dim + 1, dim + 1]}
    return cases


WELCH_BOUND = Exercise(
    name="welch_bound", points=1, inputs=welch_inputs, reference=packing.welch_bound,
    answers=("utils.packing.welch_bound",), atol=1e-9, rtol=1e-7,
    wrong=(
        Wrong("squared", "you returned the bound squared: take the square root; the bound is on |cos|, the formula "
              "gives cos^2.", lambda N, n: packing.welch_bound(N, n) ** 2),
        Wrong("no_orthogonal_case", "when n_vectors <= dim the vectors fit exactly orthogonally: return 0.0 there "
              "(the formula does not apply).",
              lambda N, n: math.sqrt(abs(N - n) / (n * max(N - 1, 1))) + (N <= n)),
        Wrong("formula_below_dim", "for n_vectors < dim the formula takes the square root of a negative number (the "
              "'math domain error'; with a single vector it divides by zero): it only holds for n_vectors > dim. "
              "Return 0.0 when n_vectors <= dim: that many vectors fit exactly orthogonally.",
              lambda N, n: math.sqrt((N - n) / (n * (N - 1)))),
    ),
    hints={"N<n": "With n_vectors <= dim the vectors fit exactly orthogonally: return 0.0.",
           "N=n": "With n_vectors <= dim the vectors fit exactly orthogonally: return 0.0."},
    spec="max |cos| >= sqrt((N - n) / (n (N - 1))) for N = n_vectors > n = dim, and 0.0 otherwise; return a float.",
    passed="welch_bound: matches the Welch bound, 0 when the vectors fit orthogonally",
)


def _float_traps() -> list[tuple[int, float]]:
    """(dim, eps = a/b) where N = dim (1 - eps^2) / (1 - dim eps^2) is a whole number but floats land below it."""
    traps = []
    for a in range(1, 6):
        for b in range(a + 1, 16):
            eps, exact = a / b, Fraction(a, b)
            for dim in range(2, 200):
                if dim * exact**2 >= 1:
                    break
                N = dim * (1 - exact**2) / (1 - dim * exact**2)
                # Both ways of writing it must land below N: dim * eps**2 and dim * eps * eps round differently.
                plain = (dim * (1 - eps**2) / (1 - dim * eps**2), dim * (1 - eps * eps) / (1 - dim * eps * eps))
                if N.denominator == 1 and all(math.floor(value) != N for value in plain):
                    traps.append((dim, eps))
    return traps


_FLOAT_TRAPS = _float_traps()


def max_vectors_inputs(g: torch.Generator) -> dict:
    cases = {f"eps=0.1 {k}": {"args": [integer(g, 5, 95), 0.1]} for k in range(4)}
    cases["any number"] = {"args": [integer(g, 100, 400), 0.1]}
    cases["eps=0.25"] = {"args": [integer(g, 3, 15), 0.25]}
    for j in range(2):  # exact answers that floating point computes a hair below a whole number
        dim, eps = _FLOAT_TRAPS[integer(g, 0, len(_FLOAT_TRAPS) - 1)]
        cases[f"whole number {j}"] = {"args": [dim, eps]}
    return cases


MAX_VECTORS_WELCH = Exercise(
    name="max_vectors_welch", points=1, inputs=max_vectors_inputs, reference=packing.max_vectors_welch,
    answers=("utils.packing.max_vectors_welch", "utils.packing.max_vectors_welch_order"),  # order 1 is this one
    atol=0.0, rtol=0.0,
    wrong=(
        Wrong("rounded_up", "round down, not up: the largest whole N with welch_bound(N, dim) <= eps.",
              lambda d, e: math.inf if d * e * e >= 1 else math.ceil(d * (1 - e * e) / (1 - d * e * e) + 1e-9)),
        Wrong("no_inf", "when dim * eps^2 >= 1 the Welch bound never exceeds eps, so it allows any number of vectors: "
              "return math.inf.", lambda d, e: 10**6 if d * e * e >= 1 else packing.max_vectors_welch(d, e)),
        Wrong("float_guard", "floating point: dim (1 - eps^2) / (1 - dim eps^2) can land a hair below a whole number "
              "(e.g. 3.9999999999999996 for dim = 3, eps = 1/3); allow a tiny tolerance before rounding down.",
              lambda d, e: math.inf if d * e * e >= 1 else math.floor(d * (1 - e * e) / (1 - d * e * e))),
        Wrong("float_result", "return a whole number of vectors as an int (math.floor gives one), or math.inf.",
              lambda d, e: float(packing.max_vectors_welch(d, e))),
    ),
    spec="Solve welch_bound(N, dim) <= eps for N and round down (an int), or return math.inf when dim eps^2 >= 1.",
    passed="max_vectors_welch: the largest N the Welch bound allows, inf when it allows any",
)


# --- expected_interference -----------------------------------------------------------------------

def reference_expected_interference(S: float, c: float = 1.0) -> dict[str, float]:
    """x_i, x_j independent, each 0 with probability S, else uniform [0, 1); interference on i is c x_j."""
    p = 1 - S
    return {"p_both_active": p * p, "mean": c * p / 2, "mean_square": c * c * p / 3}


def expected_inputs(g: torch.Generator) -> dict:
    """(S, c) pairs with S and c away from the values where two formulas agree (S = 0.5, S = 0, c = +-1)."""
    cases = {}
    for k, (low, high) in enumerate(((0.05, 0.4), (0.6, 0.95), (0.95, 0.995))):
        cases[f"S in [{low}, {high}]"] = {"args": [round(uniform(g, low, high), 4), round(uniform(g, 0.2, 0.9), 4)]}
    cases["negative c"] = {"args": [round(uniform(g, 0.6, 0.9), 4), round(-uniform(g, 0.2, 0.9), 4)]}
    cases["default c"] = {"args": [round(uniform(g, 0.1, 0.4), 4)]}
    return cases


def _with(key: str, formula):
    return lambda S, c=1.0: {**reference_expected_interference(S, c), key: formula(1 - S, c)}


EXPECTED_INTERFERENCE = Exercise(
    name="expected_interference", points=2, inputs=expected_inputs, reference=reference_expected_interference,
    atol=1e-6, rtol=1e-6,
    wrong=(
        Wrong("s_is_active_probability", "you used S as the probability a feature is active. S is the probability "
              "it is ZERO; a feature is active with probability 1 - S.",
              lambda S, c=1.0: reference_expected_interference(1 - S, c)),
        Wrong("p_both_not_squared", "p_both_active: two independent features are both active with probability "
              "(1 - S)^2, not 1 - S.", _with("p_both_active", lambda p, c: p)),
        Wrong("mean_forgot_half", "mean forgot the 1/2: an active feature's value is uniform in [0, 1), with mean 1/2.",
              _with("mean", lambda p, c: c * p)),
        Wrong("mean_dropped_probability", "mean dropped the probability 1 - S that feature j is active at all: "
              "E[c x_j] = c (1 - S) / 2.", _with("mean", lambda p, c: c / 2)),
        Wrong("mean_squared_probability", "mean: you squared the probability, multiplying by P(both active) = "
              "(1 - S)^2. Given that feature i is active, only feature j's probability 1 - S of being active enters.",
              _with("mean", lambda p, c: c * p * p / 2)),
        Wrong("mean_sign", "mean has the wrong sign: the interference is c x_j, negative when the cosine c is negative.",
              _with("mean", lambda p, c: abs(c) * p / 2)),
        Wrong("square_of_mean_quarter", "mean_square used (1/2)^2 = 1/4: the square of the mean is not the mean of "
              "the square. For x uniform in [0, 1), E[x^2] = 1/3.", _with("mean_square", lambda p, c: c * c * p / 4)),
        Wrong("mean_square_forgot_third", "mean_square forgot the 1/3: for x uniform in [0, 1), E[x^2] = 1/3.",
              _with("mean_square", lambda p, c: c * c * p)),
        Wrong("mean_square_squared_probability", "mean_square: you squared the probability, multiplying by P(both "
              "active) = (1 - S)^2. The mean is over all inputs, and (c x_j)^2 does not depend on x_i: only 1 - S "
              "enters.", _with("mean_square", lambda p, c: c * c * p * p / 3)),
        Wrong("square_of_mean", "mean_square is the square of the mean, (c (1 - S) / 2)^2: square inside the "
              "expectation, E[(c x_j)^2] = c^2 (1 - S) E[x^2 | active] = c^2 (1 - S) / 3.",
              _with("mean_square", lambda p, c: (c * p / 2) ** 2)),
        Wrong("mean_square_not_squared_c", "mean_square must be >= 0: a square is never negative (use c^2, not c).",
              _with("mean_square", lambda p, c: c * p / 3)),
    ),
    spec="Return a dict of three floats: 'p_both_active' (both features non-zero), 'mean' (E[c x_j] given x_i "
         "active) and 'mean_square' (E[(c x_j)^2] over all inputs), with S the probability that a feature is zero.",
    passed="expected_interference: matches the closed form",
)

EXERCISES = [MEASURE_INTERFERENCE, COSINE_SIMILARITIES, WELCH_BOUND, MAX_VECTORS_WELCH, EXPECTED_INTERFERENCE]
