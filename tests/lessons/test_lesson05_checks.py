"""Lesson 05's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import pytest
import torch

from utils import sycophancy as syc
from utils.checks import CheckFailed
from utils.checks import lesson05 as checks


@pytest.mark.parametrize("wrong, words", [
    (lambda W, i: W[i], "row"),
    (lambda W, i: W[:, i], "normalise"),
])
def test_feature_direction_names_misconceptions(wrong, words):
    checks.check_feature_direction(syc.feature_direction)
    with pytest.raises(CheckFailed, match=words):
        checks.check_feature_direction(wrong)


@pytest.mark.parametrize("wrong, words", [
    (lambda h, d: h - d, "subtracted the direction itself"),
    (lambda h, d: h - (h @ d)[:, None] * d, "not normalised"),
])
def test_ablate_direction_names_misconceptions(wrong, words):
    checks.check_ablate_direction(syc.ablate_direction)
    with pytest.raises(CheckFailed, match=words):
        checks.check_ablate_direction(wrong)


def damage_after_only(W, b, x, d):
    return ((x - syc.reconstruct(W, b, syc.ablate_direction(x @ W.T, d))) ** 2).mean(dim=0)


@pytest.mark.parametrize("wrong, words", [
    (damage_after_only, "INCREASE"),
    (lambda W, b, x, d: -syc.collateral_damage(W, b, x, d), "sign"),
])
def test_collateral_damage_names_misconceptions(wrong, words):
    checks.check_collateral_damage(syc.collateral_damage)
    with pytest.raises(CheckFailed, match=words):
        checks.check_collateral_damage(wrong)


def steer_not_unit(W, b, x, d, alpha):
    h = x @ W.T
    return (syc.reconstruct(W, b, h + alpha * d) - syc.reconstruct(W, b, h)).mean(dim=0)


@pytest.mark.parametrize("wrong, words", [
    (steer_not_unit, "UNIT"),
    (lambda W, b, x, d, a: syc.reconstruct(W, b, x @ W.T + a * d / d.norm()).mean(dim=0), "CHANGE"),
])
def test_steering_effect_names_misconceptions(wrong, words):
    checks.check_steering_effect(syc.steering_effect)
    with pytest.raises(CheckFailed, match=words):
        checks.check_steering_effect(wrong)


def test_correlated_features_keep_their_marginals_and_correlations():
    x = syc.correlated_features(100_000, 2, torch.Generator().manual_seed(0))
    active = (x > 0).float().flatten(0, 1)
    assert torch.allclose(active.mean(0), syc.ACTIVE, atol=0.01)
    corr = torch.corrcoef(active.T)
    agree, conf, sentiment = (syc.index(n) for n in ("agreement_with_user", "confidence", "user_sentiment_positive"))
    assert corr[agree, conf] < -0.1 and corr[agree, sentiment] > 0.3
    with pytest.raises(ValueError, match="unknown feature"):
        syc.index("sycophancy")
