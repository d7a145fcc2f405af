"""Visible checks for lesson 05 (the sycophancy link). Each exercise: probe_*, judge_*, check_*."""

from __future__ import annotations

import torch

from utils import sycophancy as syc
from utils.checks import Plain, as_tensor, call_learner, close, expect_shape, fail, make_check
from utils.device import make_generator


def _inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded W (3, 8) with unequal column norms, a negative bias and correlated features x (256, 8)."""
    g = make_generator(5000 + seed, torch.device("cpu"))
    W = torch.randn(3, len(syc.FEATURES), generator=g) * (0.5 + torch.rand(len(syc.FEATURES), generator=g))
    b = -0.1 - 0.2 * torch.rand(len(syc.FEATURES), generator=g)
    x = syc.correlated_features(256, 1, g)[:, 0]
    return W, b, x


# --- feature_direction ---------------------------------------------------------------------------

def probe_feature_direction(feature_direction, seed: int) -> Plain:
    W, _, _ = _inputs(seed)
    return {"d": [as_tensor(call_learner(feature_direction, W.clone(), i), "feature_direction(W, i)")
                  for i in (syc.index("agreement_with_user"), seed % len(syc.FEATURES))]}


def judge_feature_direction(data: Plain, seed: int) -> str:
    W, _, _ = _inputs(seed)
    for got, i in zip(data["d"], (syc.index("agreement_with_user"), seed % len(syc.FEATURES)), strict=True):
        if tuple(got.shape) == (W.shape[1],):
            fail(f"got {W.shape[1]} numbers, one per feature: that is row {i} of W. A feature's direction in "
                 "hidden space is column i, W[:, i], with n_hidden entries.")
        expect_shape(got, (W.shape[0],), "feature_direction(W, i)", "One entry per hidden dimension.")
        if close(got, W[:, i], atol=1e-5):
            fail("normalise the direction: divide W[:, i] by its norm, so that projections measure cosines.")
        if not close(got, syc.feature_direction(W, i), atol=1e-5):
            fail("expected W[:, i] / ||W[:, i]||.")
    return "feature_direction: the unit column of W"


check_feature_direction = make_check(probe_feature_direction, judge_feature_direction)


# --- ablate_direction ----------------------------------------------------------------------------

def probe_ablate_direction(ablate_direction, seed: int) -> Plain:
    W, _, x = _inputs(seed)
    h, direction = x @ W.T, W[:, syc.index("agreement_with_user")]  # deliberately not unit length
    return {"h": as_tensor(call_learner(ablate_direction, h.clone(), direction.clone()), "ablate_direction(h, d)")}


def judge_ablate_direction(data: Plain, seed: int) -> str:
    W, _, x = _inputs(seed)
    h, direction = x @ W.T, W[:, syc.index("agreement_with_user")]
    got, want = data["h"], syc.ablate_direction(h, direction)
    expect_shape(got, tuple(h.shape), "ablate_direction(h, direction)", "Same shape as h (batch, n_hidden).")
    if close(got, h - direction, atol=1e-5):
        fail("you subtracted the direction itself; ablation subtracts each row's projection onto it, "
             "(h . d_hat) d_hat, so the result has no component along d.")
    if close(got, h - (h @ direction)[:, None] * direction, atol=1e-4):
        fail("the direction was not normalised: with d of norm != 1, h - (h . d) d does not remove the "
             "component; use d_hat = d / ||d||.")
    residual = got @ (direction / direction.norm())
    if residual.abs().max() > 1e-4:
        fail(f"after ablation the hidden activations still have a component along the direction "
             f"(up to {residual.abs().max():.3f}); project each row (batch axis first) onto d_hat and subtract.")
    if not close(got, want, atol=1e-4):
        fail("the ablated activations should be h - (h @ d_hat)[:, None] * d_hat: only the component along d changes.")
    return "ablate_direction: removes exactly the component along the (normalised) direction"


check_ablate_direction = make_check(probe_ablate_direction, judge_ablate_direction)


# --- collateral_damage ---------------------------------------------------------------------------

def probe_collateral_damage(collateral_damage, seed: int) -> Plain:
    W, b, x = _inputs(seed)
    d = syc.feature_direction(W, syc.index("agreement_with_user"))
    return {"damage": as_tensor(call_learner(collateral_damage, W.clone(), b.clone(), x.clone(), d.clone()),
                                "collateral_damage(W, b, x, direction)")}


def judge_collateral_damage(data: Plain, seed: int) -> str:
    W, b, x = _inputs(seed)
    d = syc.feature_direction(W, syc.index("agreement_with_user"))
    got, want = data["damage"], syc.collateral_damage(W, b, x, d)
    expect_shape(got, tuple(want.shape), "collateral_damage(...)", "One number per feature: (n_features,).")
    h = x @ W.T
    ablated = ((x - syc.reconstruct(W, b, syc.ablate_direction(h, d))) ** 2).mean(dim=0)
    if close(got, ablated, atol=1e-5):
        fail("that is the error after ablation; the damage is the INCREASE: subtract the clean model's error.")
    if close(got, -want, atol=1e-5):
        fail("the sign is flipped: damage = error after ablation - error before.")
    no_relu = ((x - (syc.ablate_direction(h, d) @ W + b)) ** 2).mean(dim=0) - ((x - (h @ W + b)) ** 2).mean(dim=0)
    if close(got, no_relu, atol=1e-5):
        fail("the read-out is ReLU(W^T h + b): you left out the ReLU.")
    if not close(got, want, atol=1e-5):
        fail("per feature i: mean over the batch of (x_i - x_hat_i)^2 with the direction ablated, minus the "
             "same without ablation; x_hat = ReLU(W^T h + b), h = W x.")
    return "collateral_damage: per-feature increase in squared error, with the ReLU read-out"


check_collateral_damage = make_check(probe_collateral_damage, judge_collateral_damage)


# --- steering_effect -----------------------------------------------------------------------------

ALPHAS = (0.5, 1.0, -1.0)


def probe_steering_effect(steering_effect, seed: int) -> Plain:
    W, b, x = _inputs(seed)
    d = W[:, syc.index("agreement_with_user")]  # not unit length: steering is by alpha * d_hat
    return {"effects": [as_tensor(call_learner(steering_effect, W.clone(), b.clone(), x.clone(), d.clone(), alpha),
                                  "steering_effect(...)") for alpha in ALPHAS]}


def judge_steering_effect(data: Plain, seed: int) -> str:
    W, b, x = _inputs(seed)
    d = W[:, syc.index("agreement_with_user")]
    for got, alpha in zip(data["effects"], ALPHAS, strict=True):
        want = syc.steering_effect(W, b, x, d, alpha)
        expect_shape(got, tuple(want.shape), "steering_effect(...)", "The change of each feature's mean output.")
        h = x @ W.T
        unnormalised = (syc.reconstruct(W, b, h + alpha * d) - syc.reconstruct(W, b, h)).mean(dim=0)
        if close(got, unnormalised, atol=1e-5) and abs(d.norm() - 1) > 1e-3:
            fail("steer by alpha times the UNIT direction, so that alpha means the same for every feature.")
        if close(got, syc.reconstruct(W, b, h + alpha * d / d.norm()).mean(dim=0), atol=1e-5):
            fail("return the CHANGE of the mean output (steered minus unsteered), not the steered output.")
        if not close(got, want, atol=1e-5):
            fail(f"for alpha = {alpha}: add alpha * d_hat to every hidden vector h = W x, read out with "
                 "ReLU(W^T h + b), and return the mean over the batch of steered minus unsteered outputs.")
    return "steering_effect: mean output change for positive and negative alpha"


check_steering_effect = make_check(probe_steering_effect, judge_steering_effect)


EXERCISES = {
    "test_feature_direction": ("feature_direction", probe_feature_direction, judge_feature_direction),
    "test_ablate_direction": ("ablate_direction", probe_ablate_direction, judge_ablate_direction),
    "test_collateral_damage": ("collateral_damage", probe_collateral_damage, judge_collateral_damage),
    "test_steering_effect": ("steering_effect", probe_steering_effect, judge_steering_effect),
}
