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
p < 4 / (2r + 5) for r >= 1: the candidates' line. It is not the true optimum's boundary. exact_loss
computes the expected loss of ANY (W, b) in closed form (Monte Carlo checks it), optimum minimises it, and
optimum_boundary finds where the optimum stops being superposed: later than the candidates' line (at
about 1.1 times it for r <= 0.5, 1.25 times at r = 1), because a shrunken antipodal pair with a positive bias
beats both the antipodal candidate and, a little past the line, the dedicated one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from utils.device import make_generator
from utils.model import ToyModel
from utils.training import evaluate_loss

#: The labels of classify_regime, in the order of their heatmap codes 0, 1, 2, 3.
REGIMES = ("not represented", "dedicated", "superposed", "same sign")
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
def simulate_loss(
    W: torch.Tensor, b: torch.Tensor, r: torch.Tensor, feature_probability: torch.Tensor,
    batch_size: int = 2**18, seed: int = 12345,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo loss of N solutions, loaded by hand into one ToyModel(2, 1) with N instances.

    W: (N, 1, 2), b: (N, 2), r and feature_probability: (N,). Returns (mean, standard error), each (N,):
    the mean is utils.evaluate_loss on `batch_size` samples, the standard error comes from the per-sample
    losses of that same batch.
    """
    r, p = torch.as_tensor(r, dtype=torch.float32), torch.as_tensor(feature_probability, dtype=torch.float32)
    model = ToyModel(2, 1, len(p), sparsity=1 - p, importance=torch.stack([torch.ones_like(r), r], dim=1),
                     device="cpu")
    model.W.copy_(torch.as_tensor(W, dtype=torch.float32)), model.b_final.copy_(torch.as_tensor(b, dtype=torch.float32))
    mean = evaluate_loss(model, batch_size=batch_size, seed=seed)
    x = model.generate_batch(batch_size, make_generator(seed, torch.device("cpu")))  # evaluate_loss's batch
    per_sample = (model.importance * (x - model(x)) ** 2).mean(dim=2)              # (batch, N)
    return mean, per_sample.std(dim=0) / math.sqrt(batch_size)


def simulate_candidates(
    cases: list[tuple[float, float]], batch_size: int = 2**18, seed: int = 12345
) -> list[dict[str, tuple[float, float]]]:
    """Monte Carlo check of candidate_losses: the candidates loaded by hand into one ToyModel(2, 1).

    cases: [(r, feature_probability), ...]. For each case returns {candidate: (mean loss, standard error)}
    (simulate_loss on every candidate of every case, in one model).
    """
    for r, p in cases:
        _check_r_p(r, p)
    names = [(k, name) for k in range(len(cases)) for name in CANDIDATES]
    weights = [candidate_weights(name, cases[k][1]) for k, name in names]
    mean, stderr = simulate_loss(torch.stack([W for W, _ in weights]), torch.stack([b for _, b in weights]),
                                 torch.tensor([cases[k][0] for k, _ in names]),
                                 torch.tensor([cases[k][1] for k, _ in names]), batch_size, seed)
    out: list[dict[str, tuple[float, float]]] = [{} for _ in cases]
    for i, (k, name) in enumerate(names):
        out[k][name] = (float(mean[i]), float(stderr[i]))
    return out


# --- the exact expected loss of any (W, b), and its minimum ----------------------------------------
# Per output i and per case (which features are active) the error is (ReLU(a u + c v + g) - (t u + s v))^2
# for active values u, v uniform on [0, 1). Its integral over u is a piecewise cubic, done exactly; over v
# it is a polynomial between the (at most two) v where the ReLU's kink enters or leaves the square, so
# 3-point Gauss-Legendre on each piece is exact too.

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(3)


def _primitive(k: np.ndarray, m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """An antiderivative of (k u + m)^2 in u."""
    return k * k * u ** 3 / 3 + k * m * u * u + m * m * u


def _line_integral(a: np.ndarray, c: np.ndarray, t: np.ndarray, m: np.ndarray) -> np.ndarray:
    """int_0^1 (ReLU(a u + c) - (t u + m))^2 du, elementwise: the ReLU is on over [lo, hi]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.clip(np.where(a != 0, -c / np.where(a != 0, a, 1.0), 0.0), 0.0, 1.0)
    lo = np.where(a > 0, root, 0.0)
    hi = np.where(a < 0, root, np.where(a == 0, (c > 0).astype(float), 1.0))
    on = _primitive(a - t, c - m, hi) - _primitive(a - t, c - m, lo)
    return on + _primitive(t, m, 1.0) - _primitive(t, m, hi) + _primitive(t, m, lo)


def _square_integral(a: np.ndarray, c: np.ndarray, g: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """int over [0, 1)^2 of (ReLU(a u + c v + g) - (t u + s v))^2 du dv, elementwise."""
    safe = np.where(c != 0, c, 1.0)
    kinks = np.stack([-g / safe, -(a + g) / safe], axis=-1)  # v where the kink crosses u = 0 and u = 1
    kinks = np.sort(np.clip(np.where((c != 0)[..., None], kinks, 0.0), 0.0, 1.0), axis=-1)
    edges = np.concatenate([np.zeros_like(kinks[..., :1]), kinks, np.ones_like(kinks[..., :1])], axis=-1)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]   # (..., 3 pieces, 1)
    v = (lo + hi) / 2 + (hi - lo) / 2 * _GL_NODES            # (..., 3 pieces, 3 nodes)
    e = lambda x: x[..., None, None]
    inner = _line_integral(e(a), e(c) * v + e(g), e(t), e(s) * v)
    return ((hi - lo) / 2 * _GL_WEIGHTS * inner).sum(axis=(-1, -2))


def _exact_loss(theta: np.ndarray, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    """theta (..., 4) = (W_1, W_2, b_1, b_2); r, p broadcast against theta[..., 0]. Returns (...)."""
    W1, W2, b1, b2 = np.moveaxis(theta, -1, 0)
    q = 1 - p
    total = 0.0
    for Wi, bi, target_1, importance in ((W1, b1, 1.0, 1.0), (W2, b2, 0.0, r)):
        a1, a2 = Wi * W1, Wi * W2               # output i = ReLU(a1 x1 + a2 x2 + b_i)
        zero = np.zeros_like(a1)
        neither = np.maximum(bi, 0.0) ** 2
        only_1 = _line_integral(a1, bi, zero + target_1, zero)
        only_2 = _line_integral(a2, bi, zero + (1 - target_1), zero)
        both = _square_integral(a1, a2, bi, zero + target_1, zero + (1 - target_1))
        total = total + importance * (q * q * neither + p * q * (only_1 + only_2) + p * p * both)
    return total / 2


def exact_loss(W: torch.Tensor, b: torch.Tensor, r: float | torch.Tensor,
               feature_probability: float | torch.Tensor) -> torch.Tensor:
    """The expected loss of any n=2, m=1 solution, exactly (no sampling; float64).

    W: (N, 1, 2), b: (N, 2); r and feature_probability: floats or (N,). Returns (N,): the loss
    utils.ToyModel.loss would average over infinitely many samples (simulate_loss is its Monte Carlo check).
    """
    W = torch.as_tensor(W, dtype=torch.float64).detach().reshape(-1, 2)
    b = torch.as_tensor(b, dtype=torch.float64).detach().reshape(-1, 2)
    r = torch.as_tensor(r, dtype=torch.float64).expand(len(W)).numpy()
    p = torch.as_tensor(feature_probability, dtype=torch.float64).expand(len(W)).numpy()
    return torch.from_numpy(_exact_loss(torch.cat([W, b], dim=1).numpy(), r, p))


def _minimise(theta: np.ndarray, r: np.ndarray, p: np.ndarray, steps: int = 40, h: float = 1e-4) -> np.ndarray:
    """Damped Newton (Levenberg-Marquardt) on each row of theta (N, 4) at once, with finite-difference
    gradients and Hessians of _exact_loss (the loss is a smooth piecewise polynomial: no noise to fear)."""
    n = theta.shape[1]
    eye = np.eye(n)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    shifts = np.concatenate([h * eye, -h * eye] + [h * (si * eye[[i]] + sj * eye[[j]])
                                                   for i, j in pairs for si in (1, -1) for sj in (1, -1)])
    damping = np.full(len(theta), 1e-3)
    loss = _exact_loss(theta, r, p)
    stalled = 0
    for _ in range(steps):
        f = _exact_loss(theta[:, None, :] + shifts, r[:, None], p[:, None])      # (N, 8 + 24)
        plus, minus, cross = f[:, :n], f[:, n:2 * n], f[:, 2 * n:].reshape(-1, len(pairs), 4)
        grad = (plus - minus) / (2 * h)
        hess = np.zeros((len(theta), n, n))
        hess[:, range(n), range(n)] = (plus - 2 * loss[:, None] + minus) / h ** 2
        off = (cross[..., 0] - cross[..., 1] - cross[..., 2] + cross[..., 3]) / (4 * h * h)  # ++, +-, -+, --
        for k, (i, j) in enumerate(pairs):
            hess[:, i, j] = hess[:, j, i] = off[:, k]
        step = np.linalg.solve(hess + damping[:, None, None] * eye, grad[..., None])[..., 0]
        new = _exact_loss(theta - step, r, p)
        better = new < loss
        gain = np.where(better, loss - new, 0.0).max()
        theta = np.where(better[:, None], theta - step, theta)
        loss = np.where(better, new, loss)
        damping = np.clip(np.where(better, damping / 3, damping * 10), 1e-9, 1e6)
        stalled = stalled + 1 if gain < 1e-13 else 0
        if stalled == 2:  # no row gained anything twice in a row: all converged
            break
    return theta


#: Where optimum starts its searches, as (W_1, W_2, b_1, b_2) with p for feature probability: both dedicated
#: candidates, the antipodal pair, shrunken asymmetric pairs with positive bias, and a same-sign pair.
_STARTS = ((1.0, 0.0, 0.0, "p/2"), (0.0, 1.0, "p/2", 0.0), (1.0, -1.0, 0.0, 0.0), (0.9, -0.5, 0.1, 0.3),
           (0.5, -0.9, 0.3, 0.1), (0.7, 0.7, 0.0, 0.0))


def optimum(r: float | torch.Tensor, feature_probability: float | torch.Tensor,
            steps: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (W, b) of lowest exact_loss for each (r, feature_probability): the best of local minimisations
    from the three candidates, shrunken opposite-sign pairs and a same-sign pair.

    r, feature_probability: floats or (N,) (broadcast). Returns W (N, 1, 2), b (N, 2), loss (N,), float64.
    The minimisation is deterministic; the loss it reaches is within 1e-9 of a local minimum.
    """
    r_, p_ = torch.broadcast_tensors(torch.as_tensor(r, dtype=torch.float64).flatten(),
                                     torch.as_tensor(feature_probability, dtype=torch.float64).flatten())
    for a, c in zip(r_.tolist(), p_.tolist()):
        _check_r_p(a, c)
    r_, p_ = r_.numpy(), p_.numpy()
    starts = np.array([[p_ / 2 if v == "p/2" else np.full_like(p_, v) for v in start] for start in _STARTS])
    theta = np.moveaxis(starts, 2, 0).reshape(-1, 4)                           # (N * starts, 4)
    k = len(_STARTS)
    theta = _minimise(theta, np.repeat(r_, k), np.repeat(p_, k), steps)
    loss = _exact_loss(theta, np.repeat(r_, k), np.repeat(p_, k)).reshape(-1, k)
    best = theta.reshape(-1, k, 4)[np.arange(len(loss)), loss.argmin(axis=1)]
    best = torch.from_numpy(best)
    return best[:, None, :2].clone(), best[:, 2:].clone(), torch.from_numpy(loss.min(axis=1))


def optimum_boundary(r: float | list[float], threshold: float = 0.5, iterations: int = 12) -> list[float]:
    """The feature probability 1 - S at which the exact optimum stops being "superposed" (classify_regime
    of optimum's W with `threshold`), for each r: bisection on log p between 0.8 and 2 times the candidates'
    line (capped at 1; the optimum is superposed at 0.8 times it), all r at once; relative precision about
    0.9 * 2^-iterations.

    Returns a list of floats (1.0 where the optimum is still superposed at p = 1). For r <= 1 the switch
    is a jump (|W_2| falls from about 0.7 to 0), so the threshold hardly matters; near r = 1 the pair
    shrinks gradually and the boundary depends on it.
    """
    rs = [float(v) for v in (r if isinstance(r, (list, tuple)) else [r])]
    line = torch.tensor([superposition_boundary(v) for v in rs], dtype=torch.float64)
    lo, hi = (line * 0.8).log(), (line * 2.0).clamp(max=1.0).log()

    def superposed(log_p: torch.Tensor) -> torch.Tensor:
        W, _, _ = optimum(torch.tensor(rs, dtype=torch.float64), log_p.exp())
        return torch.tensor([x == "superposed" for x in classify_regime(W, threshold)])

    top = superposed(hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        inside = superposed(mid)
        lo, hi = torch.where(inside, mid, lo), torch.where(inside, hi, mid)
    return torch.where(top, torch.ones_like(line), ((lo + hi) / 2).exp()).tolist()


def superposition_boundary(r: float) -> float:
    """The feature probability 1 - S below which the antipodal pair beats the best dedicated solution."""
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"r must be a positive number, got {r}.")
    return 4 * r / (2 + 5 * r) if r <= 1 else 4 / (2 * r + 5)


def classify_regime(W: torch.Tensor, threshold: float = 0.5) -> list[str]:
    """The regime of each instance of a trained n=2, m=1 model.

    W: (n_instances, 1, 2). Feature i is represented when |W[k, 0, i]| > threshold. Per instance:
      "superposed":      both features represented, with opposite signs (the antipodal pair);
      "same sign":       both represented with the same sign: each output reads a mix of the two features,
                         like a linear model's compromise direction (at r = 1 it costs exactly what a
                         dedicated dimension costs, and training can end there);
      "dedicated":       exactly one feature represented;
      "not represented": no feature represented.
    """
    W = torch.as_tensor(W).detach()
    if W.ndim != 3 or W.shape[1:] != (1, 2):
        raise ValueError(f"W must be (n_instances, 1, 2) (one hidden dimension, two features), got {tuple(W.shape)}.")
    w = W[:, 0, :]
    represented = (w.abs() > threshold).sum(dim=1)
    opposite = w[:, 0] * w[:, 1] < 0
    labels = []
    for count, opp in zip(represented.tolist(), opposite.tolist()):
        labels.append(("not represented", "dedicated", "superposed" if opp else "same sign")[count])
    return labels
