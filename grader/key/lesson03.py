"""Answer key of lesson 03 (importance vs sparsity): references, known wrong answers, input builders."""

from __future__ import annotations

import math

import torch

from grader.key import Exercise, Wrong, integer, uniform
from utils import phase

LESSON = "03_importance_sparsity"
CHECKS = "utils.checks.lesson03"


def _sign(g: torch.Generator) -> float:
    return 1.0 if float(torch.rand((), generator=g)) < 0.5 else -1.0


def _rows(g: torch.Generator, rows: list[list[float]]) -> torch.Tensor:
    """Instances in a random order, as W of shape (n_instances, 1, 2)."""
    return torch.tensor(rows)[torch.randperm(len(rows), generator=g)][:, None, :]


# --- classify_regime -----------------------------------------------------------------------------

def regime_inputs(g: torch.Generator) -> dict:
    """W (n_instances, 1, 2) covering every regime with both signs, and thresholds on both sides of 0.5.

    "small weights" has pairs whose sum exceeds 0.5 but not their norm ("low"), and pairs whose norm
    exceeds it too ("mid"), none with |W_i| > 0.5. The threshold cases hold weights between 0.5 and
    the threshold, whose labels change with it.
    """
    big, small = (lambda: uniform(g, 0.7, 1.3)), (lambda: uniform(g, 0.0, 0.2))
    every = [[big(), -big()], [-big(), big()],            # superposed, either sign first
             [big(), big()], [-big(), -big()],            # same sign
             [big(), small()], [-big(), -small()], [big(), -small()],     # dedicated to feature 1
             [small(), big()], [-small(), -big()], [small(), -big()],     # dedicated to feature 2
             [small(), -small()]]                         # not represented
    every += [[_sign(g) * big(), _sign(g) * big()] for _ in range(integer(g, 1, 3))]

    mid, low = (lambda: uniform(g, 0.37, 0.46)), (lambda: uniform(g, 0.27, 0.34))  # mid: norm > 0.52; low: sum > 0.54, norm < 0.49
    weak = [[mid(), mid()], [-mid(), mid()], [mid(), -mid()], [low(), low()], [-low(), low()], [-low(), -low()],
            [mid(), -low()], [small(), -small()]]

    t_low = round(uniform(g, 0.2, 0.34), 4)
    between = lambda: uniform(g, t_low + 0.03, 0.47)  # represented at t_low, not at 0.5
    tiny = lambda: uniform(g, 0.0, t_low - 0.05)
    below = [[between(), -between()], [-between(), between()], [between(), tiny()], [-tiny(), -between()],
             [tiny(), -tiny()], [between(), between()], [big(), -between()], [big(), -big()]]

    t_high = round(uniform(g, 0.65, 0.85), 4)
    over = lambda: uniform(g, 0.53, t_high - 0.03)  # represented at 0.5, not at t_high
    large = lambda: uniform(g, t_high + 0.05, 1.4)
    above = [[over(), -over()], [-over(), over()], [large(), -over()], [-over(), -large()], [over(), over()],
             [large(), -large()], [-over(), small()]]

    return {"every regime": {"args": [_rows(g, every)]},
            "small weights": {"args": [_rows(g, weak)]},
            "threshold below 0.5": {"args": [_rows(g, below)], "kwargs": {"threshold": t_low}},
            "threshold above 0.5": {"args": [_rows(g, above)], "kwargs": {"threshold": t_high}},
            "random W": {"args": [torch.randn(integer(g, 16, 32), 1, 2, generator=g)]}}


def _labels(count: torch.Tensor, opposite: torch.Tensor) -> list[str]:
    return [("not represented", "dedicated", "superposed" if o else "same sign")[c]
            for c, o in zip(count.tolist(), opposite.tolist())]


def _opposite(w: torch.Tensor) -> torch.Tensor:
    return w[:, 0] * w[:, 1] < 0


def _same_sign_superposed(W, threshold=0.5):  # two represented features are "superposed" whatever their signs
    w = W[:, 0, :]
    return _labels((w.abs() > threshold).sum(dim=1), torch.ones(len(w), dtype=torch.bool))


def _same_sign_not_represented(W, threshold=0.5):  # the lesson's old definition: same-sign pairs are nothing
    return [("not represented" if x == "same sign" else x) for x in phase.classify_regime(W, threshold)]


def _no_abs(W, threshold=0.5):  # compares W_i, not |W_i|: a large negative weight is not represented
    w = W[:, 0, :]
    return _labels((w > threshold).sum(dim=1), _opposite(w))


def _one_feature_only(W, threshold=0.5):  # reads W[:, :, 0] (the wrong axis): only feature 1 is ever seen
    return _labels((W[:, :, 0].abs() > threshold).sum(dim=1), torch.zeros(len(W), dtype=torch.bool))


def _aggregate_of_both(aggregate):
    """Judges the pair by an aggregate of |W_1|, |W_2| (one feature), then by the smaller weight (both)."""
    def answer(W, threshold=0.5):
        a = W[:, 0, :].abs()
        count = (aggregate(a) > threshold).long() + (a.min(dim=1).values > threshold).long()
        return _labels(count, _opposite(W[:, 0, :]))
    return answer


def _dedicated_checked_first(W, threshold=0.5):  # `if any represented: "dedicated"` before the antipodal test
    w = W[:, 0, :]
    return ["dedicated" if c >= 1 else "not represented" for c in (w.abs() > threshold).sum(dim=1).tolist()]


def _abs_sign_test(W, threshold=0.5):  # takes |W| first, then tests the signs on |W|: never opposite
    w = W[:, 0, :].abs()
    return _labels((w > threshold).sum(dim=1), _opposite(w))


def _no_threshold_parameter(W):
    return phase.classify_regime(W)


AXIS = "W is (n_instances, 1, 2): feature i of instance k is W[k, 0, i]."

CLASSIFY_REGIME = Exercise(
    name="classify_regime", points=1, inputs=regime_inputs, reference=phase.classify_regime,
    answers=("utils.phase.classify_regime",),
    wrong=(
        Wrong("same_sign_superposed", "two represented features with the SAME sign are not the antipodal pair: on a "
              "shared line with the same sign, each output always carries the other feature, which the ReLU cannot "
              "filter. 'superposed' needs opposite signs (W_1 * W_2 < 0); same-sign pairs are 'same sign'.",
              _same_sign_superposed),
        Wrong("same_sign_not_represented", "two represented features with the same sign came out 'not represented': "
              "both features ARE represented there (each |W_i| > threshold), with the same sign, and that regime is "
              "'same sign'. 'not represented' is for instances where no |W_i| exceeds the threshold.",
              _same_sign_not_represented),
        Wrong("no_abs", "a feature with a large NEGATIVE weight is represented too (one weight of an antipodal pair is "
              "negative): compare |W_i| with the threshold, not W_i itself.", _no_abs),
        Wrong("one_feature_only", "instances where feature 2 alone is represented came out 'not represented', and "
              "antipodal pairs 'dedicated': you seem to read only one feature, or the wrong axis (transposed W). "
              + AXIS, _one_feature_only),
        Wrong("sum_of_both", "instances where neither |W_i| exceeds the threshold, but |W_1| + |W_2| does, are not "
              "'not represented' in your labels. Judge each feature by its own |W_i|, not by the sum over both "
              "features.", _aggregate_of_both(lambda a: a.sum(dim=1))),
        Wrong("norm_of_both", "instances where neither |W_i| exceeds the threshold, but the norm of (W_1, W_2) does, "
              "are not 'not represented' in your labels. Judge each feature by its own |W_i|, not by the norm over "
              "both features.", _aggregate_of_both(lambda a: a.norm(dim=1))),
        Wrong("dedicated_checked_first", "every instance with a represented feature came out 'dedicated'. 'dedicated' "
              "means exactly ONE feature represented: test for two represented features (and their signs) too.",
              _dedicated_checked_first),
        Wrong("abs_sign_test", "antipodal pairs came out 'same sign': you tested the signs on |W|, where they "
              "are never opposite. Use |W_i| for the threshold only, and the signed W_1 * W_2 < 0 for 'superposed'.",
              _abs_sign_test),
        Wrong("hard_coded_threshold", "given a threshold other than 0.5, your labels are those for threshold 0.5: "
              "use the `threshold` argument instead of a hard-coded 0.5.", lambda W, threshold=0.5: phase.classify_regime(W)),
        Wrong("no_threshold_parameter", "classify_regime(W, threshold=...) raised TypeError: take a `threshold` "
              "argument (default 0.5) and use it.", _no_threshold_parameter),
        Wrong("one_label_only", "return one label per instance, in order: " + AXIS + " Classify every W[k, 0, :] (did "
              "you iterate over the wrong axis, or return inside the loop?).",
              lambda W, threshold=0.5: phase.classify_regime(W, threshold)[:1]),
        Wrong("label_codes", "return the labels as strings, exactly 'not represented', 'dedicated', 'superposed' or "
              "'same sign', not their codes.", lambda W, threshold=0.5: [phase.REGIMES.index(x)
                                                           for x in phase.classify_regime(W, threshold)]),
        Wrong("single_string", "classify_regime should return a list of strings, one per instance, not one string "
              "(did you return inside the loop?).", lambda W, threshold=0.5: phase.classify_regime(W, threshold)[0]),
    ),
    hints={"every regime": "Feature i is represented when |W[k, 0, i]| > threshold (one weight of an antipodal pair "
                           "is negative). 'superposed': both, with opposite signs; 'same sign': both, with the same "
                           "sign; 'dedicated': exactly one; 'not represented': none. " + AXIS,
           "small weights": "No |W_i| exceeds the threshold in any instance here: every one is 'not represented'. "
                            "Judge each feature by its own |W_i|.",
           "threshold below 0.5": "Use the `threshold` argument: here weights between the threshold and 0.5 are "
                                  "represented.",
           "threshold above 0.5": "Use the `threshold` argument: here weights between 0.5 and the threshold are not "
                                  "represented."},
    spec="Return a list of strings, one per instance k of W (n_instances, 1, 2): 'superposed' when both |W[k, 0, i]| "
         "> threshold with opposite signs, 'same sign' when both are with the same sign, 'dedicated' when exactly "
         "one is, 'not represented' when none is.",
    passed="classify_regime: every regime, both signs, small weights and the threshold argument",
)


# --- candidate_losses ----------------------------------------------------------------------------

def loss_inputs(g: torch.Generator) -> dict:
    """(r, feature_probability) on both sides of r = 1 (a swap shows), p away from 0.5 (1 - p = p hides S for p)."""
    def log_u(low: float, high: float) -> float:
        return round(math.exp(uniform(g, math.log(low), math.log(high))), 4)
    return {"r < 1": {"args": [log_u(0.1, 0.8), log_u(0.15, 0.4)]},
            "r > 1": {"args": [log_u(1.25, 10.0), log_u(0.6, 0.9)]},
            "sparse": {"args": [log_u(0.2, 5.0), log_u(0.02, 0.1)]},
            "dense (p = 1)": {"args": [log_u(0.2, 5.0), 1.0]}}


def _losses(r: float, p: float, dropped: float | None = None, superposed: float | None = None,
            importance: float | None = None) -> dict[str, float]:
    """The candidates' losses with a (possibly wrong) dropped-feature cost, superposed error and importance r."""
    d = p / 3 - p * p / 4 if dropped is None else dropped
    w = r if importance is None else importance
    sup = (1 + w) * p * p / 12 if superposed is None else superposed
    return {"dedicated_1": w / 2 * d, "dedicated_2": d / 2, "superposed": sup}


def _swapped(r, p):
    right = phase.candidate_losses(r, p)
    return {"dedicated_1": right["dedicated_2"], "dedicated_2": right["dedicated_1"], "superposed": right["superposed"]}


SECOND = ("E[x^2] of a feature uniform on [0, 1) when active is p/3 (the uniform's second moment is 1/3), and an "
          "antipodal pair errs by min(x1, x2) in both outputs, with E[min(u, v)^2] = 1/6.")

CANDIDATE_LOSSES = Exercise(
    name="candidate_losses", points=2, inputs=loss_inputs, reference=phase.candidate_losses,
    answers=("utils.phase.candidate_losses", "utils.phase.simulate_candidates", "utils.phase.simulate_loss",
             "utils.phase.exact_loss", "utils.phase.optimum", "utils.phase.optimum_boundary"), atol=1e-9, rtol=1e-6,
    wrong=(
        Wrong("s_for_p", "you used S where 1 - S belongs: feature_probability is already the probability that a "
              "feature is active.", lambda r, p: _losses(r, 1 - p)),
        Wrong("summed_not_averaged", "the loss AVERAGES over the 2 features (like ToyModel.loss): divide the "
              "importance-weighted sum by 2.", lambda r, p: {k: 2 * v for k, v in phase.candidate_losses(r, p).items()}),
        Wrong("dedicated_swapped", "dedicated_1 and dedicated_2 are swapped: dedicated_1 keeps feature 1 (W = [1, 0]) "
              "and drops feature 2, whose importance is r.", _swapped),
        Wrong("no_importance", "you forgot the importance weight: feature 2's squared error counts r times "
              "(importances are (1, r)), in dedicated_1 and in superposed.", lambda r, p: _losses(r, p, importance=1.0)),
        Wrong("superposed_one_active", "superposed: the antipodal pair only errs when BOTH features are active "
              "(probability p^2, not p); when only one is active, the ReLU clips the other output at 0 and both "
              "outputs are exact.", lambda r, p: _losses(r, p, superposed=(1 + r) * p / 12)),
        Wrong("superposed_exactly_one", "superposed: the pair errs when BOTH features are active, probability p^2 "
              "(not 'exactly one', p(1-p)).", lambda r, p: _losses(r, p, superposed=(1 + r) * p * (1 - p) / 12)),
        Wrong("no_bias", "the dropped feature: with b = 0 it costs E[x^2] = p/3, but the optimal bias outputs its "
              "mean p/2, leaving only its variance. The candidates use that bias (b = [0, p/2] for dedicated_1).",
              lambda r, p: _losses(r, p, dropped=p / 3)),
        Wrong("dropped_active_is_one", "the dropped feature's cost: features are uniform on [0, 1) when active, not 1. "
              + SECOND, lambda r, p: _losses(r, p, dropped=p - p * p)),
        Wrong("dropped_mean_for_second_moment", "the dropped feature's cost uses E[x] = 1/2 where the second moment "
              "belongs. " + SECOND, lambda r, p: _losses(r, p, dropped=p / 2 - p * p / 4)),
        Wrong("dropped_square_of_mean", "the dropped feature's cost uses E[x]^2 = 1/4 where E[x^2] = 1/3 belongs. "
              + SECOND, lambda r, p: _losses(r, p, dropped=p / 4 - p * p / 4)),
        Wrong("variance_sign", "a loss is an expected (weighted) squared error: it cannot be negative. The dropped "
              "feature's variance is E[x^2] - E[x]^2, not the reverse.",
              lambda r, p: _losses(r, p, dropped=p * p / 4 - p / 3)),
        Wrong("superposed_error_one", "superposed: the interference is uniform on [0, 1), not 1. " + SECOND,
              lambda r, p: _losses(r, p, superposed=(1 + r) * p * p / 2)),
        Wrong("superposed_whole_feature", "superposed: when both are on, each output errs by min(x1, x2), not by the "
              "whole feature. " + SECOND, lambda r, p: _losses(r, p, superposed=(1 + r) * p * p / 6)),
        Wrong("superposed_quarter", "superposed: E[min(u, v)^2] = 1/6, not 1/4. " + SECOND,
              lambda r, p: _losses(r, p, superposed=(1 + r) * p * p / 8)),
        Wrong("one_number", "candidate_losses returns a dict with three keys, 'dedicated_1', 'dedicated_2' and "
              "'superposed', each mapped to that candidate's loss (a float): not one number, not only the best "
              "candidate's loss.", lambda r, p: min(phase.candidate_losses(r, p).values())),
        Wrong("values_list", "return a dict keyed by candidate, {'dedicated_1': ..., 'dedicated_2': ..., 'superposed': "
              "...}, not a list of the values.", lambda r, p: list(phase.candidate_losses(r, p).values())),
    ),
    # The fallback message names the one wrong key ("at r < 1['superposed']"); the hints and the spec below name
    # no candidate, so that the message points at that key alone (issue 13).
    hints={"r > 1": "Here r > 1: feature 2 is the more important one. Which feature does that candidate drop, and "
                    "whose importance weighs the dropped feature's error?",
           "sparse": "Here the features are sparse: an antipodal pair errs only when both features are active "
                     "(probability p^2); a dropped feature costs its variance every time it is on.",
           "dense (p = 1)": "Here p = 1: every feature is always active, and a dropped feature still costs its "
                            "variance 1/3 - 1/4."},
    spec="Fix the value of the candidate named in brackets (the check stops at the first wrong one): its expected "
         "loss is the mean over the 2 features of importance x squared error, importances (1, r), with that "
         "candidate's W and b from the table, as a float.",
    passed="candidate_losses: the three closed forms, on both sides of r = 1, sparse and dense",
)


# --- superposition_boundary ----------------------------------------------------------------------

def boundary_inputs(g: torch.Generator) -> dict:
    cases = {f"r < 1 #{k}": {"args": [round(uniform(g, 0.1, 0.9), 4)]} for k in range(3)}
    cases.update({f"r > 1 #{k}": {"args": [round(uniform(g, 1.1, 10.0), 4)]} for k in range(3)})
    cases["small r"] = {"args": [round(uniform(g, 0.01, 0.1), 4)]}
    cases["large r"] = {"args": [round(uniform(g, 10.0, 50.0), 4)]}
    return cases


SUPERPOSITION_BOUNDARY = Exercise(
    name="superposition_boundary", points=1, inputs=boundary_inputs, reference=phase.superposition_boundary,
    answers=("utils.phase.superposition_boundary",), atol=1e-9, rtol=1e-7,
    wrong=(
        Wrong("boundary_in_s", "you returned the boundary in S; the function returns the feature probability 1 - S.",
              lambda r: 1 - phase.superposition_boundary(r)),
        Wrong("no_bias", "your boundary is what a dedicated solution with b = 0 gives (2r / (1 + r) for r <= 1). The "
              "dropped feature's optimal bias outputs its mean p/2, so it costs its variance p/3 - p^2/4; solve again "
              "with that.", lambda r: 2 * min(r, 1) / (1 + r)),
        Wrong("dedicated_1_always", "for r > 1 feature 2 is the more important one, so the best dedicated solution "
              "keeps feature 2 (dedicated_2). Superposition must beat the BEST dedicated solution: for r > 1 solve "
              "dedicated_2 = superposed (or swap the roles of the features).", lambda r: 4 * r / (2 + 5 * r)),
        Wrong("dedicated_2_always", "for r < 1 you compared superposition with dedicated_2, but feature 1 is the more "
              "important one, so the best dedicated solution is dedicated_1: for r <= 1 solve dedicated_1 = "
              "superposed.", lambda r: 4 / (2 * r + 5)),
    ),
    hints={**{f"r > 1 #{k}": "For r > 1 the best dedicated solution is dedicated_2 (feature 2 is the more important "
                             "one)." for k in range(3)},
           "large r": "For r > 1 the best dedicated solution is dedicated_2 (feature 2 is the more important one)."},
    spec="Set the BEST dedicated loss equal to the superposed loss and solve for p = 1 - S (for r <= 1: "
         "r/2 (p/3 - p^2/4) = (1 + r) p^2 / 12); return it as a float.",
    passed="superposition_boundary: both sides of r = 1, small and large r",
)

EXERCISES = [CLASSIFY_REGIME, CANDIDATE_LOSSES, SUPERPOSITION_BOUNDARY]
