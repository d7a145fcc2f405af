"""utils.packing: the bounds against the inequalities they come from and against known optimal packings; the
constructions lesson 01 quotes (issue 14: higher-order bounds beyond n = 100, the simplex at equality, the signed
reading, greedy counts that grow with effort)."""

import math

import pytest
import torch

from utils import packing

EPS = 0.1


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def largest_n_allowed(D: float, e: float) -> int:
    """Brute force: the largest N with N + N (N - 1) e >= N^2 / D, the inequality every Welch order comes from
    (sum over i, j of cos^2k: N diagonal terms equal to 1, N (N - 1) others at most e = eps^2k). It holds for
    every N up to the answer and for none beyond (a quadratic in N, 0 at N = 0), so count up until it fails."""
    N = 1
    while (N + 1) + (N + 1) * N * e >= (N + 1) ** 2 / D * (1 - 1e-12):
        N += 1
    return N


def test_each_welch_order_is_the_largest_n_its_inequality_allows():
    for dim, eps, order in ((10, 0.1, 1), (50, 0.1, 1), (3, 1 / 3, 1), (20, 0.1, 2), (100, 0.1, 2), (12, 0.2, 2),
                            (30, 0.1, 3), (5, 0.5, 3)):
        D = math.comb(dim + order - 1, order)
        assert packing.max_vectors_welch_order(dim, eps, order) == largest_n_allowed(D, eps ** (2 * order)), \
            (dim, eps, order)
    for dim in (10, 50, 90, 99):
        assert packing.max_vectors_welch_order(dim, EPS, 1) == packing.max_vectors_welch(dim, EPS)


def test_the_tensor_power_inequality_holds_on_random_and_structured_vectors():
    """sum_{i,j} cos^2k >= N^2 / C(n + k - 1, k): the rank argument behind every order, checked on vectors."""
    g = torch.Generator().manual_seed(0)
    for dim, N in ((3, 7), (4, 12), (6, 30)):
        for V in (torch.randn(dim, N, generator=g, dtype=torch.float64), packing.simplex(dim)):
            V = V / V.norm(dim=0)
            cos = V.T @ V
            for order in (1, 2, 3):
                assert (cos ** (2 * order)).sum() >= V.shape[1] ** 2 / math.comb(dim + order - 1, order) - 1e-9


def test_beyond_n_100_the_higher_orders_and_levenshtein_still_bound_the_count():
    """The old text: 'beyond n = 100 the Welch bound says nothing'. Only the first order does: order 2 allows
    10,201 at n = 100 (the number in issue 14), Levenshtein 5,100, and some order is finite at every n."""
    assert packing.max_vectors_welch(100, EPS) == math.inf
    assert packing.max_vectors_welch_order(100, EPS, 2) == 10_201
    assert packing.max_vectors_levenshtein(100, EPS) == 5_100
    for dim in (100, 150, 300, 1_000, 5_000):
        assert min(packing.max_vectors_welch_order(dim, EPS, k) for k in range(1, 200)) < math.inf, dim
    assert packing.max_vectors_levenshtein(298, EPS) == math.inf  # (n + 2) eps^2 = 3: this one does stop


def test_the_bounds_hold_for_optimal_line_packings_and_levenshtein_is_tight_where_known():
    """N lines in R^2 at best have max |cos| = cos(pi / N) (equally spaced); 6 in R^3 at 1/sqrt 5 (icosahedron),
    28 in R^7 at 1/3 and 276 in R^23 at 1/5 (the equiangular lines that meet Levenshtein's bound)."""
    for N in range(3, 40):
        eps = math.cos(math.pi / N)
        bounds = [packing.max_vectors_welch_order(2, eps, k) for k in (1, 2, 3)]
        bounds.append(packing.max_vectors_levenshtein(2, eps))
        assert all(b >= N for b in bounds), (N, bounds)
    assert packing.max_vectors_levenshtein(2, 0.5) == 3 and packing.max_vectors_levenshtein(2, 0.5**0.5) == 4
    assert packing.max_vectors_levenshtein(2, 0.75) == 4   # five lines need cos 36 degrees = 0.809
    for dim, eps, N in ((3, 5**-0.5, 6), (7, 1 / 3, 28), (23, 1 / 5, 276)):
        assert packing.max_vectors_levenshtein(dim, eps) == N


def test_the_simplex_meets_the_welch_bound_and_packed_count_reports_it():
    """The old packed_count(10, 0.1) was 10: gradient descent only approaches the simplex's |cos| = 0.1 from above."""
    for dim in (2, 4, 10):
        V = packing.simplex(dim)
        off = (V.T @ V)[~torch.eye(dim + 1, dtype=torch.bool)]
        assert V.shape == (dim, dim + 1) and torch.allclose(off, torch.full_like(off, -1 / dim), atol=1e-12)
    assert packing.max_vectors_welch(10, EPS) == 11 == packing.packed_count(10, EPS)
    assert 1 + 1 / EPS == 11   # and it reaches the cap on vectors with every cos <= -eps


def test_signed_cos_at_most_a_tenth_allows_no_more_than_2n_in_the_plane():
    """The old text: 'allowing up to +0.1 admits more still' (than 2n). In R^2, 5 directions need cos 72 degrees."""
    five = packing.pack_many(2, [5], restarts=4, steps=300, seed=0, signed=True)[0]
    assert EPS < math.cos(2 * math.pi / 5) - 1e-6 <= five <= 0.33   # the pentagon's 0.309: never below, found near
    doubled = torch.cat([packing.simplex(10), -packing.simplex(10)], dim=1)
    cos = (doubled.T @ doubled)[~torch.eye(22, dtype=torch.bool)]
    assert cos.max() <= EPS + 1e-12                                 # but by n = 10, 2n + 2 fit


def test_greedy_counts_are_lower_bounds_that_grow_with_the_budget():
    """A count from a longer search includes the shorter one's, and 4x the candidates keeps more at n = 200."""
    counts = packing.greedy_counts(200, EPS, budgets=(1_280, 5_120, 20_480), seed=0)
    assert counts == sorted(counts) and counts[-1] > 1.1 * counts[-2] > counts[0]
    assert packing.greedy_counts(200, EPS, budgets=(5_120,), seed=0) == counts[1:2]


def test_kabatiansky_levenshtein_rate_matches_the_kissing_number_bound():
    """At cos = 1/2 (kissing configurations) the KL exponent is the known 0.401 bits per dimension."""
    assert abs(packing.kabatiansky_levenshtein_rate(0.5) / math.log(2) - 0.4014) < 1e-3
    assert 0.0175 < packing.kabatiansky_levenshtein_rate(EPS) < 0.0177
