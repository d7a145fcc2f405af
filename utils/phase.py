"""The n=2, m=1 phase diagram: candidate solutions, their losses, the boundary and the regime of a trained W.

Introduced in lesson 03. Two features with importances (1, r) share one hidden dimension; each is
active with probability p = 1 - S (`feature_probability`) and then uniform in [0, 1). The loss is the
paper's and utils.ToyModel's: the mean over the two features of importance * squared error. Three
candidate solutions compete (E[x] = p/2, E[x^2] = p/3, E[min(u, v)^2] = 1/6 for independent uniforms):

  dedicated_1: W = [1, 0],  b = [0, p/2]   feature 2 dropped; its output is its mean    r/2 * (p/3 - p^2/4)
  dedicated_2: W = [0, 1],  b = [p/2, 0]   feature 1 dropped                              1/2 * (p/3 - p^2/4)
  superposed:  W = [1, -1], b = [0, 0]     an antipodal pair; both outputs err by
                                           min(x1, x2), only when both are active        (1 + r) p^2 / 12

Superposition beats the best dedicated solution when p < 4r / (2 + 5r) for r <= 1, and by symmetry
p < 4 / (2r + 5) for r >= 1.
"""

from __future__ import annotations

import math

import torch

from utils.device import make_generator
from utils.model import ToyModel
from utils.training import evaluate_loss

#: The labels of classify_regime, in the order of their heatmap codes 0, 1, 2.
REGIMES = ("not represented", "dedicated", "superposed")
#: The three candidate solutions, the keys of candidate_losses.
CANDIDATES = ("dedicated_1", "dedicated_2", "superposed")


def _check_r_p(r: float, feature_probability: float) -> None:
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"r must be a positive number, got {r}: it is feature 2's importance relative to feature 1's.")
    if not (0 < feature_probability <= 1):
        raise ValueError(f"feature_probability must be in (0, 1], got {feature_probability}: it is 1 - S, the "
                         "probability that a feature is active (pass 0.05 for S = 0.95).")


def candidate_losses(r: float, feature_probability: float) -> dict[str, float]:
    """Expected loss of each candidate solution for importances (1, r) and 1 - S = feature_probability.

    Returns {"dedicated_1": ..., "dedicated_2": ..., "superposed": ...} (floats), see the module docstring.
    """
    _check_r_p(r, feature_probability)
    p = feature_probability
    dropped = p / 3 - p * p / 4  # the variance of a feature that is active with probability p
    return {"dedicated_1": r / 2 * dropped, "dedicated_2": dropped / 2, "superposed": (1 + r) * p * p / 12}


def candidate_weights(name: str, feature_probability: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (1, 2), b (2,)) of a candidate solution, to load into one instance of a ToyModel(2, 1)."""
    p = feature_probability
    weights = {"dedicated_1": ([[1.0, 0.0]], [0.0, p / 2]),
               "dedicated_2": ([[0.0, 1.0]], [p / 2, 0.0]),
               "superposed": ([[1.0, -1.0]], [0.0, 0.0])}
    if name not in weights:
        raise ValueError(f"unknown candidate {name!r}; the candidates are {', '.join(CANDIDATES)}.")
    W, b = weights[name]
    return torch.tensor(W), torch.tensor(b)


@torch.no_grad()
def simulate_candidates(
    cases: list[tuple[float, float]], batch_size: int = 2**18, seed: int = 12345
) -> list[dict[str, tuple[float, float]]]:
    """Monte Carlo check of candidate_losses: the candidates loaded by hand into one ToyModel(2, 1).

    cases: [(r, feature_probability), ...]. For each case returns {candidate: (mean loss, standard error)};
    the mean is utils.evaluate_loss on `batch_size` samples, the standard error comes from the
    per-sample losses of that same batch.
    """
    for r, p in cases:
        _check_r_p(r, p)
    names = [(k, name) for k in range(len(cases)) for name in CANDIDATES]
    p = torch.tensor([cases[k][1] for k, _ in names])
    importance = torch.tensor([[1.0, cases[k][0]] for k, _ in names])
    model = ToyModel(2, 1, len(names), sparsity=1 - p, importance=importance, device="cpu")
    for i, (k, name) in enumerate(names):
        model.W[i], model.b_final[i] = candidate_weights(name, cases[k][1])
    mean = evaluate_loss(model, batch_size=batch_size, seed=seed)
    x = model.generate_batch(batch_size, make_generator(seed, torch.device("cpu")))  # evaluate_loss's batch
    per_sample = (model.importance * (x - model(x)) ** 2).mean(dim=2)              # (batch, instances)
    stderr = per_sample.std(dim=0) / math.sqrt(batch_size)
    out: list[dict[str, tuple[float, float]]] = [{} for _ in cases]
    for i, (k, name) in enumerate(names):
        out[k][name] = (float(mean[i]), float(stderr[i]))
    return out


def superposition_boundary(r: float) -> float:
    """The feature probability 1 - S below which the antipodal pair beats the best dedicated solution."""
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"r must be a positive number, got {r}.")
    return 4 * r / (2 + 5 * r) if r <= 1 else 4 / (2 * r + 5)


def classify_regime(W: torch.Tensor, threshold: float = 0.5) -> list[str]:
    """The regime of each instance of a trained n=2, m=1 model.

    W: (n_instances, 1, 2). Feature i is represented when |W[k, 0, i]| > threshold. Per instance:
      "superposed":      both features represented, with opposite signs (the antipodal pair);
      "dedicated":       exactly one feature represented;
      "not represented": anything else: no feature represented, or both with the same sign (a collision
                         that no ReLU bias can undo, not a solution; training only stalls there).
    """
    W = torch.as_tensor(W).detach()
    if W.ndim != 3 or W.shape[1:] != (1, 2):
        raise ValueError(f"W must be (n_instances, 1, 2) (one hidden dimension, two features), got {tuple(W.shape)}.")
    w = W[:, 0, :]
    represented = (w.abs() > threshold).sum(dim=1)
    opposite = w[:, 0] * w[:, 1] < 0
    labels = []
    for count, opp in zip(represented.tolist(), opposite.tolist()):
        labels.append("dedicated" if count == 1 else "superposed" if count == 2 and opp else "not represented")
    return labels
