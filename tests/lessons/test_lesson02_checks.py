"""Lesson 02's visible checks: the reference passes, each known wrong answer fails naming its misconception."""

import pytest
import torch
from torch import nn

from utils import ToyModel
from utils.checks import CheckFailed
from utils.checks import lesson02 as checks


def batch_ok(batch_size, n_instances, n_features, sparsity, generator=None):
    S = torch.as_tensor(sparsity, dtype=torch.float32)
    S = (S[:, None] if S.ndim == 1 else S).expand(n_instances, n_features)
    shape = (batch_size, n_instances, n_features)
    return torch.rand(shape, generator=generator) * (torch.rand(shape, generator=generator) >= S)


def batch_active_prob(batch_size, n_instances, n_features, sparsity, generator=None):
    S = torch.as_tensor(sparsity, dtype=torch.float32)
    return batch_ok(batch_size, n_instances, n_features, 1 - S, generator)


def batch_ones(batch_size, n_instances, n_features, sparsity, generator=None):
    return (batch_ok(batch_size, n_instances, n_features, sparsity, generator) > 0).float() * 0.999999


def batch_gaussian(batch_size, n_instances, n_features, sparsity, generator=None):
    x = batch_ok(batch_size, n_instances, n_features, sparsity, generator)
    return torch.where(x > 0, torch.randn(x.shape, generator=generator), x)


@pytest.mark.parametrize("wrong, words", [
    (batch_active_prob, "ACTIVE"), (batch_ones, "uniform"), (batch_gaussian, "Gaussian"),
])
def test_generate_batch_names_misconceptions(wrong, words):
    checks.check_generate_batch(batch_ok)
    with pytest.raises(CheckFailed, match=words):
        checks.check_generate_batch(wrong)


def forward_ok(W, b, x):
    return torch.relu(torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x)) + b)


def linear_part(W, x):
    return torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x))


@pytest.mark.parametrize("wrong, words", [
    (lambda W, b, x: linear_part(W, x) + b, "no ReLU"),
    (lambda W, b, x: torch.relu(linear_part(W, x)), "forgot the bias"),
    (lambda W, b, x: torch.relu(linear_part(W, x)) + b, "before adding the bias"),
    (lambda W, b, x: forward_ok(W[:1].expand_as(W), b, x), "first instance"),
    (lambda W, b, x: torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x)).transpose(1, 2), "shape"),
])
def test_forward_names_misconceptions(wrong, words):
    checks.check_forward(forward_ok, seed=1)
    with pytest.raises(CheckFailed, match=words):
        checks.check_forward(wrong, seed=1)


@pytest.mark.parametrize("wrong, words", [
    (lambda x, xh, I: ((x - xh) ** 2).mean(dim=(0, 2)), "forgot the importance"),
    (lambda x, xh, I: (I ** 2 * (x - xh) ** 2).mean(dim=(0, 2)), "squared"),
    (lambda x, xh, I: (I * (x - xh) ** 2).mean(), "one number"),
    (lambda x, xh, I: (I * (x - xh).abs()).mean(dim=(0, 2)), "absolute"),
])
def test_weighted_loss_names_misconceptions(wrong, words):
    checks.check_weighted_loss(lambda x, xh, I: (I * (x - xh) ** 2).mean(dim=(0, 2)))
    with pytest.raises(CheckFailed, match=words):
        checks.check_weighted_loss(wrong)


class TransposedModel(ToyModel):
    def __init__(self, n_features, n_hidden, n_instances=1, **kwargs):
        super().__init__(n_features, n_hidden, n_instances, **kwargs)
        self.W = nn.Parameter(self.W.detach().transpose(1, 2).clone())


def test_my_toy_model_check():
    checks.check_my_toy_model(ToyModel)  # utils' model is a correct answer
    with pytest.raises(CheckFailed, match="W has shape"):
        checks.check_my_toy_model(TransposedModel)
