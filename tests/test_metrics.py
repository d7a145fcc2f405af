"""utils.metrics on matrices whose answers are known in closed form."""

import math

import pytest
import torch

from utils import metrics


def pentagon() -> torch.Tensor:
    angles = torch.arange(5) * 2 * math.pi / 5
    return torch.stack([angles.cos(), angles.sin()])  # (2, 5), the seed's picture


def test_orthogonal_features_are_not_superposed():
    W = torch.eye(3)
    assert torch.equal(metrics.superposition(W), torch.zeros(3))
    torch.testing.assert_close(metrics.feature_dimensionality(W), torch.ones(3))
    torch.testing.assert_close(metrics.cosine_similarities(W), torch.eye(3))


def test_pentagon_gets_two_fifths_of_a_dimension_each():
    W = pentagon()
    torch.testing.assert_close(metrics.feature_dimensionality(W), torch.full((5,), 0.4))
    torch.testing.assert_close(metrics.dimensions_per_feature(W), torch.tensor(0.4))
    cos = metrics.cosine_similarities(W)
    assert cos[0, 1].item() == pytest.approx(math.cos(2 * math.pi / 5), abs=1e-6)  # signed, not |cos|
    assert cos[0, 2].item() < 0


def test_antipodal_pair_and_unrepresented_feature():
    W = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1]])  # a pair, a dead and a weak feature
    torch.testing.assert_close(metrics.feature_dimensionality(W)[:2], torch.full((2,), 0.5))
    assert metrics.represented_features(W).item() == 2
    assert metrics.antipodal_pairs(W).item() == 1
    assert metrics.feature_dimensionality(torch.zeros(2, 3)).abs().max() == 0  # no nan for dead features


def test_batched_and_single_agree():
    W = torch.randn(4, 3, 7)
    for fn in (metrics.feature_norms, metrics.superposition, metrics.feature_dimensionality, metrics.cosine_similarities):
        torch.testing.assert_close(fn(W)[2], fn(W[2]))
    assert metrics.cosine_similarities(W).shape == (4, 7, 7)


def test_superposition_matches_its_definition():
    W = torch.randn(3, 6)
    W_hat = W / W.norm(dim=0)
    expected = torch.tensor([sum((W_hat[:, i] @ W[:, j]) ** 2 for j in range(6) if j != i) for i in range(6)])
    torch.testing.assert_close(metrics.superposition(W), expected)


def test_bad_shape_is_explained():
    with pytest.raises(ValueError, match="n_hidden, n_features"):
        metrics.feature_norms(torch.zeros(5))
