"""Visible checks for lesson 02 (the toy model). Each exercise: probe_*, judge_*, check_*."""

from __future__ import annotations

import math

import torch

from utils import ToyModel, train
from utils.checks import Plain, as_tensor, call_learner, close, expect_shape, fail, make_check
from utils.device import make_generator


def _generator(seed: int) -> torch.Generator:
    return make_generator(2000 + seed, torch.device("cpu"))


def _reference_model(seed: int, n_features: int = 5, n_hidden: int = 2, n_instances: int = 3) -> ToyModel:
    model = ToyModel(n_features, n_hidden, n_instances, sparsity=0.7, importance=0.8 ** torch.arange(n_features),
                     device="cpu", seed=seed)
    with torch.no_grad():  # a bias with both signs, so that a missing ReLU or bias shows
        model.b_final.copy_(torch.randn(n_instances, n_features, generator=_generator(seed)) * 0.3)
    return model


def _batch(model: ToyModel, seed: int) -> torch.Tensor:
    return model.generate_batch(16, _generator(seed + 100))


# --- generate_batch ------------------------------------------------------------------------------

SPARSITY_CASES = (torch.tensor([0.0, 0.5, 0.9]), torch.tensor([[0.2, 0.8, 0.95, 0.5]] * 2))
BATCH = 3000


def probe_generate_batch(generate_batch, seed: int) -> Plain:
    data: Plain = {}
    for k, sparsity in enumerate(SPARSITY_CASES):
        n_instances, n_features = (3, 6) if sparsity.ndim == 1 else tuple(sparsity.shape)
        x = call_learner(generate_batch, BATCH, n_instances, n_features, sparsity.clone(), _generator(seed))
        data[f"case{k}"] = as_tensor(x, "generate_batch(...)")
    return data


def judge_generate_batch(data: Plain, seed: int) -> str:
    for k, sparsity in enumerate(SPARSITY_CASES):
        n_instances, n_features = (3, 6) if sparsity.ndim == 1 else tuple(sparsity.shape)
        x = data[f"case{k}"]
        expect_shape(x, (BATCH, n_instances, n_features), "generate_batch(batch_size, n_instances, n_features, ...)",
                     "The layout is (batch, n_instances, n_features).")
        if (x < 0).any():
            fail("some features are negative: active features are uniform in [0, 1) (torch.rand), not Gaussian.")
        if (x >= 1).any():
            fail("some features are >= 1: active values are uniform in [0, 1).")
        S = sparsity[:, None].expand(n_instances, n_features) if sparsity.ndim == 1 else sparsity
        zeros = (x == 0).float().mean(dim=0)
        tolerance = 4 * torch.sqrt(S * (1 - S) / BATCH) + 1e-3
        if ((zeros - (1 - S)).abs() <= tolerance).all() and ((S - 0.5).abs() > 0.1).any():
            fail("features are zero with probability 1 - S: you used S as the probability of being ACTIVE. "
                 "S (sparsity) is the probability a feature is zero.")
        if not ((zeros - S).abs() <= tolerance).all():
            fail(f"the fraction of zeros per feature should be S; got {zeros.mean(dim=1).tolist()} per instance "
                 f"for S = {S.mean(dim=1).tolist()}. Does each instance use its own sparsity?")
        active = x[x > 0]
        if active.numel() and (active == 1).float().mean() > 0.5:
            fail("active features all equal 1: an active feature's value is uniform in [0, 1).")
        if active.numel() > 100 and abs(active.mean().item() - 0.5) > 0.03:
            fail(f"active values average {active.mean().item():.3f}; uniform [0, 1) values average 0.5.")
        mask = (x > 0).float()
        if n_features > 1 and S.max() > 0 and (mask == mask[:, :, :1]).all():
            fail("within a sample, every feature is on or off together: draw an independent mask per feature.")
    return "generate_batch: shape, sparsity per instance and per feature, values uniform in [0, 1)"


check_generate_batch = make_check(probe_generate_batch, judge_generate_batch)


# --- forward -------------------------------------------------------------------------------------

def probe_forward(forward, seed: int) -> Plain:
    model = _reference_model(seed)
    x = _batch(model, seed)
    out = call_learner(forward, model.W.detach().clone(), model.b_final.detach().clone(), x.clone())
    return {"out": as_tensor(out, "forward(W, b, x)")}


def judge_forward(data: Plain, seed: int) -> str:
    model = _reference_model(seed)
    x = _batch(model, seed)
    W, b = model.W.detach(), model.b_final.detach()
    got = data["out"]
    expect_shape(got, tuple(x.shape), "forward(W, b, x)", "It maps (batch, n_instances, n_features) to the same "
                 "shape; W is (n_instances, n_hidden, n_features): h = W x is (batch, n_instances, n_hidden).")
    z = torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x))
    with torch.no_grad():
        want = model(x)
    if close(got, z + b):
        fail("no ReLU: the output is ReLU(W^T W x + b); without it the model is linear (lesson 02 explains why "
             "that matters).")
    if close(got, torch.relu(z)):
        fail("you forgot the bias b: the output is ReLU(W^T W x + b).")
    if close(got, torch.relu(z) + b):
        fail("the ReLU is applied before adding the bias: add b first, then ReLU(W^T W x + b).")
    mixed = torch.relu(torch.einsum("hf,bih->bif", W[0], torch.einsum("hf,bif->bih", W[0], x)) + b)
    if close(got, mixed):
        fail("every instance used the first instance's W: each instance i has its own W[i] and b[i].")
    if (got < 0).any():
        fail("negative outputs: the ReLU is missing or applied too early.")
    if not close(got, want, atol=1e-4):
        fail("values differ from ReLU(W^T W x + b). Check the orientation: h = W x uses W (n_hidden, n_features) "
             "per instance, the read-out is W^T h (not W W^T).")
    return "forward: shape, ReLU after the bias, per-instance weights, values match utils.ToyModel"


check_forward = make_check(probe_forward, judge_forward)


# --- weighted_loss -------------------------------------------------------------------------------

def _loss_inputs(seed: int) -> tuple[ToyModel, torch.Tensor, torch.Tensor]:
    model = _reference_model(seed)
    x = _batch(model, seed)
    with torch.no_grad():
        x_hat = model(x)
    return model, x, x_hat


def probe_weighted_loss(weighted_loss, seed: int) -> Plain:
    model, x, x_hat = _loss_inputs(seed)
    loss = call_learner(weighted_loss, x.clone(), x_hat.clone(), model.importance.clone())
    return {"loss": as_tensor(loss, "weighted_loss(x, x_hat, importance)")}


def judge_weighted_loss(data: Plain, seed: int) -> str:
    model, x, x_hat = _loss_inputs(seed)
    got, I = data["loss"], model.importance
    want = model.loss(x, x_hat)
    if got.numel() == 1 and want.numel() > 1:
        fail("you returned one number: the loss is per instance, shape (n_instances,), so that each instance "
             "trains independently. Average over batch and features only (dim=(0, 2)).")
    expect_shape(got, tuple(want.shape), "weighted_loss(x, x_hat, importance)", "One loss per instance.")
    err = x - x_hat
    for wrong, message in (
        ((err ** 2).mean(dim=(0, 2)), "you forgot the importance: each feature's squared error is weighted by it."),
        ((I ** 2 * err ** 2).mean(dim=(0, 2)), "the importance is squared: weight the squared error by I_i, not I_i^2."),
        ((I * err.abs()).mean(dim=(0, 2)), "that is an absolute error: the paper's loss uses the squared error."),
        ((I * err ** 2).sum(dim=(0, 2)), "you summed over batch and features: average them (the paper's loss is a mean)."),
        ((I * err ** 2).sum(dim=2).mean(dim=0), "you summed over features: average over batch AND features, as utils does."),
    ):
        if close(got, wrong) and not close(wrong, want):
            fail(message)
    if not close(got, want, atol=1e-6):
        fail("values differ from mean over batch and features of importance * (x - x_hat)^2.")
    return "weighted_loss: per instance, importance-weighted squared error, averaged like utils.ToyModel.loss"


check_weighted_loss = make_check(probe_weighted_loss, judge_weighted_loss)


# --- MyToyModel ----------------------------------------------------------------------------------

def probe_my_toy_model(MyToyModel, seed: int) -> Plain:
    reference = _reference_model(seed)
    torch.manual_seed(seed)
    model = call_learner(MyToyModel, 5, 2, 3, sparsity=0.7, importance=0.8 ** torch.arange(5))
    data: Plain = {"W_shape": list(getattr(getattr(model, "W", None), "shape", [])),
                   "b_shape": list(getattr(getattr(model, "b_final", None), "shape", []))}
    if data["W_shape"] != [3, 2, 5] or data["b_shape"] != [3, 5]:
        return data
    data["init_std"] = float(model.W.detach().std())
    with torch.no_grad():
        model.W.copy_(reference.W)
        model.b_final.copy_(reference.b_final)
        x = _batch(reference, seed)
        out = model(x.clone())
        data["out"] = as_tensor(out, "model(x)")
        data["loss"] = as_tensor(model.loss(x, out), "model.loss(x, x_hat)")
    fresh = call_learner(MyToyModel, 5, 2, 3, sparsity=0.7, importance=0.8 ** torch.arange(5))
    history = train(fresh, steps=300, batch_size=256, lr=1e-2, seed=seed, progress=False)
    data["loss_start"], data["loss_end"] = history[:20].mean().item(), history[-20:].mean().item()
    return data


def judge_my_toy_model(data: Plain, seed: int) -> str:
    if data["W_shape"] != [3, 2, 5]:
        fail(f"MyToyModel(5, 2, 3).W has shape {tuple(data['W_shape'])}; expected (n_instances, n_hidden, "
             "n_features) = (3, 2, 5), an nn.Parameter named W.")
    if data["b_shape"] != [3, 5]:
        fail(f"b_final has shape {tuple(data['b_shape'])}; expected (n_instances, n_features) = (3, 5).")
    if not 0.2 < data["init_std"] < 1.5:
        fail(f"W starts with standard deviation {data['init_std']:.3f}: initialise it with "
             "nn.init.xavier_normal_ (about sqrt(2 / (n_hidden + n_features)) = 0.53 here).")
    reference = _reference_model(seed)
    x = _batch(reference, seed)
    with torch.no_grad():
        out = reference(x)
    expect_shape(data["out"], tuple(out.shape), "model(x)")
    if not close(data["out"], out, atol=1e-4):
        fail("with utils.ToyModel's W and b_final loaded, your forward differs: reuse your forward(W, b, x).")
    if not close(data["loss"], reference.loss(x, out), atol=1e-6):
        fail("model.loss(x, x_hat) differs from the importance-weighted loss: reuse weighted_loss with "
             "the model's importance, and keep its shape (n_instances,).")
    if not (math.isfinite(data["loss_end"]) and data["loss_end"] < 0.8 * data["loss_start"]):
        fail(f"training with utils.train did not lower the loss ({data['loss_start']:.4f} -> {data['loss_end']:.4f}): "
             "is generate_batch(batch_size, generator) drawing with the model's sparsity, and are W and b_final "
             "nn.Parameters?")
    return "MyToyModel: parameter shapes, initialisation, forward and loss match utils.ToyModel, and it trains"


check_my_toy_model = make_check(probe_my_toy_model, judge_my_toy_model)


EXERCISES = {
    "test_generate_batch": ("generate_batch", probe_generate_batch, judge_generate_batch),
    "test_forward": ("forward", probe_forward, judge_forward),
    "test_weighted_loss": ("weighted_loss", probe_weighted_loss, judge_weighted_loss),
    "test_my_toy_model": ("MyToyModel", probe_my_toy_model, judge_my_toy_model),
}
