"""Packing nearly orthogonal vectors, and the bounds on how many fit (introduced in lesson 01).

How many unit vectors fit in R^dim with every pairwise |cos| <= eps?
- `welch_bound` / `max_vectors_welch`: the Welch bound, an upper limit on the count (while dim * eps^2 < 1);
- `pack_many` / `packed_count`: what gradient descent actually achieves in small dimensions;
- `greedy_count`: what random vectors kept greedily achieve in large dimensions, a lower bound that
  grows exponentially with dim (the Johnson-Lindenstrauss picture).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from utils.device import make_generator


def welch_bound(n_vectors: int, dim: int) -> float:
    """The lowest max |cos| that any n_vectors unit vectors in R^dim can have (0 when n_vectors <= dim).

    Welch (1974): max_{i != j} |cos(v_i, v_j)| >= sqrt((N - n) / (n (N - 1))) for N unit vectors in R^n.
    """
    if n_vectors <= dim:
        return 0.0
    return math.sqrt((n_vectors - dim) / (dim * (n_vectors - 1)))


def max_vectors_welch(dim: int, eps: float) -> float:
    """The most unit vectors the Welch bound allows with pairwise |cos| <= eps (math.inf when it allows any number).

    Solving sqrt((N - n) / (n (N - 1))) <= eps for N gives N <= n (1 - eps^2) / (1 - n eps^2) when n eps^2 < 1.
    """
    if dim * eps**2 >= 1:
        return math.inf
    return math.floor(dim * (1 - eps**2) / (1 - dim * eps**2) + 1e-9)


def max_abs_cosine(V: torch.Tensor) -> float:
    """Largest |cos| between distinct columns of V (dim, n_vectors)."""
    V_hat = V / V.norm(dim=0, keepdim=True)
    cos = V_hat.T @ V_hat
    return cos[~torch.eye(cos.shape[0], dtype=torch.bool)].abs().max().item()


def _pack_batch(dim: int, n_vectors: Sequence[int], restarts: int, steps: int, lr: float, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient descent for several N at once; returns (unit vectors (B, dim, N_max), max |cos| (B,)).

    Row b packs n_vectors[b // restarts] vectors; the columns beyond that are masked out of the loss.
    """
    g = make_generator(seed, torch.device("cpu"))
    counts = torch.tensor(list(n_vectors)).repeat_interleave(restarts)
    n_max = int(counts.max())
    alive = torch.arange(n_max)[None, :] < counts[:, None]                      # (B, N_max)
    pairs = alive[:, :, None] & alive[:, None, :] & ~torch.eye(n_max, dtype=torch.bool)
    V = torch.randn(len(counts), dim, n_max, generator=g).requires_grad_()
    optimizer = torch.optim.Adam([V], lr=lr)
    for step in range(steps):
        sharpness = 20 + 980 * step / max(steps - 1, 1)  # from a smooth average to nearly the true maximum
        V_hat = V / V.norm(dim=1, keepdim=True)
        cos2 = (V_hat.transpose(1, 2) @ V_hat) ** 2
        loss = torch.logsumexp((sharpness * cos2).masked_fill(~pairs, -torch.inf).flatten(1), dim=1) / sharpness
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    with torch.no_grad():
        V_hat = V / V.norm(dim=1, keepdim=True)
        worst = (V_hat.transpose(1, 2) @ V_hat).abs().masked_fill(~pairs, 0).flatten(1).amax(dim=1)
    return V_hat.detach(), worst


def pack_many(dim: int, n_vectors: Sequence[int], restarts: int = 4, steps: int = 400, lr: float = 0.02,
              seed: int = 0) -> list[float]:
    """For each N in n_vectors, the smallest max |cos| gradient descent finds for N unit vectors in R^dim.

    All N and all `restarts` random starts are optimised together, as one batch (a smooth maximum of the
    squared cosines, log-sum-exp with a sharpness that rises during training); the best restart counts.
    """
    _, worst = _pack_batch(dim, n_vectors, restarts, steps, lr, seed)
    return worst.view(len(n_vectors), restarts).amin(dim=1).tolist()


def pack(n_vectors: int, dim: int, restarts: int = 8, steps: int = 400, seed: int = 0) -> torch.Tensor:
    """n_vectors unit vectors in R^dim spread out by gradient descent: (dim, n_vectors) with unit columns."""
    V_hat, worst = _pack_batch(dim, [n_vectors], restarts, steps, 0.02, seed)
    return V_hat[worst.argmin()]


def packed_count(dim: int, eps: float, n_max: int | None = None, max_candidates: int = 12, restarts: int = 2,
                 steps: int = 400, seed: int = 0) -> int:
    """The most unit vectors in R^dim that gradient descent packs with every pairwise |cos| <= eps.

    Tries up to `max_candidates` values of N, evenly spread from dim + 1 to n_max (default: what the Welch
    bound allows), all in one batch, and returns the largest N it packed. A lower bound on the true
    maximum (the optimiser may miss better packings, and untried N in between may fit); at least dim
    (an orthonormal basis).
    """
    if n_max is None:
        n_max = max_vectors_welch(dim, eps)
        if math.isinf(n_max):
            raise ValueError(f"the Welch bound allows any number of vectors for dim={dim}, eps={eps} "
                             "(dim * eps^2 >= 1): pass n_max.")
    candidates = sorted({round(n) for n in torch.linspace(dim + 1, int(n_max), max_candidates).tolist()}
                        if int(n_max) > dim else set())
    if not candidates:
        return dim
    worst = pack_many(dim, candidates, restarts=restarts, steps=steps, seed=seed)
    reached = [n for n, w in zip(candidates, worst) if w <= eps]
    return max(reached, default=dim)


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
