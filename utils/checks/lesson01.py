"""Visible checks for lesson 01 (superposition basics). Each exercise: probe_*, judge_*, check_*."""

from __future__ import annotations

import math

import torch

from utils import metrics, packing
from utils.checks import CheckFailed, Plain, as_tensor, call_learner, close, expect_shape, fail, make_check
from utils.device import make_generator


def _generator(seed: int) -> torch.Generator:
    return make_generator(1000 + seed, torch.device("cpu"))


# --- measure_interference ------------------------------------------------------------------------

# Errors a learner's tensor code typically raises on inputs it does not handle; anything else (a timeout,
# a CheckFailed for "not implemented yet") propagates.
_CODE_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AssertionError)


def _interference_inputs(seed: int) -> dict[str, torch.Tensor]:
    g = _generator(seed)
    n_hidden, n_features = 3, 7 + seed % 3
    W = torch.randn(n_hidden, n_features, generator=g)
    batch = torch.rand(5, n_features, generator=g)
    sparse = batch * (torch.rand(5, n_features, generator=g) < 0.3)
    square_W = torch.randn(5, 5, generator=g)  # n_hidden = n_features: W W^T has the right shape but not the values
    square_x = torch.rand(4, 5, generator=g)
    Q, _ = torch.linalg.qr(torch.randn(6, 4, generator=g))  # 4 orthonormal columns in 6 dimensions
    orthogonal_W = Q * (0.5 + 2 * torch.rand(4, generator=g))  # ... with different norms
    return {"W": W, "single": batch[0], "batch": batch, "sparse": sparse, "square_W": square_W,
            "square_x": square_x, "orthogonal_W": orthogonal_W, "orthogonal_x": torch.rand(3, 4, generator=g)}


_INTERFERENCE_CASES = {"single": ("W", "single"), "batch": ("W", "batch"), "sparse": ("W", "sparse"),
                       "square": ("square_W", "square_x"), "orthogonal": ("orthogonal_W", "orthogonal_x")}


def probe_measure_interference(measure_interference, seed: int) -> Plain:
    inputs = _interference_inputs(seed)
    data: Plain = {}
    for case, (W, x) in _INTERFERENCE_CASES.items():
        try:
            result = call_learner(measure_interference, inputs[W].clone(), inputs[x].clone())
        except CheckFailed:
            raise
        except _CODE_ERRORS as error:
            data[case] = f"raised {type(error).__name__}: {str(error)[:200]}"
            continue
        data[case] = as_tensor(result, f"measure_interference(W, features) for {case} features")
    try:
        call_learner(measure_interference, inputs["W"].T.clone(), inputs["single"].clone())
        data["transposed_error"] = "no error"
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001 - which error the learner raised is what we check
        data["transposed_error"] = type(error).__name__
    return data


def _result(data: Plain, case: str, call: str, hint: str) -> torch.Tensor:
    """The learner's tensor for one case, or a failure saying the call raised (hint: the likely cause)."""
    value = data.get(case)
    if isinstance(value, str):
        fail(f"{call} {value}. {hint}")
    if not isinstance(value, torch.Tensor):
        fail(f"{call} should return a tensor, got {type(value).__name__}.")
    return value.float()


def judge_measure_interference(data: Plain, seed: int) -> str:
    inputs = _interference_inputs(seed)
    W = inputs["W"]
    columns = ("Features are the columns of W (n_hidden, n_features): interference uses W^T W "
               "(n_features, n_features), not W W^T (n_hidden, n_hidden).")
    single = _result(data, "single", f"measure_interference(W {tuple(W.shape)}, features {tuple(inputs['single'].shape)})",
                     columns)
    batch = _result(data, "batch", f"measure_interference(W {tuple(W.shape)}, features {tuple(inputs['batch'].shape)})",
                    "It seems to handle only 1-D input: features can also be a batch (batch, n_features); "
                    "`features @ (W.T @ W)` works for both.")
    got = {"single": single, "batch": batch}
    for case in ("sparse", "square", "orthogonal"):
        W_case, x_case = (inputs[k] for k in _INTERFERENCE_CASES[case])
        got[case] = _result(data, case, f"measure_interference(W {tuple(W_case.shape)}, features {tuple(x_case.shape)})",
                            columns)
    for case, value in got.items():
        x = inputs[_INTERFERENCE_CASES[case][1]]
        expect_shape(value, tuple(x.shape), f"measure_interference(W, features) for {case} features",
                     "It should have the shape of `features`: one interference value per feature"
                     + (" and per sample (1-D only? handle a batch (batch, n_features) too)." if x.ndim == 2 else "."))
    for case in ("single", "batch", "sparse"):
        x, value, want = inputs[case], got[case], metrics.interference(W, inputs[case])
        if close(value, x @ W.T @ W, atol=1e-4):
            fail("you returned the whole linear reconstruction W^T W x; interference is only the part from "
                 "*other* features: subtract each feature's own contribution ||W_i||^2 x_i.")
        if close(value, x @ W.T @ W - x, atol=1e-4):
            fail("you subtracted x_i, which assumes every column of W has norm 1 (unit norms); a feature's own "
                 "contribution is ||W_i||^2 x_i.")
        if close(value, -want, atol=1e-4):
            fail("the sign is flipped: interference is (W^T W x)_i minus the feature's own part, not the reverse.")
    if got["orthogonal"].abs().max() > 1e-4:
        fail("feature directions that are orthogonal (here with different norms) do not interfere, but you "
             "returned non-zero values. Use the dot products between *columns* of W (W^T W) and subtract the "
             "diagonal ||W_i||^2 x_i, not x_i.")
    square_W, square_x = inputs["square_W"], inputs["square_x"]
    rows_gram = square_W @ square_W.T
    if close(got["square"], square_x @ rows_gram - square_x * torch.diagonal(rows_gram), atol=1e-4):
        fail("for a square W your result matches W W^T: you used the rows of W (transposed W). Features are "
             "the columns of W (n_hidden, n_features); their dot products are W^T W.")
    for case, value in got.items():
        W_case, x_case = (inputs[k] for k in _INTERFERENCE_CASES[case])
        if not close(value, metrics.interference(W_case, x_case), atol=1e-4):
            fail(f"measure_interference is wrong for {case} features (W {tuple(W_case.shape)}). For W of shape "
                 "(n_hidden, n_features), interference_i = sum over j != i of (W_i . W_j) x_j, where W_i is "
                 "column i of W.")
    if data.get("transposed_error") != "ValueError":
        fail(f"given a transposed W of shape {tuple(W.T.shape)} = (n_features, n_hidden) and features "
             f"{tuple(inputs['single'].shape)}, measure_interference should raise a ValueError that says W looks "
             f"transposed; it did {data.get('transposed_error')!r}.")
    return "measure_interference: single, batched and sparse features, square and orthogonal W, transposed W"


check_measure_interference = make_check(probe_measure_interference, judge_measure_interference)


# --- cosine_similarities -------------------------------------------------------------------------

def _cosine_inputs(seed: int) -> torch.Tensor:
    return torch.randn(3, 6 + seed % 4, generator=_generator(seed))


def probe_cosine_similarities(cosine_similarities, seed: int) -> Plain:
    return {"cos": as_tensor(call_learner(cosine_similarities, _cosine_inputs(seed).clone()), "cosine_similarities(W)")}


def judge_cosine_similarities(data: Plain, seed: int) -> str:
    W = _cosine_inputs(seed)
    got, want = data["cos"], metrics.cosine_similarities(W)
    if tuple(got.shape) == (W.shape[0], W.shape[0]):
        fail(f"got shape {tuple(got.shape)} = (n_hidden, n_hidden): you compared rows of W. Features are the "
             f"columns of W (n_hidden, n_features): the result should be (n_features, n_features) = {tuple(want.shape)}.")
    expect_shape(got, tuple(want.shape), "cosine_similarities(W)", "One row and column per feature.")
    if close(got, want.abs(), atol=1e-4):
        fail("all your similarities are >= 0: you used |cos|. The question asks for the signed cosine; "
             "an antipodal pair (cos = -1) is a different geometry from a repeated feature (cos = +1).")
    if close(got, W.T @ W, atol=1e-4):
        fail("you returned W^T W without normalising: divide each column by its norm first, so the "
             "diagonal is 1.")
    rows = W / W.norm(dim=1, keepdim=True)
    if close(got, rows.T @ rows, atol=1e-4):
        fail("you normalised the rows of W (dim=1); each feature is a column: normalise with W.norm(dim=0).")
    if not close(torch.diagonal(got), torch.ones(W.shape[1]), atol=1e-4):
        fail("the diagonal should be 1: every feature has cosine similarity 1 with itself.")
    if not close(got, want, atol=1e-4):
        fail("the values differ from the signed cosine similarities W_hat^T W_hat of the unit columns.")
    return "cosine_similarities: shape, sign, normalisation and values"


check_cosine_similarities = make_check(probe_cosine_similarities, judge_cosine_similarities)


# --- welch_bound and max_vectors_welch -----------------------------------------------------------

def _welch_cases(seed: int) -> list[tuple[int, int]]:
    g = _generator(seed)
    dims = torch.randint(2, 30, (6,), generator=g).tolist()
    extra = torch.randint(0, 200, (6,), generator=g).tolist()
    return [(d + e, d) for d, e in zip(dims, extra)] + [(3, 5), (7, 7)]


def probe_welch_bound(welch_bound, seed: int) -> Plain:
    return {"values": [float(call_learner(welch_bound, n, d)) for n, d in _welch_cases(seed)]}


def judge_welch_bound(data: Plain, seed: int) -> str:
    cases = _welch_cases(seed)
    for (n, d), got in zip(cases, data["values"], strict=True):
        want = packing.welch_bound(n, d)
        if not isinstance(got, float) or math.isnan(got):
            fail(f"welch_bound({n}, {d}) returned {got!r}: return a float.")
        if n <= d and abs(got) > 1e-9:
            fail(f"welch_bound({n}, {d}) should be 0: {n} vectors fit in {d} dimensions exactly orthogonally.")
        if n > d and abs(got - want**2) < 1e-6 and abs(want**2 - want) > 1e-6:
            fail(f"welch_bound({n}, {d}) returned {got:.4f} = the bound squared: take the square root; the "
                 "bound is on |cos|, the formula gives cos^2.")
        if abs(got - want) > 1e-6:
            fail(f"welch_bound({n}, {d}) = {got:.6f}, expected {want:.6f}: max |cos| >= sqrt((N - n) / (n (N - 1))).")
    return "welch_bound: matches the Welch bound, 0 when the vectors fit orthogonally"


check_welch_bound = make_check(probe_welch_bound, judge_welch_bound)


def _max_vectors_cases(seed: int) -> list[tuple[int, float]]:
    g = _generator(seed)
    dims = torch.randint(5, 90, (6,), generator=g).tolist()
    return [(d, 0.1) for d in dims] + [(120, 0.1), (10, 0.25), (3, 0.5)]


def probe_max_vectors_welch(max_vectors_welch, seed: int) -> Plain:
    return {"values": [float(call_learner(max_vectors_welch, d, eps)) for d, eps in _max_vectors_cases(seed)]}


def judge_max_vectors_welch(data: Plain, seed: int) -> str:
    for (d, eps), got in zip(_max_vectors_cases(seed), data["values"], strict=True):
        want = packing.max_vectors_welch(d, eps)
        if not isinstance(got, float) or math.isnan(got):
            fail(f"max_vectors_welch({d}, {eps}) returned {got!r}: return a whole number (or math.inf).")
        if math.isinf(want) and not math.isinf(got):
            fail(f"max_vectors_welch({d}, {eps}) should be math.inf: when dim * eps^2 >= 1 the Welch bound "
                 "never exceeds eps, so it allows any number of vectors.")
        if not math.isinf(want) and (math.isinf(got) or got != int(got)):
            fail(f"max_vectors_welch({d}, {eps}) = {got}: return a whole number of vectors (round down).")
        if not math.isinf(want) and got != want:
            hint = (" (round down, not up)" if got == want + 1 else
                    " (floating point: dim (1 - eps^2) / (1 - dim eps^2) can land a hair below a whole number, "
                    "e.g. 98.99999999 for dim=50, eps=0.1; allow a tiny tolerance before rounding down, and keep "
                    "N when the bound equals eps exactly)" if got == want - 1 else "")
            fail(f"max_vectors_welch({d}, {eps}) = {got:g}, expected {want}{hint}: solve welch_bound(N, dim) <= eps for N.")
    return "max_vectors_welch: the largest N the Welch bound allows, inf when it allows any"


check_max_vectors_welch = make_check(probe_max_vectors_welch, judge_max_vectors_welch)


# --- expected_interference -----------------------------------------------------------------------

KEYS = ("p_both_active", "mean", "mean_square")


def _expected_cases(seed: int) -> list[tuple[float, float]]:
    g = _generator(seed)
    S = [0.0, 0.5, 0.9, 0.99] + torch.rand(2, generator=g).tolist()
    c = [1.0, 0.3, -0.5, 1.0] + (torch.rand(2, generator=g) * 2 - 1).tolist()
    return list(zip(S, c))


def reference_expected_interference(S: float, c: float = 1.0) -> dict[str, float]:
    """Closed form: x_i, x_j independent, each 0 with probability S, else uniform [0, 1); interference on i is c x_j.

    p_both_active = (1 - S)^2; mean = E[c x_j | x_i active] = c (1 - S) / 2 (x_j does not depend on x_i);
    mean_square = E[(c x_j)^2] over all inputs = c^2 (1 - S) / 3.
    """
    p = 1 - S
    return {"p_both_active": p * p, "mean": c * p / 2, "mean_square": c * c * p / 3}


def simulate_interference(S: float, c: float = 1.0, samples: int = 400_000, seed: int = 0) -> dict[str, float]:
    """Monte Carlo estimate of reference_expected_interference's three numbers (same definitions)."""
    g = make_generator(seed, torch.device("cpu"))
    x = torch.rand(samples, 2, generator=g) * (torch.rand(samples, 2, generator=g) >= S)
    i_active, j_active = x[:, 0] > 0, x[:, 1] > 0
    interference = c * x[:, 1]
    return {"p_both_active": (i_active & j_active).float().mean().item(),
            "mean": interference[i_active].mean().item() if i_active.any() else float("nan"),
            "mean_square": (interference**2).mean().item()}


def probe_expected_interference(expected_interference, seed: int) -> Plain:
    results = []
    for S, c in _expected_cases(seed):
        got = call_learner(expected_interference, S, c)
        if not isinstance(got, dict):
            return {"type": type(got).__name__}
        row = {}
        for key in KEYS:
            try:
                row[key] = float(got[key]) if key in got else None
            except (TypeError, ValueError) as error:
                row[key] = f"{type(got[key]).__name__} ({error})"[:200]
        results.append(row)
    return {"type": "dict", "results": results}


def judge_expected_interference(data: Plain, seed: int) -> str:
    if data.get("type") != "dict":
        fail(f"expected_interference should return a dict with keys {', '.join(KEYS)}; got a {data.get('type')}.")
    cases = _expected_cases(seed)
    results = data.get("results")
    if not isinstance(results, list) or len(results) != len(cases):
        fail("expected_interference did not return a result for every (S, c) it was called with.")
    for (S, c), got in zip(cases, results):
        if not isinstance(got, dict):
            fail("expected_interference should return a dict of floats.")
        missing = [k for k in KEYS if got.get(k) is None]
        if missing:
            fail(f"the dict is missing {', '.join(missing)} (keys: {', '.join(KEYS)}).")
        for key in KEYS:
            if not isinstance(got[key], float):
                fail(f"{key} should be a number (float), got {got[key]}.")
        want, p = reference_expected_interference(S, c), 1 - S
        swapped = reference_expected_interference(1 - S, c) if abs(S - 0.5) > 1e-9 else None
        for key in KEYS:
            value = got[key]
            if abs(value - want[key]) <= 1e-6:
                continue
            if swapped and abs(value - swapped[key]) <= 1e-6:
                fail(f"{key} at S={S:.3f}: you used S as the probability a feature is active. S is the "
                     "probability it is ZERO; a feature is active with probability 1 - S.")
            if key == "p_both_active" and S > 0 and abs(value - p) <= 1e-6:
                fail("p_both_active: two independent features are both active with probability (1 - S)^2, "
                     "not 1 - S.")
            if key == "mean" and abs(value - c * p) <= 1e-6:
                fail("mean forgot the 1/2: an active feature's value is uniform in [0, 1), with mean 1/2.")
            if key == "mean" and S > 0 and abs(value - c * p * p / 2) <= 1e-6:
                fail("mean: you squared the probability, multiplying by P(both active) = (1 - S)^2. Given that "
                     "feature i is active, only feature j's probability 1 - S of being active enters.")
            if key == "mean_square" and abs(value - c * c * p / 4) <= 1e-6:
                fail("mean_square used (1/2)^2 = 1/4: the square of the mean is not the mean of the square. "
                     "For x uniform in [0, 1), E[x^2] = 1/3.")
            if key == "mean_square" and abs(value - c * c * p) <= 1e-6:
                fail("mean_square forgot the 1/3: for x uniform in [0, 1), E[x^2] = 1/3.")
            if key == "mean_square" and S > 0 and abs(value - c * c * p * p / 3) <= 1e-6:
                fail("mean_square: you squared the probability, multiplying by P(both active) = (1 - S)^2. The "
                     "mean is over all inputs, and (c x_j)^2 does not depend on x_i: only 1 - S enters.")
            if key == "mean_square" and S > 0 and abs(value - (c * p / 2) ** 2) <= 1e-6:
                fail("mean_square is the square of the mean, (c (1 - S) / 2)^2: square inside the expectation, "
                     "E[(c x_j)^2] = c^2 (1 - S) E[x^2 | active] = c^2 (1 - S) / 3.")
            if key == "mean_square" and c < 0 and abs(value + want[key]) <= 1e-6:
                fail("mean_square must be >= 0: a square is never negative (use c^2, not c).")
            if key == "mean" and abs(value + want[key]) <= 1e-6:
                fail("mean has the wrong sign: the interference is c x_j, negative when the cosine c is negative.")
            fail(f"{key} at S={S:.3f}, c={c:.3f} is {value:.6f}; the closed form gives {want[key]:.6f} "
                 f"(a simulation gives {simulate_interference(S, c, samples=100_000)[key]:.4f}).")
    return "expected_interference: matches the closed form and a Monte Carlo simulation"


check_expected_interference = make_check(probe_expected_interference, judge_expected_interference)


EXERCISES = {
    "test_measure_interference": ("measure_interference", probe_measure_interference, judge_measure_interference),
    "test_cosine_similarities": ("cosine_similarities", probe_cosine_similarities, judge_cosine_similarities),
    "test_welch_bound": ("welch_bound", probe_welch_bound, judge_welch_bound),
    "test_max_vectors_welch": ("max_vectors_welch", probe_max_vectors_welch, judge_max_vectors_welch),
    "test_expected_interference": ("expected_interference", probe_expected_interference, judge_expected_interference),
}
