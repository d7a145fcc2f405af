"""Visible checks for lesson 03 (importance vs sparsity). Each exercise: probe_*, judge_*, check_*.

probe_* calls the learner's object on inputs built from `seed` and returns plain data only; judge_*
rebuilds the inputs and the reference from `seed` (utils.phase, and a Monte Carlo simulation with
utils.ToyModel for the losses) and names the likely misconception when something is off.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from utils import phase
from utils.checks import Plain, call_learner, fail, make_check
from utils.device import make_generator


def _generator(seed: int) -> torch.Generator:
    return make_generator(3000 + seed, torch.device("cpu"))


def _describe(w: list[float]) -> str:
    return "[" + ", ".join(f"{v:+.2f}" for v in w) + "]"


# --- classify_regime -----------------------------------------------------------------------------

def _regime_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two W (n_instances, 1, 2): one for the default threshold 0.5, one for threshold=0.3.

    The first covers every regime with both signs: antipodal pairs, same-sign pairs, each feature
    alone with either sign, and two small weights whose sum and norm exceed the threshold. The
    second has weights between 0.3 and 0.5, whose labels change with the threshold.
    """
    g = _generator(seed)

    def u(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=g))

    big, small, mid = (lambda: u(0.7, 1.3)), (lambda: u(0.0, 0.25)), (lambda: u(0.34, 0.46))
    rows = [[big(), -big()], [-big(), big()],            # superposed
            [big(), big()], [-big(), -big()],            # same sign: not represented
            [big(), small()], [-big(), -small()],        # dedicated to feature 1
            [small(), big()], [-small(), -big()],        # dedicated to feature 2
            [mid(), mid()], [-mid(), mid()],             # not represented, though sum and norm exceed 0.5
            [small(), -small()]]                         # not represented
    order = torch.randperm(len(rows), generator=g)
    W = torch.tensor(rows)[order][:, None, :]
    rows_03 = [[mid(), -mid()], [mid(), small() / 3], [-small() / 3, -mid()], [small(), -small()]]
    W_03 = torch.tensor(rows_03)[torch.randperm(len(rows_03), generator=g)][:, None, :]
    return W, W_03


def _labels(result) -> tuple[list[str], str]:
    if isinstance(result, (list, tuple)):
        return [str(label) for label in result], type(result).__name__
    return [], type(result).__name__


def probe_classify_regime(classify_regime, seed: int) -> Plain:
    W, W_03 = _regime_inputs(seed)
    labels, kind = _labels(call_learner(classify_regime, W.clone()))
    labels_03, kind_03 = _labels(call_learner(classify_regime, W_03.clone(), threshold=0.3))
    return {"labels": labels, "type": kind, "labels_03": labels_03, "type_03": kind_03}


def _diagnose(w: list[float], want: str, got: str, threshold: float) -> tuple[int, str]:
    """(priority, message) for one mislabelled instance; lower priority numbers are more specific."""
    a, b = abs(w[0]), abs(w[1])
    both_big, both_small = a > threshold and b > threshold, a <= threshold and b <= threshold
    if want == "not represented" and both_big and got == "superposed":
        return 0, (f"W = {_describe(w)}: two represented features with the SAME sign are not the antipodal "
                   "solution. Sharing the line with the same sign means each output always carries the other "
                   "feature, which the ReLU cannot filter; 'superposed' needs opposite signs (W_1 * W_2 < 0).")
    if want == "dedicated" and got == "not represented" and (w[0] < -threshold or w[1] < -threshold):
        return 2, (f"W = {_describe(w)}: a feature with a large NEGATIVE weight is represented too. Compare "
                   "|W_i| with the threshold, not W_i itself.")
    if want == "dedicated" and got == "not represented" and w[1] > threshold:
        return 1, (f"W = {_describe(w)}: feature 2 alone is represented, you said 'not represented'. Are you "
                   "reading only one feature, or the wrong axis (transposed W)? W is (n_instances, 1, 2): "
                   "feature i of instance k is W[k, 0, i].")
    if want == "superposed" and got == "dedicated":
        return 3, (f"W = {_describe(w)} is an antipodal pair (both |W_i| > {threshold}, opposite signs), you said "
                   "'dedicated'. Check the axis you read the two features along (W[k, 0, :], W is not "
                   "transposed) and compare |W_i|, since one weight of an antipodal pair is negative.")
    if both_small and want == "not represented" and (a + b > threshold or math.hypot(a, b) > threshold):
        return 4, (f"W = {_describe(w)}: neither |W_i| exceeds {threshold}, so no feature is represented. Judge "
                   "each feature by its own |W_i|, not by the sum (or norm) over both features.")
    if want == "dedicated" and got == "superposed":
        return 4, (f"W = {_describe(w)}: only one |W_i| exceeds {threshold}. Judge each feature by its own |W_i|, "
                   "not by the sum (or norm) over both features.")
    return 9, (f"W = {_describe(w)} is {want!r}, you said {got!r}. Represented: |W_i| > threshold. Superposed: both, "
               "with opposite signs. Dedicated: exactly one. Not represented: otherwise.")


def _judge_labels(W: torch.Tensor, got: list[str], kind: str, threshold: float) -> None:
    want = phase.classify_regime(W, threshold)
    call = "classify_regime(W)" if threshold == 0.5 else f"classify_regime(W, threshold={threshold})"
    if kind not in ("list", "tuple"):
        fail(f"{call} should return a list of strings, one per instance; got a {kind}.")
    if len(got) != len(want):
        fail(f"{call} returned {len(got)} labels for W of shape {tuple(W.shape)}: expected {len(want)}, one per "
             "instance. W is (n_instances, 1, 2); classify each W[k, 0, :] (is W transposed, or did you iterate "
             "over the wrong axis?).")
    unknown = sorted(set(got) - set(phase.REGIMES))
    if unknown:
        fail(f"unknown labels {unknown}: use exactly {', '.join(map(repr, phase.REGIMES))}.")
    wrong = [_diagnose(W[k, 0].tolist(), w, g, threshold) for k, (g, w) in enumerate(zip(got, want)) if g != w]
    if not wrong:
        return
    if threshold != 0.5:
        changed = [k for k, (g, w) in enumerate(zip(got, want)) if g != w]
        if all(got[k] == phase.classify_regime(W[k:k + 1], 0.5)[0] for k in changed):
            fail(f"{call}: your labels are those for threshold 0.5. Use the `threshold` argument instead of a "
                 "hard-coded 0.5.")
    fail(min(wrong)[1])


def judge_classify_regime(data: Plain, seed: int) -> str:
    W, W_03 = _regime_inputs(seed)
    _judge_labels(W, list(data["labels"]), str(data["type"]), 0.5)
    _judge_labels(W_03, list(data["labels_03"]), str(data["type_03"]), 0.3)
    return "classify_regime: every regime, both signs, and the threshold argument"


check_classify_regime = make_check(probe_classify_regime, judge_classify_regime)


# --- candidate_losses ----------------------------------------------------------------------------

#: Monte Carlo settings of the judge: a value passes within MC_SIGMAS standard errors of the simulation.
MC_BATCH, MC_SIGMAS = 2**17, 5.0


def _loss_cases(seed: int) -> list[tuple[float, float]]:
    """(r, feature_probability) pairs: r log-uniform in [0.1, 10], p log-uniform in [0.15, 0.9]."""
    g = _generator(seed)
    r = torch.exp(math.log(0.1) + math.log(100) * torch.rand(3, generator=g))
    p = torch.exp(math.log(0.15) + math.log(6) * torch.rand(3, generator=g))
    fixed = [(0.5, 0.2), (2.0, 0.4)] if seed == 0 else [(1.0, 1.0)]
    return fixed + [(round(float(a), 4), round(float(b), 4)) for a, b in zip(r, p)]


@lru_cache(maxsize=8)
def _simulated(seed: int) -> list[dict[str, tuple[float, float]]]:
    return phase.simulate_candidates(_loss_cases(seed), batch_size=MC_BATCH, seed=5000 + seed)


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return math.nan


def probe_candidate_losses(candidate_losses, seed: int) -> Plain:
    results, types = [], []
    for r, p in _loss_cases(seed):
        got = call_learner(candidate_losses, r, p)
        types.append(type(got).__name__)
        results.append({str(k): _as_float(v) for k, v in got.items()} if isinstance(got, dict) else {})
    return {"types": types, "results": results}


def _variants(r: float, p: float) -> list[tuple[bool, dict[str, float], str]]:
    """(all keys must match?, the values a misconception gives, its message), most specific first."""
    d = p / 3 - p * p / 4
    right = phase.candidate_losses(r, p)
    q = 1 - p
    second = ("E[x^2] of a feature uniform on [0, 1) when active is p/3 (the uniform's second moment is 1/3), and "
              "an antipodal pair errs by min(x1, x2) in both outputs, with E[min(u, v)^2] = 1/6.")
    return [
        (True, {"dedicated_1": r / 2 * (q / 3 - q * q / 4), "dedicated_2": (q / 3 - q * q / 4) / 2,
                "superposed": (1 + r) * q * q / 12},
         f"you used S where 1 - S belongs: feature_probability = {p} is already the probability of being active."),
        (True, {key: 2 * value for key, value in right.items()},
         "the loss AVERAGES over the 2 features (like ToyModel.loss): divide the importance-weighted sum by 2."),
        (True, {"dedicated_1": right["dedicated_2"], "dedicated_2": right["dedicated_1"]},
         "dedicated_1 and dedicated_2 are swapped: dedicated_1 keeps feature 1 (W = [1, 0]) and drops feature 2, "
         "whose importance is r."),
        (False, {"dedicated_1": d / 2, "superposed": p * p / 6},
         "you forgot the importance weight: feature 2's squared error counts r times (importances are (1, r))."),
        (False, {"superposed": (1 + r) * p / 12},
         "superposed: the antipodal pair only errs when BOTH features are active (probability p^2, not p); when "
         "only one is active, the ReLU clips the other output at 0 and both outputs are exact."),
        (False, {"superposed": (1 + r) * p * (1 - p) / 12},
         "superposed: the pair errs when BOTH features are active, probability p^2 (not 'exactly one', p(1-p))."),
        (False, {"dedicated_1": r * p / 6, "dedicated_2": p / 6},
         "the dropped feature: with b = 0 it costs E[x^2] = p/3, but the optimal bias outputs its mean p/2, "
         "leaving only its variance p/3 - p^2/4. The candidates use that bias (b = [0, p/2] for dedicated_1)."),
        (False, {"dedicated_1": r / 2 * (p - p * p), "dedicated_2": (p - p * p) / 2},
         f"the dropped feature's cost: features are uniform on [0, 1) when active, not 1. {second}"),
        (False, {"dedicated_1": r / 2 * (p / 2 - p * p / 4), "dedicated_2": (p / 2 - p * p / 4) / 2},
         f"the dropped feature's cost uses E[x] = 1/2 where the second moment belongs. {second}"),
        (False, {"dedicated_1": r / 2 * (p / 4 - p * p / 4), "dedicated_2": (p / 4 - p * p / 4) / 2},
         f"the dropped feature's cost uses E[x]^2 = 1/4 where E[x^2] = 1/3 belongs. {second}"),
        (False, {"superposed": (1 + r) * p * p / 2},
         f"superposed: the interference is uniform on [0, 1), not 1. {second}"),
        (False, {"superposed": (1 + r) * p * p / 6},
         f"superposed: when both are on, each output errs by min(x1, x2), not by the whole feature. {second}"),
        (False, {"superposed": (1 + r) * p * p / 8},
         f"superposed: E[min(u, v)^2] = 1/6, not 1/4. {second}"),
    ]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * abs(b) + 1e-9


def judge_candidate_losses(data: Plain, seed: int) -> str:
    cases, results, types = _loss_cases(seed), list(data["results"]), list(data["types"])
    if len(results) != len(cases) or len(types) != len(cases):
        fail("candidate_losses was not called on every case.")
    for kind in types:
        if kind != "dict":
            fail(f"candidate_losses should return a dict with keys {', '.join(phase.CANDIDATES)}; got a {kind}.")
    for got in results:
        missing, extra = sorted(set(phase.CANDIDATES) - set(got)), sorted(set(got) - set(phase.CANDIDATES))
        if missing:
            fail(f"missing keys {missing} (got {sorted(got)}): return exactly {', '.join(phase.CANDIDATES)}.")
        if extra:
            fail(f"unexpected keys {extra}: return exactly {', '.join(phase.CANDIDATES)}.")
        if not all(math.isfinite(v) for v in got.values()):
            fail("every value should be a finite number (a float or a 0-d tensor).")
        if any(v < 0 for v in got.values()):
            fail("a loss is an expected (weighted) squared error: it cannot be negative.")
    # Invariants and the named misconceptions, key by key, against the closed form.
    for k, (r, p) in enumerate(cases):
        right = phase.candidate_losses(r, p)
        for every_key, values, message in _variants(r, p):
            if all(_same(value, right[key]) for key, value in values.items()):
                continue  # this misconception gives the right answer here
            hits = [key for key, value in values.items()
                    if not _same(value, right[key]) and _same(results[k][key], value)]
            if hits and (not every_key or all(_same(results[k][key], value) for key, value in values.items())):
                fail(f"r = {r}, 1 - S = {p}: {', '.join(hits)} = {results[k][hits[0]]:.6g}, expected "
                     f"{right[hits[0]]:.6g}. Likely: {message}")
    # The values, against a Monte Carlo simulation of the candidates loaded into utils.ToyModel.
    for (r, p), got, simulated in zip(cases, results, _simulated(seed)):
        W = {name: phase.candidate_weights(name, p) for name in phase.CANDIDATES}
        for name in phase.CANDIDATES:
            mean, stderr = simulated[name]
            if abs(got[name] - mean) > MC_SIGMAS * stderr + 1e-7:
                fail(f"{name} for r = {r}, 1 - S = {p}: you have {got[name]:.6g}, but a ToyModel with W = "
                     f"{W[name][0][0].tolist()}, b = {[round(v, 4) for v in W[name][1].tolist()]} measures "
                     f"{mean:.6g} +- {stderr:.2g} on {MC_BATCH} samples (tolerance {MC_SIGMAS:g} standard errors).")
    return (f"candidate_losses: all three candidates agree with a ToyModel simulation ({MC_BATCH} samples, within "
            f"{MC_SIGMAS:g} standard errors)")


check_candidate_losses = make_check(probe_candidate_losses, judge_candidate_losses)


# --- superposition_boundary ----------------------------------------------------------------------

def _boundary_rs(seed: int) -> list[float]:
    """Relative importances on both sides of 1: three in [0.1, 1), r = 1, three in (1, 10]."""
    g = _generator(seed)
    low = 0.1 + 0.85 * torch.rand(3, generator=g)
    high = 1.1 + 8.9 * torch.rand(3, generator=g)
    return [round(float(r), 4) for r in low] + [1.0] + [round(float(r), 4) for r in high]


def probe_superposition_boundary(superposition_boundary, seed: int) -> Plain:
    return {"values": [_as_float(call_learner(superposition_boundary, r)) for r in _boundary_rs(seed)]}


def judge_superposition_boundary(data: Plain, seed: int) -> str:
    rs, got = _boundary_rs(seed), [float(v) for v in data["values"]]
    if len(got) != len(rs) or not all(math.isfinite(v) for v in got):
        fail("superposition_boundary(r) should return one finite number (a float) for each r.")
    want = [phase.superposition_boundary(r) for r in rs]
    wrong = [k for k in range(len(rs)) if not _same(got[k], want[k])]
    if not wrong:
        return "superposition_boundary: 4r / (2 + 5r) for r <= 1 and 4 / (2r + 5) for r >= 1"
    low, high = [k for k in wrong if rs[k] <= 1], [k for k in wrong if rs[k] > 1]
    if all(_same(got[k], 1 - want[k]) for k in wrong):
        fail("you returned the boundary in S; the function returns the feature probability 1 - S.")
    if all(_same(got[k], 2 * min(rs[k], 1) / (1 + rs[k])) for k in wrong):
        fail("your boundary 2r / (1 + r) is what a dedicated solution with b = 0 gives. The dropped feature's "
             "optimal bias outputs its mean p/2, so it costs its variance p/3 - p^2/4; solve again with that.")
    if high and not low and all(_same(got[k], 4 * rs[k] / (2 + 5 * rs[k])) for k in high):
        fail(f"r = {rs[high[0]]} > 1: now feature 2 is the more important one, so the best dedicated solution "
             "keeps feature 2 (dedicated_2). Superposition must beat the BEST dedicated solution: by symmetry "
             "the boundary is 4 / (2r + 5) for r > 1.")
    if low and all(_same(got[k], 4 / (2 * rs[k] + 5)) for k in low):
        fail(f"r = {rs[low[0]]} < 1: you compared superposition with dedicated_2, but feature 1 is the more "
             "important one, so the best dedicated solution is dedicated_1. Solve dedicated_1 = superposed.")
    k = wrong[0]
    fail(f"superposition_boundary({rs[k]}) = {got[k]:.6g}, expected {want[k]:.6g}: set the best dedicated loss "
         "equal to the superposed loss and solve for p (for r <= 1: r/2 (p/3 - p^2/4) = (1 + r) p^2 / 12).")


check_superposition_boundary = make_check(probe_superposition_boundary, judge_superposition_boundary)


EXERCISES = {
    "test_classify_regime": ("classify_regime", probe_classify_regime, judge_classify_regime),
    "test_candidate_losses": ("candidate_losses", probe_candidate_losses, judge_candidate_losses),
    "test_superposition_boundary": ("superposition_boundary", probe_superposition_boundary,
                                    judge_superposition_boundary),
}
