"""Measurements of learned feature geometry (lessons 02-04), following Elhage et al. (2022).

Every function takes W of shape (n_instances, n_hidden, n_features), where column W[k, :, i] is
feature i's direction in instance k, or a single (n_hidden, n_features) matrix, in which case the
instance dimension is left out of the result too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import torch

_EPS = 1e-8


def _accepts_single_matrix(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Let `fn`, written for (n_instances, n_hidden, n_features), also take one (n_hidden, n_features) W."""

    @wraps(fn)
    def wrapper(W: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        W = torch.as_tensor(W).detach()
        if W.ndim not in (2, 3):
            raise ValueError(
                f"W must have shape (n_hidden, n_features) or (n_instances, n_hidden, n_features), "
                f"got {tuple(W.shape)}."
            )
        if W.ndim == 2:
            return fn(W[None].float(), *args, **kwargs)[0]
        return fn(W.float(), *args, **kwargs)

    return wrapper


@_accepts_single_matrix
def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """||W_i||, how strongly each feature is represented: (n_instances, n_features)."""
    return W.norm(dim=1)


@_accepts_single_matrix
def cosine_similarities(W: torch.Tensor) -> torch.Tensor:
    """Signed cosine similarity between feature directions: (n_instances, n_features, n_features).

    A feature with (near) zero norm has cosine 0 with everything, itself included.
    """
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(_EPS)
    return W_hat.transpose(1, 2) @ W_hat


def _projections_squared(W: torch.Tensor) -> torch.Tensor:
    """(W_i_hat . W_j)^2 for all i, j: (n_instances, n_features, n_features)."""
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(_EPS)
    return (W_hat.transpose(1, 2) @ W) ** 2


@_accepts_single_matrix
def superposition(W: torch.Tensor) -> torch.Tensor:
    """How much other features overlap feature i: sum over j != i of (W_i_hat . W_j)^2.

    0 for a feature with a dimension of its own; the colour of the paper's bar charts.
    Returns (n_instances, n_features).
    """
    proj = _projections_squared(W)
    return proj.sum(dim=2) - proj.diagonal(dim1=1, dim2=2)


@_accepts_single_matrix
def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2, the fraction of a dimension feature i gets.

    1 for a dedicated dimension, 1/2 for an antipodal pair, 2/5 in a pentagon; 0 for a feature
    that is not represented. Returns (n_instances, n_features).
    """
    proj = _projections_squared(W)
    return W.norm(dim=1) ** 2 / proj.sum(dim=2).clamp_min(_EPS)


@_accepts_single_matrix
def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """m / ||W||_F^2: hidden dimensions per (norm-weighted) feature, (n_instances,)."""
    return W.shape[1] / (W**2).sum(dim=(1, 2)).clamp_min(_EPS)


@_accepts_single_matrix
def represented_features(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Number of features with ||W_i|| > threshold: (n_instances,) int64."""
    return (W.norm(dim=1) > threshold).sum(dim=1)


@_accepts_single_matrix
def antipodal_pairs(W: torch.Tensor, threshold: float = 0.5, max_cosine: float = -0.9) -> torch.Tensor:
    """Number of pairs of represented features pointing in (nearly) opposite directions: (n_instances,)."""
    represented = W.norm(dim=1) > threshold
    cos = cosine_similarities(W)
    both = represented[:, :, None] & represented[:, None, :]
    return ((cos < max_cosine) & both).sum(dim=(1, 2)) // 2


def interference(W: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """The part of the linear reconstruction W^T W x that comes from *other* features (lesson 01).

    interference_i = sum_{j != i} (W_i . W_j) x_j = (W^T W x)_i - ||W_i||^2 x_i.

    W: (n_hidden, n_features); features: (n_features,) or (batch, n_features) -> same shape as features.
    """
    W, x = torch.as_tensor(W).float(), torch.as_tensor(features).float()
    if W.ndim != 2 or x.shape[-1] != W.shape[1]:
        raise ValueError(f"W has shape {tuple(W.shape)} and features {tuple(x.shape)}: W must be "
                         "(n_hidden, n_features) with n_features = features.shape[-1]; is W transposed?")
    gram = W.T @ W
    return x @ gram - x * torch.diagonal(gram)


def simulate_pair_interference(S: float, c: float = 1.0, samples: int = 400_000, seed: int = 0) -> dict[str, float]:
    """Monte Carlo statistics of the interference c x_j between two features sharing a direction (lesson 01).

    x_i, x_j are independent, each 0 with probability S and otherwise uniform in [0, 1). Returns the
    fraction of samples where both are active, the mean of c x_j over samples where x_i is active, and the
    mean of (c x_j)^2 over all samples: estimates to hold a closed form against.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(samples, 2, generator=g) * (torch.rand(samples, 2, generator=g) >= S)
    i_active, j_active = x[:, 0] > 0, x[:, 1] > 0
    interference = c * x[:, 1]
    return {"p_both_active": (i_active & j_active).float().mean().item(),
            "mean": interference[i_active].mean().item() if i_active.any() else float("nan"),
            "mean_square": (interference**2).mean().item()}
