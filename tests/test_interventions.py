"""utils.sycophancy's interventions (lesson 05, reused in 06): the two-sided and the one-sided (sign-aware) projection,
the SAE latent ablation, and the per-seed comparison, on hand-built models whose geometry is known exactly.

Lesson 05 once concluded that "superposition, not the ablation method, is the problem"; on an antipodal pair the
one-sided projection removes the feature with no collateral damage, which these tests pin down. The trained seeds
(removal, partners, the 2-dimensional model) are asserted in the lesson notebook itself, which the suite runs.
"""

import math

import pytest
import torch

from utils import sycophancy as syc
from utils.sae import SparseAutoencoder

AGREE, CONF, FACT, HEDGE, POLITE = (syc.index(n) for n in ("agreement_with_user", "confidence", "factual_correctness",
                                                          "hedging", "politeness"))


def hand_built(partners: list[int | None], n_hidden: int = 3) -> syc.SycophancyModel:
    """One instance per entry: agreement along e1, the partner along -e1 (None: agreement barely written, 0.01 e1),
    factual_correctness along e2 (or hedging, when it is not the partner), everything else unwritten; bias 0."""
    model = syc.SycophancyModel(n_hidden, n_instances=len(partners))
    W = torch.zeros(len(partners), n_hidden, len(syc.FEATURES))
    for k, partner in enumerate(partners):
        W[k, 0, AGREE] = 1.0 if partner is not None else 0.01
        if partner is not None:
            W[k, 0, partner] = -1.0
        W[k, 1, FACT if partner != FACT else HEDGE] = 1.0
    with torch.no_grad():
        model.W.copy_(W)
        model.b_final.zero_()
    return model


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return syc.correlated_features(4000, 1, torch.Generator().manual_seed(0))[:, 0]


def test_the_one_sided_projection_removes_only_the_positive_part():
    h = torch.tensor([[2.0, 1.0], [-3.0, 1.0], [0.0, 5.0]])
    d = torch.tensor([2.0, 0.0])  # not unit length
    assert torch.equal(syc.ablate_one_sided(h, d), torch.tensor([[0.0, 1.0], [-3.0, 1.0], [0.0, 5.0]]))
    assert torch.equal(syc.ablate_direction(h, d), torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 5.0]]))


def test_on_an_antipodal_pair_the_sign_aware_ablation_has_no_collateral_damage(x):
    """The old conclusion ('not the ablation method') fails here: same removal, the partner's damage drops to 0."""
    rows = {r["method"]: r for r in syc.compare_interventions(hand_built([CONF]), x)}
    two, one = rows["two-sided projection"], rows["one-sided projection"]
    assert one["partner"] == two["partner"] == "confidence" and two["partner_cosine"] == pytest.approx(-1)
    assert two["removal"] == pytest.approx(1, abs=1e-6) and one["removal"] == pytest.approx(1, abs=1e-6)
    assert two["partner_damage"] > 0.05                       # E[x_conf^2] = 0.2 / 3: confidence wiped out
    assert abs(one["partner_damage"]) < 1e-7 and abs(one["collateral"]) < 1e-7
    assert one["latents"] == [] and one["damage"].shape == (len(syc.FEATURES),)


def test_the_partner_is_measured_per_seed_and_a_seed_without_the_feature_is_left_out(x):
    rows = syc.compare_interventions(hand_built([CONF, FACT, None]), x)
    assert [(r["seed"], r["partner"]) for r in rows if r["method"] == "two-sided projection"] == [
        (0, "confidence"), (1, "factual_correctness"), (2, None)]
    assert math.isnan(rows[-1]["removal"]) and math.isnan(rows[-1]["partner_damage"])
    summary = syc.summarize_interventions(rows)
    assert summary.count("over 2 seeds") == 2 and "1 seed(s) without the feature left out" in summary
    assert "removal 1.0000 ± 0.0000" in summary


def test_an_sae_latent_along_the_feature_ablates_like_the_one_sided_projection(x):
    """A non-negative latent z = ReLU(h . d) with decoder row d is exactly the sign-aware projection."""
    models = hand_built([CONF, FACT])
    sae = SparseAutoencoder(3, 2, n_instances=2)
    with torch.no_grad():
        for k in range(2):
            d = syc.feature_direction(models.W.detach()[k], AGREE)
            sae.W_enc[k, :, 0], sae.W_dec[k, 0] = d, d
        sae.b_enc[:, 1] = -100.0  # the second latent never fires
        sae.b_dec.zero_()
    rows = syc.compare_interventions(models, x, sae=sae)
    assert [r["method"] for r in rows[:3]] == ["two-sided projection", "one-sided projection", "SAE latents"]
    for k in range(2):
        one, through_sae = (r for r in rows if r["seed"] == k and r["method"] != "two-sided projection")
        assert through_sae["latents"] == [0]
        assert torch.allclose(through_sae["damage"], one["damage"], atol=1e-6)
    with pytest.raises(ValueError, match="one SAE per seed"):
        syc.compare_interventions(models, x, sae=SparseAutoencoder(3, 2, n_instances=1))


def test_a_feature_on_the_same_half_line_is_not_spared(x):
    """Politeness at 30 degrees from agreement (positive cosine): the one-sided projection takes part of it too;
    confidence at 150 degrees (negative cosine, rarely active with agreement) is spared."""
    model = syc.SycophancyModel(2)
    W = torch.zeros(1, 2, len(syc.FEATURES))
    W[0, :, AGREE] = torch.tensor([1.0, 0.0])
    W[0, :, POLITE] = torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)])
    W[0, :, CONF] = torch.tensor([math.cos(5 * math.pi / 6), math.sin(5 * math.pi / 6)])
    with torch.no_grad():
        model.W.copy_(W)
        model.b_final.fill_(-0.1)
    one = next(r for r in syc.compare_interventions(model, x) if r["method"] == "one-sided projection")
    assert one["damage"][POLITE] > 0.01 and abs(one["damage"][CONF]) < 2e-3


def test_the_partner_ignores_features_the_model_does_not_write():
    W = torch.zeros(2, len(syc.FEATURES))
    W[:, AGREE] = torch.tensor([1.0, 0.0])
    W[:, CONF] = torch.tensor([-0.3, 0.0])      # opposite, but norm 0.3: not represented
    W[:, HEDGE] = torch.tensor([-0.6, 0.8])      # the most opposite represented feature
    assert syc.antipodal_partner(W, AGREE) == (HEDGE, pytest.approx(-0.6))
    assert syc.antipodal_partner(W, CONF) == (None, pytest.approx(math.nan, nan_ok=True))
