"""utils.phase beyond the lesson 03 exercises: the exact expected loss of any n=2, m=1 solution (against Monte
Carlo), its minimum, and where that minimum stops being superposed (issue 14: not on the candidates' line)."""

import math

import torch

from utils import phase

#: Monte Carlo behind exact_loss: 2^15 samples per solution, the exact value passes within 5 standard errors.
MC_BATCH, MC_SIGMAS = 2**15, 5.0


def test_exact_loss_agrees_with_a_toy_model_simulation():
    """Seeded random (W, b), both signs, biases on both sides of 0, sparse to dense, r on both sides of 1."""
    g = torch.Generator().manual_seed(3)
    n = 8
    W = torch.randn(n, 1, 2, generator=g)
    b = 0.4 * torch.randn(n, 2, generator=g)
    r = torch.exp(torch.empty(n).uniform_(-2, 2, generator=g))
    p = torch.empty(n).uniform_(0.05, 1.0, generator=g)
    mean, stderr = phase.simulate_loss(W, b, r, p, batch_size=MC_BATCH, seed=11)
    exact = phase.exact_loss(W, b, r, p)
    gap = (exact - mean.double()).abs() / stderr.double()
    assert (gap < MC_SIGMAS).all(), gap


def test_exact_loss_of_the_candidates_is_their_closed_form():
    for r, p in ((0.3, 0.2), (2.5, 0.7), (1.0, 1.0), (0.5, 0.01)):
        weights = [phase.candidate_weights(name, p) for name in phase.CANDIDATES]
        exact = phase.exact_loss(torch.stack([w for w, _ in weights]), torch.stack([b for _, b in weights]), r, p)
        closed = torch.tensor([phase.candidate_losses(r, p)[name] for name in phase.CANDIDATES], dtype=torch.float64)
        assert torch.allclose(exact, closed, rtol=1e-9, atol=1e-12), (r, p, exact, closed)


def test_the_optimum_is_superposed_past_the_candidates_line():
    """Issue 14: just past 4r/(2+5r) the best dedicated candidate is NOT the optimum: a shrunken antipodal pair with
    a positive bias is, and at r = 1 it wins well into the 'dedicated' side."""
    rs = torch.tensor([0.3, 0.5, 1.0])
    ps = torch.tensor([1.05, 1.05, 1.2]) * torch.tensor([phase.superposition_boundary(v) for v in rs.tolist()])
    W, b, loss = phase.optimum(rs, ps)
    assert phase.classify_regime(W) == ["superposed"] * 3, W
    assert (b > 0).all() and (W[:, 0].abs() < 1.1).all() and (W[:, 0].abs().min(dim=1).values < 0.95).all(), (W, b)
    best_candidate = torch.tensor([min(phase.candidate_losses(a, c).values()) for a, c in zip(rs.tolist(), ps.tolist())])
    assert (loss < best_candidate.double() * (1 - 1e-3)).all(), (loss, best_candidate)
    # The antipodal candidate's b = 0 is not a detail: at r = 1, 1 - S = 0.8 x 4/7 the best pair's bias is ~0.07
    # and it lowers the loss by ~6%, not by a term of order p^4.
    W, b, loss = phase.optimum(1.0, 0.8 * 4 / 7)
    assert b.min() > 0.05 and loss < 0.95 * phase.candidate_losses(1.0, 0.8 * 4 / 7)["superposed"]


def test_the_optimum_boundary_lies_past_the_candidates_line():
    """The factors issue 14 measured: about 1.09-1.13 for r from 0.1 to 0.5, about 1.3 at r = 1 (with
    classify_regime's threshold 0.5; the pair shrinks gradually there); symmetric under r -> 1/r."""
    rs = [0.1, 0.5, 1.0, 2.0]
    factors = [b / phase.superposition_boundary(r) for r, b in zip(rs, phase.optimum_boundary(rs, iterations=6))]
    assert 1.09 < factors[0] < 1.17 and 1.05 < factors[1] < 1.13, factors  # the candidates' line would give 1.0
    assert 1.2 < factors[2] < 1.4, factors
    assert math.isclose(factors[3], factors[1], rel_tol=0.02), factors


def test_a_same_sign_pair_ties_with_a_dedicated_dimension_at_r_1():
    """Issue 14: the same-sign solution is not a collision training merely stalls at: at r = 1, dense, it costs
    exactly what a dedicated dimension costs (1/24)."""
    same_sign = phase.exact_loss(torch.tensor([[[0.5**0.5, 0.5**0.5]]]), torch.zeros(1, 2), 1.0, 1.0)
    assert math.isclose(float(same_sign), phase.candidate_losses(1.0, 1.0)["dedicated_1"], rel_tol=1e-9)
    assert math.isclose(float(same_sign), 1 / 24, rel_tol=1e-9)
    assert phase.classify_regime(torch.tensor([[[0.7, 0.7]], [[-0.7, -0.7]]])) == ["same sign", "same sign"]
