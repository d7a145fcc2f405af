"""Lesson 07's science on seeded runs (Elhage et al., 2022): superposition in a privileged basis, computation
in superposition (the absolute-value task) and correlated / anti-correlated features; and the library pieces.

Sizes are small (10 features, 2-5 neurons, 2000 steps, instances trained together) so that the module stays
within seconds on 2 cores; each tolerance is stated where it is asserted.
"""

from __future__ import annotations

import pytest
import torch

from utils import evaluate_loss, train
from utils.neurons import (NeuronModel, PairedToyModel, anticorrelated_pairs, correlated_pairs, count_neurons,
                           features_computed, pair_cosines, sides_computed, single_feature_errors)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("task, tied", [("identity", False), ("abs", False), ("identity", True)])
def test_closed_form_gradients_match_autograd(task, tied):
    model = NeuronModel(7, 3, 4, sparsity=0.5, importance=0.9 ** torch.arange(7), task=task, tied=tied, seed=1)
    with torch.no_grad():
        model.b_final.normal_(generator=torch.Generator().manual_seed(2))
    x = model.generate_batch(64, torch.Generator().manual_seed(0))
    loss = model.loss_and_grads(x)
    closed = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    reference = model.loss(x, model(x))
    reference.sum().backward()
    assert torch.allclose(loss, reference.detach(), atol=1e-7)
    for mine, theirs in zip(closed, (p.grad for p in model.parameters())):
        assert torch.allclose(mine, theirs, atol=1e-6)


def test_tied_model_reads_out_with_W1_transposed():
    model = NeuronModel(5, 2, 3, tied=True)
    assert [name for name, _ in model.named_parameters()] == ["W1", "b_final"]
    assert torch.equal(model.W2, model.W1.transpose(1, 2))


def test_abs_batches_are_signed_and_sparse():
    x = NeuronModel(6, 2, 2, sparsity=0.7, task="abs").generate_batch(20_000, torch.Generator().manual_seed(0))
    assert x.min() >= -1 and x.max() < 1 and (x < 0).any()
    assert abs((x == 0).double().mean().item() - 0.7) < 0.01                      # 6 sigma is 0.003 per entry mean
    assert abs((x[x != 0] < 0).double().mean().item() - 0.5) < 0.02


def test_count_neurons_on_hand_made_weights():
    W1 = torch.tensor([[1.0, 0.1, 0.0],      # monosemantic: feature 0 carries 99% of the squared weights
                       [1.0, 0.0, -2.0],     # monosemantic: the negative weight cannot drive it (inputs >= 0)
                       [0.8, 0.6, 0.0],      # polysemantic: 64% / 36%
                       [0.05, 0.0, -1.0]])   # dead: its positive weights have norm 0.05
    counts = count_neurons(W1)
    assert (counts["monosemantic"].item(), counts["polysemantic"].item(), counts["dead"].item()) == (2, 1, 1)
    signed = count_neurons(W1, signed_inputs=True)    # signed inputs: every weight drives (neuron 1 turns poly, 3 mono)
    assert (signed["monosemantic"].item(), signed["polysemantic"].item(), signed["dead"].item()) == (2, 2, 0)


def test_a_hand_built_abs_circuit_computes_every_side():
    """Two neurons per feature, ReLU(x) and ReLU(-x), summed: |x| exactly, for 2 features with 4 neurons."""
    model = NeuronModel(2, 4, 1, task="abs")
    with torch.no_grad():
        model.W1.copy_(torch.tensor([[[1.0, 0], [-1, 0], [0, 1], [0, -1]]]))
        model.W2.copy_(torch.tensor([[[1.0, 1, 0, 0], [0, 0, 1, 1]]]))
        model.b_final.zero_()
        errors = single_feature_errors(model)
        model.W1[0, 1] = 0                                                   # feature 0 loses its negative side
        one_sided = single_feature_errors(model)
    assert errors.max() < 1e-6
    assert abs(one_sided[0, 0].item() - 0.5) < 0.01 and sides_computed(model).item() == 3
    assert features_computed(model).item() == 1


def test_pair_batches():
    g = torch.Generator().manual_seed(0)
    p = torch.full((2, 3), 0.2)
    x = correlated_pairs(40_000, p, g)
    on = x != 0
    assert torch.equal(on[..., ::2], on[..., 1::2])                           # a pair is on together, always
    assert ((on.double().mean(dim=0) - 0.2).abs() < 0.015).all()              # 6 sigma = 0.012
    y = anticorrelated_pairs(40_000, p, g)
    on = y != 0
    assert not (on[..., ::2] & on[..., 1::2]).any()                           # never both
    assert ((on.double().mean(dim=0) - 0.2).abs() < 0.015).all()
    with pytest.raises(ValueError, match="p <= 0.5"):
        anticorrelated_pairs(4, torch.full((1, 1), 0.6))


def test_neurons_are_monosemantic_when_dense_and_polysemantic_when_sparse():
    """The paper's privileged-basis result: 10 features (importance 0.75^i) into 5 neurons, 2 seeds each.
    Dense (1 - S = 1): at least 4 of 5 neurons monosemantic in every seed (measured: 5, 5).
    Sparse (1 - S = 0.01): at least 4 of 5 polysemantic in every seed (measured: 5, 5)."""
    p = torch.tensor([1.0, 0.01]).repeat_interleave(2)
    model = NeuronModel(10, 5, 4, sparsity=1 - p, importance=0.75 ** torch.arange(10), tied=True, seed=0)
    train(model, steps=2000, batch_size=512, lr=2e-2, progress=False)
    counts = count_neurons(model.W1)
    assert (counts["monosemantic"][:2] >= 4).all(), counts
    assert (counts["polysemantic"][2:] >= 4).all(), counts


def test_more_sides_computed_than_neurons_only_when_sparse():
    """The absolute-value task, 10 features into 3 neurons, 2 seeds each. Dense: at most one side (ReLU(x) or
    ReLU(-x)) per neuron, <= 3 (measured: 2, 2). Sparse (1 - S = 0.02): at least 6 sides, twice the neurons
    (measured: 9, 8): computation in superposition. Not reproduced: the paper's whole |x| for more features
    than neurons; at CPU scale (20 -> 5 and 40 -> 10, up to 8000 steps, 1 - S down to 0.003) whole |x| stayed at
    or below the neuron count, so this test counts sides, not whole features."""
    p = torch.tensor([1.0, 0.02]).repeat_interleave(2)
    model = NeuronModel(10, 3, 4, sparsity=1 - p, importance=0.9 ** torch.arange(10), task="abs", seed=0)
    train(model, steps=2000, batch_size=1024, lr=1e-2, progress=False)
    sides = sides_computed(model)
    assert (sides[:2] <= 3).all() and (sides[2:] >= 6).all(), sides
    assert (features_computed(model)[:2] <= 1).all()                          # dense: |x| for at most 3 // 2 features


def _best_pair_cosines(n_pairs: int, correlation: str) -> torch.Tensor:
    model = PairedToyModel(n_pairs, 2, 4, correlation=correlation, sparsity=0.95, seed=0)
    train(model, steps=2000, batch_size=512, lr=1e-2, progress=False)
    best = int(evaluate_loss(model).argmin())
    return pair_cosines(model.W.detach())[best]


def test_correlated_pairs_orthogonal_anticorrelated_antipodal_and_collapse_without_room():
    """2 pairs in 2 dimensions, 1 - S = 0.05, best of 4 seeds: correlated pairs at right angles (|cos| < 0.1,
    measured 0.00), anti-correlated pairs antipodal (cos < -0.95, measured -1.00). 3 correlated pairs in 2
    dimensions: one pair collapses onto a shared direction (cos > 0.95, measured 1.00)."""
    assert (_best_pair_cosines(2, "correlated").abs() < 0.1).all()
    assert (_best_pair_cosines(2, "anticorrelated") < -0.95).all()
    assert _best_pair_cosines(3, "correlated").max() > 0.95
