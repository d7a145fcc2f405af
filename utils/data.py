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
    return draw_sparse(batch_size, feature_probability, generator).transpose(0, 1)


def draw_sparse(
    batch_size: int,
    feature_probability: torch.Tensor,
    generator: torch.Generator | None = None,
    feature_major: bool = False,
) -> torch.Tensor:
    """sparse_features' values, instance-major: (n_instances, batch_size, n_features), contiguous.

    With feature_major=True the same values come laid out (n_instances, n_features, batch_size) instead,
    the transpose written by the pass that scales the draws (ToyModel's narrow models want that layout).
    Five passes over the batch: draw, mask to 24 bits, scale, zero the inactive, negate.
    """
    p = feature_probability
    n_instances, n_features = p.shape
    n = n_instances * batch_size * n_features
    bits = torch.empty((n + 1) // 2, dtype=torch.int64, device=p.device).random_(generator=generator)
    # 24 bits as a float (exact), written straight into a float tensor: u * 2**24, u uniform in [0, 1).
    draws = torch.bitwise_and(bits.view(torch.int32)[:n], 0xFFFFFF, out=torch.empty(n, dtype=p.dtype, device=p.device))
    draws = draws.view(n_instances, batch_size, n_features)
    # -(u / p) in one pass: dividing by -p * 2**24 is exact scaling by a power of two and a sign, so the values
    # are bit for bit those of (u * 2**-24) / p negated.
    scale = p[:, None, :] * -(2.0**24)
    if feature_major:
        x = torch.empty(n_instances, n_features, batch_size, dtype=p.dtype, device=p.device)
        torch.div(draws, scale, out=x.transpose(1, 2))
    else:
        x = draws.div_(scale)
    # Zero where u / p >= 1 (inactive): threshold_ keeps t where t > -1. It is several times faster on a
    # CPU than a boolean mask, and negation is exact.
    torch.nn.functional.threshold_(x, -1.0, 0.0)
    return x.neg_()
