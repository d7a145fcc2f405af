"""Shapes of superposition and rotations of the hidden space (introduced in lesson 04).

Regular polygons (the seed's pentagon), rotations of the hidden space, the mean pairwise cosine of a
set of feature directions, and a toy model with a ReLU on its hidden layer, whose neurons are a
privileged basis (the bottleneck ToyModel's are not).
"""

from __future__ import annotations

import math

import torch

from utils.device import make_generator
from utils.model import ToyModel


def regular_polygon(k: int, start_degrees: float = 0.0) -> torch.Tensor:
    """k unit vectors at angles start, start + 360/k, ... degrees: (2, k). k = 5 is the seed's pentagon."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer (the number of directions), got {k!r}.")
    angles = torch.deg2rad(start_degrees + 360.0 * torch.arange(k, dtype=torch.float32) / k)
    return torch.stack([angles.cos(), angles.sin()])


def rotation_2d(degrees: float) -> torch.Tensor:
    """The (2, 2) matrix rotating the plane anticlockwise by `degrees`."""
    t = math.radians(degrees)
    return torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def random_rotation(n: int, seed: int = 0) -> torch.Tensor:
    """A random (n, n) rotation (orthogonal, determinant +1), drawn uniformly (QR of a Gaussian matrix)."""
    g = make_generator(seed, torch.device("cpu"))
    Q, R = torch.linalg.qr(torch.randn(n, n, generator=g))
    Q = Q * torch.sign(torch.diagonal(R))  # makes the distribution uniform (Haar)
    if torch.det(Q) < 0:
        Q[:, 0] = -Q[:, 0]
    return Q


def mean_pairwise_cosine(W: torch.Tensor) -> float:
    """Mean signed cosine between distinct columns of W (n_hidden, k); 0.0 when k < 2.

    For any k unit vectors it is at least -1/(k-1), with equality exactly when they sum to zero
    (|sum_i v_i|^2 = k + sum_{i != j} cos_ij >= 0), as in a regular polygon.
    """
    W = torch.as_tensor(W).detach().float()
    k = W.shape[1]
    if k < 2:
        return 0.0
    W_hat = W / W.norm(dim=0, keepdim=True).clamp_min(1e-8)
    cos = W_hat.T @ W_hat
    return float((cos.sum() - cos.diagonal().sum()) / (k * (k - 1)))


class HiddenReLUModel(ToyModel):
    """The paper's toy model with a ReLU on its hidden layer:  h = ReLU(W x),  x' = ReLU(W^T h + b).

    Elhage et al. (2022), section "Superposition in a Privileged Basis". Same parameters, data and loss as
    ToyModel (W: (n_instances, n_hidden, n_features), b_final); only the forward pass differs, so
    utils.train trains it (with autograd). activation="linear" drops the output ReLU (x' = W^T h + b).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, n_instances, n_features) -> reconstruction of the same shape."""
        return self.decode(torch.relu(self.hidden(x)))
