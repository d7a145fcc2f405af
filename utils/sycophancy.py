"""A toy model of sycophancy-related features in superposition (introduced in lesson 05, reused in 06).

An illustration of the mechanism, not a claim about how real language models encode sycophancy:
eight named features with their own sparsities and importances, and correlations between them
(confidence goes with being correct; agreeing with the user goes with low confidence and with a
positive user, who brings politeness), squeezed into fewer hidden dimensions than features.
Then the interventions that remove a feature, compared over training seeds (`compare_interventions`):
the two-sided projection, the one-sided (sign-aware) projection, and (lesson 06) SAE latent ablation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from utils.model import ToyModel
from utils.training import train

if TYPE_CHECKING:
    from utils.sae import SparseAutoencoder

FEATURES = ("user_sentiment_positive", "factual_correctness", "agreement_with_user", "confidence",
            "politeness", "hedging", "topic_science", "topic_politics")
# Probability each feature is active (1 - S), and how much its reconstruction matters.
ACTIVE = torch.tensor([0.30, 0.20, 0.15, 0.20, 0.40, 0.10, 0.05, 0.05])
IMPORTANCE = torch.tensor([0.6, 1.0, 0.8, 0.9, 0.4, 0.5, 0.3, 0.3])
# Conditional activation: P(feature active | driver active) and P(feature active | driver inactive),
# chosen so that each feature keeps its marginal probability ACTIVE.
# Applied in this order (a driver is drawn before the features it drives). A conditional probability
# below the feature's marginal makes the pair anti-correlated: the model agrees with the user mostly
# when it is not confident, which is exactly what lets it store the two in one dimension.
DEPENDENCIES = {  # feature: (driver, P(feature active | driver active))
    "confidence": ("factual_correctness", 0.60),
    "agreement_with_user": ("confidence", 0.02),
    "user_sentiment_positive": ("agreement_with_user", 0.80),
    "politeness": ("user_sentiment_positive", 0.70),
}


def index(name: str) -> int:
    """Position of a named feature; raises with the list of names when unknown."""
    if name not in FEATURES:
        raise ValueError(f"unknown feature {name!r}; the features are {', '.join(FEATURES)}.")
    return FEATURES.index(name)


def correlated_features(batch_size: int, n_instances: int, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """(batch_size, n_instances, 8) features: active with the probabilities and dependencies above,
    uniform in [0, 1) when active."""
    shape = (batch_size, n_instances)
    u = torch.rand((*shape, len(FEATURES)), generator=generator, device=device)
    active = u < ACTIVE.to(device)
    for name, (driver, p_on) in DEPENDENCIES.items():
        i, d = index(name), index(driver)
        p_driver, p_feature = ACTIVE[d].item(), ACTIVE[i].item()
        p_off = (p_feature - p_driver * p_on) / (1 - p_driver)  # keeps the marginal at ACTIVE[i]
        active[..., i] = u[..., i] < torch.where(active[..., d], torch.tensor(p_on, device=device),
                                                 torch.tensor(p_off, device=device))
    values = torch.rand((*shape, len(FEATURES)), generator=generator, device=device)
    return values * active


class SycophancyModel(ToyModel):
    """The toy model on the correlated named features; only the data differs from ToyModel."""

    def __init__(self, n_hidden: int, n_instances: int = 1, *, device: str | torch.device | None = None,
                 seed: int = 0) -> None:
        super().__init__(len(FEATURES), n_hidden, n_instances, sparsity=(1 - ACTIVE).expand(n_instances, -1), importance=IMPORTANCE,
                         device=device, seed=seed)

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return correlated_features(batch_size, self.n_instances, generator, self.W.device)


def feature_direction(W: torch.Tensor, feature: int) -> torch.Tensor:
    """Unit vector of a feature in hidden space: W (n_hidden, n_features) -> (n_hidden,)."""
    return W[:, feature] / W[:, feature].norm()


def ablate_direction(h: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Remove the component of hidden activations h (batch, n_hidden) along direction (n_hidden,)."""
    d = direction / direction.norm()
    return h - (h @ d)[:, None] * d


def ablate_one_sided(h: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Remove only the positive part of each row's projection: h - ReLU(h . d_hat) d_hat; (batch, n_hidden).

    The answer to lesson 05's `ablate_one_sided`. Features are non-negative, so a feature written along +d
    only ever pushes h that way; a feature on the opposite half-line (an antipodal partner) is left alone.
    """
    d = direction / direction.norm()
    return h - torch.relu(h @ d)[:, None] * d


def reconstruct(W: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The toy model's read-out ReLU(W^T h + b): h (batch, n_hidden) -> (batch, n_features)."""
    return torch.relu(h @ W + b)


def readout_damage(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, h_edited: torch.Tensor) -> torch.Tensor:
    """Per-feature increase in mean squared reconstruction error when h = W x is replaced by h_edited: (n_features,).

    W (n_hidden, n_features), b (n_features,), x (batch, n_features), h_edited (batch, n_hidden).
    """
    clean = ((x - reconstruct(W, b, x @ W.T)) ** 2).mean(dim=0)
    return ((x - reconstruct(W, b, h_edited)) ** 2).mean(dim=0) - clean


def collateral_damage(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Per-feature increase in mean squared reconstruction error when `direction` is ablated: (n_features,)."""
    return readout_damage(W, b, x, ablate_direction(x @ W.T, direction))


def steering_effect(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, direction: torch.Tensor,
                    alpha: float) -> torch.Tensor:
    """Change in each feature's mean output when alpha * unit(direction) is added to h: (n_features,)."""
    h = x @ W.T
    d = direction / direction.norm()
    return (reconstruct(W, b, h + alpha * d) - reconstruct(W, b, h)).mean(dim=0)


def train_models(n_hidden: int, n_seeds: int = 8, *, steps: int = 3000, batch_size: int = 512, lr: float = 5e-3,
                 seed: int = 0) -> SycophancyModel:
    """Lesson 05's recipe: `n_seeds` SycophancyModels with `n_hidden` dimensions, trained at once (one per instance)."""
    models = SycophancyModel(n_hidden, n_instances=n_seeds, seed=seed)
    train(models, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=False)
    return models


def antipodal_partner(W: torch.Tensor, feature: int, min_norm: float = 0.5) -> tuple[int | None, float]:
    """The represented feature whose direction is most opposite to `feature`'s, and that cosine.

    W: (n_hidden, n_features). A feature counts as represented when its column has norm > min_norm (in
    lesson 05's 3-dimensional models every other column has norm below 0.05). Returns (None, nan) when `feature` itself is not
    represented. Which feature pairs with which depends on the training seed: measure it, per model.
    """
    norms = W.norm(dim=0)
    if norms[feature] <= min_norm:
        return None, math.nan
    cos = (W / norms.clamp_min(1e-12)).T @ (W[:, feature] / norms[feature])
    cos[norms <= min_norm] = math.inf
    cos[feature] = math.inf
    partner = int(cos.argmin())
    return partner, float(cos[partner])


def compare_interventions(models: ToyModel, x: torch.Tensor, feature: str = "agreement_with_user", *,
                          sae: SparseAutoencoder | None = None, min_correlation: float = 0.5,
                          min_norm: float = 0.5) -> list[dict]:
    """Remove one feature from every instance (seed) of `models` in several ways; what each removes and breaks.

    models: a trained SycophancyModel (or ToyModel on the same 8 features), one seed per instance, e.g.
        from `train_models`. x: (batch, n_features) held-out inputs, shared by all seeds.
    sae: optional (lesson 06) SparseAutoencoder on the models' hidden activations, with n_instances equal to
        models.n_instances (SAE k reads model k). Adds the row "SAE latents": the latents whose activation
        correlates with the feature above min_correlation (`utils.sae.latents_for_feature`) are ablated
        (`utils.sae.ablate_latents`). Without it, only the two projections (lesson 05).

    Returns one row per (seed, method), methods "two-sided projection" (h - (h.d) d), "one-sided projection"
    (h - ReLU(h.d) d), then "SAE latents", with d the unit column of W for the feature:
        seed (instance index), method, partner (name of `antipodal_partner`, None when the feature is not
        represented in that seed), partner_cosine, damage ((n_features,) increase in squared error per
        feature, `readout_damage`), removal (damage to the feature / the damage of zeroing its output:
        1 = its whole reconstruction removed; nan when not represented), partner_damage, collateral (summed
        damage to every other feature), latents (the SAE latents ablated; [] for the projections).
    """
    target = index(feature)
    if sae is not None and sae.n_instances != models.n_instances:
        raise ValueError(f"the SAE has {sae.n_instances} instances and the models {models.n_instances}: pass one "
                         "SAE per seed (SAE k reads model k), e.g. trained with utils.sae.train_sae(sae, models).")
    x = x.to(models.W.device)
    rows = []
    for k in range(models.n_instances):
        W, b = models.W.detach()[k], models.b_final.detach()[k]
        partner, partner_cosine = antipodal_partner(W, target, min_norm)
        h = x @ W.T
        d = feature_direction(W, target)
        edits = {"two-sided projection": (ablate_direction(h, d), []),
                 "one-sided projection": (ablate_one_sided(h, d), [])}
        if sae is not None:
            from utils.sae import ablate_latents, latents_for_feature  # lesson 06's library, needed only here
            with torch.no_grad():
                z = sae.encode(h[:, None, :].expand(-1, sae.n_instances, -1))[:, k]
            latents = latents_for_feature(z, x[:, target], min_correlation)
            edits["SAE latents"] = (ablate_latents(h, z, sae.W_dec.detach()[k], latents), latents)
        zeroed = ((x[:, target] ** 2).mean() - ((x - reconstruct(W, b, h))[:, target] ** 2).mean()).item()
        for method, (h_edited, latents) in edits.items():
            damage = readout_damage(W, b, x, h_edited).cpu()
            rows.append({"seed": k, "method": method, "partner": None if partner is None else FEATURES[partner],
                         "partner_cosine": partner_cosine, "damage": damage,
                         "removal": math.nan if partner is None else damage[target].item() / zeroed,
                         "partner_damage": math.nan if partner is None else damage[partner].item(),
                         "collateral": (damage.sum() - damage[target]).item(), "latents": latents})
    return rows


def summarize_interventions(rows: list[dict]) -> str:
    """One line per method: removal and collateral damage as mean ± std [min, max] over the seeds in which the
    feature is represented (rows from `compare_interventions`), and how many seeds were left out."""
    lines = []
    for method in dict.fromkeys(row["method"] for row in rows):
        kept = [row for row in rows if row["method"] == method and row["partner"] is not None]
        left_out = sum(row["method"] == method for row in rows) - len(kept)
        stats = []
        for key in ("removal", "partner_damage", "collateral"):
            v = torch.tensor([row[key] for row in kept])
            std = v.std().item() if len(v) > 1 else 0.0
            stats.append(f"{key} {v.mean():.4f} ± {std:.4f} [{v.min():.4f}, {v.max():.4f}]")
        lines.append(f"{method:21} over {len(kept)} seeds: " + ", ".join(stats)
                     + (f" ({left_out} seed(s) without the feature left out)" if left_out else ""))
    return "\n".join(lines)
