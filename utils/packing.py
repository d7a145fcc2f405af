"""Packing nearly orthogonal vectors, and the bounds on how many fit (introduced in lesson 01)."""

from __future__ import annotations

import math

import torch

from utils.device import make_generator


def welch_bound(n_vectors: int, dim: int) -> float:
    """The lowest max |cos| that any n_vectors unit vectors in R^dim can have (0 when n_vectors <= dim)."""
    if n_vectors <= dim:
        return 0.0
    return math.sqrt((n_vectors - dim) / (dim * (n_vectors - 1)))


def max_vectors_welch(dim: int, eps: float) -> float:
    """The most unit vectors the Welch bound allows with pairwise |cos| <= eps (math.inf when it allows any number)."""
    if dim * eps**2 >= 1:
        return math.inf
    return math.floor(dim * (1 - eps**2) / (1 - dim * eps**2) + 1e-9)


def pack(n_vectors: int, dim: int, restarts: int = 8, steps: int = 600, seed: int = 0) -> torch.Tensor:
    """Spread n_vectors unit vectors in R^dim to make their largest |cos| small, by gradient descent.

    Minimises a smooth maximum (log-sum-exp) of the squared cosines, for `restarts` random starts
    at once, and returns the best: (dim, n_vectors) with unit columns.
    """
    g = make_generator(seed, torch.device("cpu"))
    V = torch.randn(restarts, dim, n_vectors, generator=g).requires_grad_()
    optimizer = torch.optim.Adam([V], lr=0.02)
    off_diagonal = ~torch.eye(n_vectors, dtype=torch.bool)
    for step in range(steps):
        sharpness = 20 + 480 * step / steps  # from smooth to close to the true maximum
        V_hat = V / V.norm(dim=1, keepdim=True)
        cos2 = (V_hat.transpose(1, 2) @ V_hat)[:, off_diagonal] ** 2
        loss = torch.logsumexp(sharpness * cos2, dim=1) / sharpness
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    with torch.no_grad():
        V_hat = V / V.norm(dim=1, keepdim=True)
        worst = (V_hat.transpose(1, 2) @ V_hat)[:, off_diagonal].abs().amax(dim=1)
        return V_hat[worst.argmin()]


def max_abs_cosine(V: torch.Tensor) -> float:
    """Largest |cos| between distinct columns of V (dim, n_vectors)."""
    V_hat = V / V.norm(dim=0, keepdim=True)
    cos = V_hat.T @ V_hat
    return cos[~torch.eye(cos.shape[0], dtype=torch.bool)].abs().max().item()


def greedy_count(dim: int, eps: float = 0.1, cap: int = 2000, batch: int = 512, max_batches: int = 40,
                 seed: int = 0) -> int:
    """How many random unit vectors a greedy search keeps with pairwise |cos| <= eps (a lower bound).

    Draws candidates in batches and keeps each one that is nearly orthogonal to all kept so far;
    stops at `cap` vectors or after `max_batches` batches.
    """
    g = make_generator(seed, torch.device("cpu"))
    kept = torch.empty(0, dim)
    for _ in range(max_batches):
        candidates = torch.randn(batch, dim, generator=g)
        candidates /= candidates.norm(dim=1, keepdim=True)
        if kept.shape[0]:
            candidates = candidates[(candidates @ kept.T).abs().amax(dim=1) <= eps]
        for v in candidates:  # survivors are few: check them against each other one by one
            if kept.shape[0] >= cap:
                return cap
            if kept.shape[0] == 0 or (kept @ v).abs().max() <= eps:
                kept = torch.cat([kept, v[None]])
    return kept.shape[0]
