"""Visible checks for lesson 03 (importance vs sparsity). Each exercise: probe_*, judge_*, check_*."""

from __future__ import annotations

import torch

from utils import phase
from utils.checks import Plain, as_tensor, call_learner, fail, run_check
from utils.device import make_generator


def _generator(seed: int) -> torch.Generator:
    return make_generator(3000 + seed, torch.device("cpu"))


# --- classify_regime -----------------------------------------------------------------------------

def _regime_inputs(seed: int) -> torch.Tensor:
    """W (n_instances, 1, 2) covering every regime, with signs and magnitudes that trip shortcuts."""
    g = _generator(seed)
    big = lambda: 0.8 + 0.5 * torch.rand((), generator=g)  # noqa: E731
    small = lambda: 0.3 * torch.rand((), generator=g)  # noqa: E731
    rows = [[big(), -big()], [-big(), big()], [big(), big()], [big(), small()], [-small(), -big()],
            [small(), small()], [0.4, 0.4], [-big(), 0.0]]
    order = torch.randperm(len(rows), generator=g)
    return torch.tensor([[float(a), float(b)] for a, b in rows])[order][:, None, :]


def probe_classify_regime(classify_regime, seed: int) -> Plain:
    labels = call_learner(classify_regime, _regime_inputs(seed).clone())
    return {"labels": [str(label) for label in labels] if isinstance(labels, (list, tuple)) else [],
            "type": type(labels).__name__}


def judge_classify_regime(data: Plain, seed: int) -> str:
    W = _regime_inputs(seed)
    want = phase.classify_regime(W)
    got = data["labels"]
    if data["type"] not in ("list", "tuple"):
        fail(f"classify_regime should return a list of strings, one per instance; got a {data['type']}.")
    if len(got) == 1 and len(want) > 1:
        fail("one label for all instances: W is (n_instances, 1, 2); classify each instance W[k, 0, :].")
    if len(got) != len(want):
        fail(f"expected {len(want)} labels (one per instance), got {len(got)}. Is W transposed?")
    unknown = sorted(set(got) - set(phase.REGIMES))
    if unknown:
        fail(f"unknown labels {unknown}: use exactly {', '.join(map(repr, phase.REGIMES))}.")
    total = W[:, 0, :].abs().sum(dim=1)
    for k, (g_label, w_label) in enumerate(zip(got, want)):
        if g_label == w_label:
            continue
        w = W[k, 0].tolist()
        if w_label == "superposed" and w[0] * w[1] > 0:
            fail(f"W = {w} has two represented features: that is superposition even with the same sign (both "
                 "share the single dimension); the sign only decides whether they are an antipodal pair.")
        if (total[k] > 0.5) and w_label == "not represented":
            fail(f"W = {w}: neither |W_i| exceeds 0.5, so no feature is represented. Judge each feature's "
                 "norm |W_i|, not the sum over features.")
        fail(f"W = {w} is {w_label!r}, you said {g_label!r}. A feature is represented when |W_i| > threshold; "
             "none: not represented; one: dedicated; two sharing the dimension: superposed.")
    return "classify_regime: every regime, whatever the signs"


def check_classify_regime(classify_regime, seed: int = 0) -> None:
    run_check(probe_classify_regime, judge_classify_regime, classify_regime, seed)


# --- candidate_losses ----------------------------------------------------------------------------

def _loss_cases(seed: int) -> list[tuple[float, float]]:
    g = _generator(seed)
    return [(0.5, 0.1), (1.0, 0.4)] + [(float(r), float(p)) for r, p in
                                      zip(0.1 + 0.9 * torch.rand(3, generator=g), 0.02 + 0.9 * torch.rand(3, generator=g))]


def probe_candidate_losses(candidate_losses, seed: int) -> Plain:
    results = []
    for r, p in _loss_cases(seed):
        got = call_learner(candidate_losses, r, p)
        if not isinstance(got, dict):
            return {"type": type(got).__name__, "results": []}
        results.append({k: float(v) for k, v in got.items() if k in ("dedicated_1", "dedicated_2", "superposed")})
    return {"type": "dict", "results": results}


def judge_candidate_losses(data: Plain, seed: int) -> str:
    if data["type"] != "dict":
        fail(f"candidate_losses should return a dict with keys dedicated_1, dedicated_2, superposed; got {data['type']}.")
    for (r, p), got in zip(_loss_cases(seed), data["results"], strict=True):
        want = phase.candidate_losses(r, p)
        missing = sorted(set(want) - set(got))
        if missing:
            fail(f"missing keys: {', '.join(missing)}.")
        for key, value in want.items():
            if abs(got[key] - value) <= 1e-7:
                continue
            swapped = phase.candidate_losses(r, 1 - p)[key]
            if abs(got[key] - swapped) <= 1e-7:
                fail(f"{key}: you used S where the feature probability 1 - S belongs (p = {p:.3f} here is "
                     "already the probability of being active).")
            if key == "superposed" and abs(got[key] - (1 + r) * p / 12) <= 1e-7:
                fail("superposed: the antipodal pair only errs when BOTH features are active, probability p^2, "
                     "not p.")
            if key == "superposed" and abs(got[key] - 2 * p * p / 12) <= 1e-7 and r != 1:
                fail("superposed: weight each feature's error by its importance (1 and r).")
            if key != "superposed" and abs(got[key] - (r if key == "dedicated_1" else 1) * p / 6) <= 1e-7:
                fail(f"{key}: the dropped feature's output is its mean p/2 (the optimal bias), so it costs its "
                     "variance p/3 - p^2/4, not its second moment p/3.")
            if key != "superposed" and abs(got[key] - 2 * value) <= 1e-7:
                fail(f"{key}: the loss averages over the 2 features: divide the summed error by 2.")
            fail(f"{key} for r={r:.3f}, 1-S={p:.3f}: {got[key]:.6f}, expected {value:.6f} (a simulation with "
                 "utils.ToyModel agrees with the expected value).")
    return "candidate_losses: all three candidates match the closed form (checked against simulation in the tests)"


def check_candidate_losses(candidate_losses, seed: int = 0) -> None:
    run_check(probe_candidate_losses, judge_candidate_losses, candidate_losses, seed)


# --- superposition_boundary ----------------------------------------------------------------------

def probe_superposition_boundary(superposition_boundary, seed: int) -> Plain:
    rs = (0.1 + 0.9 * torch.rand(5, generator=_generator(seed))).tolist()
    return {"values": as_tensor([float(call_learner(superposition_boundary, r)) for r in rs], "boundary")}


def judge_superposition_boundary(data: Plain, seed: int) -> str:
    rs = (0.1 + 0.9 * torch.rand(5, generator=_generator(seed))).tolist()
    want = torch.tensor([phase.superposition_boundary(r) for r in rs])
    got = data["values"]
    if torch.allclose(got, 1 - want, atol=1e-6):
        fail("you returned the boundary in S; the question asks for the feature probability 1 - S.")
    if not torch.allclose(got, want, atol=1e-6):
        fail("set the dedicated_1 and superposed losses equal and solve for p: expected 4r / (2 + 5r).")
    return "superposition_boundary: 4r / (2 + 5r)"


def check_superposition_boundary(superposition_boundary, seed: int = 0) -> None:
    run_check(probe_superposition_boundary, judge_superposition_boundary, superposition_boundary, seed)


EXERCISES = {
    "test_classify_regime": ("classify_regime", probe_classify_regime, judge_classify_regime),
    "test_candidate_losses": ("candidate_losses", probe_candidate_losses, judge_candidate_losses),
    "test_superposition_boundary": ("superposition_boundary", probe_superposition_boundary,
                                    judge_superposition_boundary),
}
