"""Unit tests of utils.ToyModel, the data, training and their error messages."""

import pytest
import torch

from utils import ToyModel, evaluate_loss, sparse_features, train
from utils.data import draw_sparse


def test_shapes_follow_the_seed():
    model = ToyModel(5, 2, n_instances=3, device="cpu")
    assert model.W.shape == (3, 2, 5)  # the seed's (2, 5) per instance
    assert model.b_final.shape == (3, 5)
    x = model.generate_batch(7)
    assert x.shape == (7, 3, 5)
    assert model(x).shape == (7, 3, 5)
    assert model.loss(x, model(x)).shape == (3,)


def test_forward_matches_the_formula_for_each_instance():
    model = ToyModel(5, 2, n_instances=2, device="cpu", seed=3)
    with torch.no_grad():
        model.b_final.copy_(torch.randn(2, 5))
    x = model.generate_batch(4, torch.Generator().manual_seed(0))
    for k in range(2):
        W, b = model.W[k], model.b_final[k]
        expected = torch.relu(x[:, k] @ W.T @ W + b)  # ReLU(W^T W x + b), row-vector form
        torch.testing.assert_close(model(x)[:, k], expected)
    linear = ToyModel(5, 2, n_instances=2, activation="linear", device="cpu", seed=3)
    out = linear(x)
    torch.testing.assert_close(out[:, 0], x[:, 0] @ linear.W[0].T @ linear.W[0])


def test_sparsity_and_importance_broadcast():
    model = ToyModel(4, 2, n_instances=3, sparsity=torch.tensor([0.0, 0.5, 0.9]),
                     importance=torch.tensor([1.0, 0.5, 0.25, 0.1]), device="cpu")
    assert model.sparsity.shape == model.importance.shape == (3, 4)
    assert model.sparsity[2, 3] == pytest.approx(0.9)
    assert model.importance[1, 2] == pytest.approx(0.25)


def test_generated_features_have_the_right_distribution():
    p = torch.tensor([[1.0, 0.3, 0.05]])
    x = sparse_features(200_000, p, torch.Generator().manual_seed(0))
    active = x > 0
    torch.testing.assert_close(active.float().mean(0), p, atol=4e-3, rtol=0)  # 1 - S of the time
    for f in range(3):
        vals = x[:, 0, f][active[:, 0, f]]
        assert vals.max() < 1 and abs(vals.mean().item() - 0.5) < 0.01  # uniform on [0, 1) when active
        assert abs((vals**2).mean().item() - 1 / 3) < 0.01


def test_sparse_draws_are_the_plain_formula_bit_for_bit_in_either_layout():
    """draw_sparse scales by -1 / (p * 2**24) in one pass; the values are exactly (bits * 2**-24) / p, zero where >= 1."""
    p = torch.tensor([[1.0, 0.3, 0.05, 0.77], [0.001, 0.5, 0.999, 0.123]])
    batch = 301
    bits = torch.empty(2 * batch * 4 // 2, dtype=torch.int64).random_(generator=torch.Generator().manual_seed(4))
    u = (bits.view(torch.int32) & 0xFFFFFF).float() * 2.0**-24
    plain = u.view(2, batch, 4) / p[:, None, :]
    plain = torch.where(plain < 1, plain, 0.0)
    instance_major = draw_sparse(batch, p, torch.Generator().manual_seed(4))
    feature_major = draw_sparse(batch, p, torch.Generator().manual_seed(4), feature_major=True)
    assert instance_major.is_contiguous() and feature_major.is_contiguous() and feature_major.shape == (2, 4, batch)
    assert torch.equal(instance_major, plain) and torch.equal(feature_major, plain.transpose(1, 2))
    assert torch.equal(sparse_features(batch, p, torch.Generator().manual_seed(4)), plain.transpose(0, 1))


def test_same_seed_same_batches_and_init():
    a, b = ToyModel(5, 2, 2, seed=7, device="cpu"), ToyModel(5, 2, 2, seed=7, device="cpu")
    assert torch.equal(a.W, b.W)
    assert torch.equal(a.generate_batch(5, torch.Generator().manual_seed(1)),
                       b.generate_batch(5, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_closed_form_gradients_match_autograd(activation):
    model = ToyModel(6, 3, n_instances=4, sparsity=torch.tensor([0.0, 0.5, 0.8, 0.95]),
                     importance=0.8 ** torch.arange(6), activation=activation, device="cpu", seed=1)
    with torch.no_grad():
        model.b_final.copy_(0.1 * torch.randn(4, 6))
    x = model.generate_batch(64, torch.Generator().manual_seed(2))
    loss = model.loss_and_grads(x)
    grads = model.W.grad.clone(), model.b_final.grad.clone()
    model.zero_grad()
    reference = model.loss(x, model(x))
    reference.sum().backward()
    torch.testing.assert_close(loss, reference.detach())
    torch.testing.assert_close(grads[0], model.W.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads[1], model.b_final.grad, rtol=1e-4, atol=1e-6)


def test_subclass_that_changes_forward_trains_with_autograd():
    class Tied(ToyModel):
        def forward(self, x):
            return super().forward(x) * 0.5

    model = Tied(4, 2, device="cpu")
    x = model.generate_batch(16, torch.Generator().manual_seed(0))
    loss = model.loss_and_grads(x)
    torch.testing.assert_close(loss, model.loss(x, model(x)).detach())


def test_train_lowers_the_loss_and_returns_history():
    model = ToyModel(5, 2, n_instances=3, sparsity=0.9, device="cpu")
    before = evaluate_loss(model)
    history = train(model, steps=300, lr=1e-2, progress=False)
    assert history.shape == (300, 3)
    assert (evaluate_loss(model) < 0.7 * before).all()


def test_train_is_reproducible():
    runs = []
    for _ in range(2):
        model = ToyModel(5, 2, n_instances=2, sparsity=0.7, device="cpu", seed=4)
        runs.append(train(model, steps=50, progress=False, seed=9))
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(sparsity=1.0), "sparsity must be in [0, 1)"),
    (dict(sparsity=-0.1), "sparsity must be in [0, 1)"),
    (dict(sparsity=float("nan")), "sparsity must be in [0, 1)"),
    (dict(importance=float("inf")), "importance must be finite"),
    (dict(importance=torch.ones(4)), "needs shape (5,)"),
    (dict(sparsity=torch.zeros(2)), "needs shape (3,)"),
    (dict(sparsity=torch.zeros(3, 4)), "expected a float"),
    (dict(activation="gelu"), "activation must be"),
])
def test_bad_arguments_get_actionable_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        ToyModel(5, 2, n_instances=3, device="cpu", **kwargs)


def test_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match="n_hidden must be a positive integer"):
        ToyModel(5, 0)
    model = ToyModel(5, 2, n_instances=3, device="cpu")
    with pytest.raises(ValueError, match=r"\(batch, n_instances, n_features\) = \(batch, 3, 5\)"):
        model(torch.zeros(8, 5))


def test_select_copies_one_instance_of_the_same_class():
    from utils import sycophancy as syc
    model = syc.SycophancyModel(3, n_instances=4, seed=2)
    one = model.select(2)
    assert type(one) is syc.SycophancyModel and one.n_instances == 1
    assert torch.equal(one.W[0], model.W[2]) and one.sparsity.shape == (1, 8)
    assert one.generate_batch(5).shape == (5, 1, 8)
    with pytest.raises(ValueError, match="instances 0 to 3"):
        model.select(4)


@pytest.mark.parametrize("n_features, n_hidden, n_instances", [(5, 2, 3), (40, 6, 9), (129, 3, 17)])
def test_chunked_training_step_matches_autograd_on_generate_batch(n_features, n_hidden, n_instances):
    """sample_loss_and_grads draws the batch chunk by chunk; the values, loss and gradients are generate_batch's."""
    model = ToyModel(n_features, n_hidden, n_instances, sparsity=0.7, device="cpu", seed=3)
    with torch.no_grad():
        model.b_final.copy_(0.1 * torch.randn(n_instances, n_features))
    batch = 2048 if n_features < 100 else 2049  # 129 * 2049 is odd: the one-chunk path
    loss = model.sample_loss_and_grads(batch, torch.Generator().manual_seed(5))
    grads = model.W.grad.clone(), model.b_final.grad.clone()
    generator = torch.Generator().manual_seed(5)
    x = model.generate_batch(batch, generator)
    model.zero_grad()
    reference = model.loss(x, model(x))
    reference.sum().backward()
    torch.testing.assert_close(loss, reference.detach())
    torch.testing.assert_close(grads[0], model.W.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads[1], model.b_final.grad, rtol=1e-4, atol=1e-6)
