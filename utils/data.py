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
    uniform in [0, 1). The draws take 24 random bits each, from half as many 64-bit integers, which
    is about twice as fast as torch.rand on a CPU; the batch is laid out instance-major in memory
    (a transposed view), which is the layout ToyModel's batched matrix products want.

    Args:
        batch_size: number of samples.
        feature_probability: (n_instances, n_features), values in (0, 1].
        generator: optional seeded torch.Generator on the same device.

    Returns:
        (batch_size, n_instances, n_features) tensor on feature_probability's device.
    """
    p = feature_probability
    n_instances, n_features = p.shape
    n = n_instances * batch_size * n_features
    bits = torch.empty((n + 1) // 2, dtype=torch.int64, device=p.device).random_(generator=generator)
    u = (bits.view(torch.int32)[:n] & 0xFFFFFF).to(p.dtype).mul_(2.0**-24)
    x = u.view(n_instances, batch_size, n_features).div_(p[:, None, :])
    # Zero where x >= 1 (inactive). threshold_ keeps t where t > -1, i.e. x < 1; it is several times
    # faster on a CPU than a boolean mask, and negation is exact.
    torch.nn.functional.threshold_(x.neg_(), -1.0, 0.0)
    return x.neg_().transpose(0, 1)
