"""The n=2, m=1 phase diagram: candidate solutions, their losses and the regime a trained W is in (lesson 03).

Two features with importances (1, r) share one hidden dimension; each is active with probability
p = 1 - S and then uniform in [0, 1). The loss is the paper's (and utils.ToyModel's): the mean over the
two features of importance * squared error. Three solutions compete:
  dedicated_1: W = [1, 0], b = [0, p/2]  (feature 2 dropped; its output is its mean)   r/2 * (p/3 - p^2/4)
  dedicated_2: W = [0, 1], b = [p/2, 0]                                              1/2 * (p/3 - p^2/4)
  superposed:  W = [1, -1], b = [0, 0]   (an antipodal pair; errors only when both are on) (1 + r) p^2 / 12
For r <= 1 superposition beats dedicating a dimension to feature 1 when p < 4r / (2 + 5r).
"""

from __future__ import annotations

import torch

REGIMES = ("not represented", "dedicated", "superposed")


def candidate_losses(r: float, feature_probability: float) -> dict[str, float]:
    p = feature_probability
    dropped = p / 3 - p * p / 4  # variance of a feature that is active with probability p
    return {"dedicated_1": r / 2 * dropped, "dedicated_2": dropped / 2, "superposed": (1 + r) * p * p / 12}


def candidate_weights(name: str, feature_probability: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (1, 2), b (2,)) of a candidate solution, to load into a ToyModel(2, 1)."""
    p = feature_probability
    return {"dedicated_1": (torch.tensor([[1.0, 0.0]]), torch.tensor([0.0, p / 2])),
            "dedicated_2": (torch.tensor([[0.0, 1.0]]), torch.tensor([p / 2, 0.0])),
            "superposed": (torch.tensor([[1.0, -1.0]]), torch.tensor([0.0, 0.0]))}[name]


def superposition_boundary(r: float) -> float:
    """The 1 - S below which superposition wins, for relative importance r of the second feature."""
    return 4 * r / (2 + 5 * r) if r <= 1 else 4 / (2 * r + 5)


def classify_regime(W: torch.Tensor, threshold: float = 0.5) -> list[str]:
    """W (n_instances, 1, 2) -> per instance: "not represented", "dedicated" or "superposed"."""
    represented = (W[:, 0, :].abs() > threshold).sum(dim=1)
    return [REGIMES[int(k)] for k in represented]
