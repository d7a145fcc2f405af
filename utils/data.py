"""Synthetic sparse features: the toy model's data (introduced in lesson 02).

Sparsity S is the probability that a feature is zero; where code needs 1 - S it is called
`feature_probability`.
"""

from __future__ import annotations

import torch


def sparse_features(
    batch_size: int,
    feature_probability: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw a batch of sparse features.

    Each feature is active with probability `feature_probability` (= 1 - S), and when active its
    value is uniform in [0, 1); otherwise it is exactly 0.

    One uniform draw u per entry decides both: the feature is active when u < p, and then u / p is
    uniform in [0, 1). This halves the random numbers needed compared with drawing values and a
    mask separately, with exactly the same distribution.

    Args:
        batch_size: number of samples.
        feature_probability: (n_instances, n_features), values in (0, 1].
        generator: optional seeded torch.Generator on the same device.

    Returns:
        (batch_size, n_instances, n_features) tensor on feature_probability's device.
    """
    p = feature_probability
    u = torch.rand((batch_size, *p.shape), generator=generator, device=p.device, dtype=p.dtype)
    return torch.where(u < p, u / p, torch.zeros((), device=p.device, dtype=p.dtype))
