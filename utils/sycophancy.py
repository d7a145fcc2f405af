"""A toy model of sycophancy-related features in superposition (introduced in lesson 05, reused in 06).

An illustration of the mechanism, not a claim about how real language models encode sycophancy:
eight named features with their own sparsities and importances, and correlations between them
(confidence goes with being correct; agreeing with the user goes with low confidence and with a
positive user, who brings politeness), squeezed into fewer hidden dimensions than features.
"""

from __future__ import annotations

import torch

from utils.model import ToyModel

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
