"""Answer key of lesson 02 (the toy model): references, known wrong answers, input builders.

The references are the library's: utils.data.sparse_features (generate_batch), utils.ToyModel's forward and
loss, and utils.ToyModel itself (MyToyModel). The wrong answers of MyToyModel are ToyModel with one mistake
each (fast to train: ToyModel has closed-form gradients), or a student-style model where the mistake is in
forward or loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grader.key import Exercise, Wrong, integer, uniform
from utils.data import sparse_features
from utils.model import ToyModel

LESSON = "02_toy_model"
CHECKS = "utils.checks.lesson02"


def _seeds(g: torch.Generator, k: int) -> list[int]:
    """k different seeds."""
    while True:
        seeds = torch.randint(0, 2**31 - 1, (k,), generator=g).tolist()
        if len(set(seeds)) == k:
            return seeds


def _away_from_half(g: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    """Values in [low, high] or [1 - high, 1 - low] (low > 0.5): S and 1 - S always far apart."""
    values = low + (high - low) * torch.rand(shape, generator=g)
    flip = torch.rand(shape, generator=g) < 0.5
    return torch.where(flip, 1 - values, values).mul(1e4).round().div(1e4)


def _sparse(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=g) * (torch.rand(shape, generator=g) < 0.5)


def _grid(sparsity, n_instances: int, n_features: int) -> torch.Tensor:
    S = torch.as_tensor(sparsity, dtype=torch.float32)
    return (S[:, None] if S.ndim == 1 else S).expand(n_instances, n_features)


# --- generate_batch ------------------------------------------------------------------------------

def generate_batch_inputs(g: torch.Generator) -> dict:
    def case(n_instances: int, n_features: int, sparsity) -> dict:
        return {"args": [integer(g, 800, 1200), n_instances, n_features, sparsity], "seeds": _seeds(g, 3),
                "small_batch": integer(g, 48, 64), "global_seed": _seeds(g, 1)[0]}

    n_instances, n_features = integer(g, 2, 4), integer(g, 4, 7)
    one = case(n_instances, n_features, round(uniform(g, 0.6, 0.9), 4))
    n_instances, n_features = integer(g, 2, 4), integer(g, 5, 7)  # n_features != n_instances: a 1-D S cannot pass as per feature
    per_instance = case(n_instances, n_features, _away_from_half(g, (n_instances,), 0.7, 0.95))
    n_instances, n_features = integer(g, 2, 3), integer(g, 4, 6)
    per_feature = case(n_instances, n_features, _away_from_half(g, (n_instances, n_features), 0.65, 0.9))
    return {"one S": one, "S per instance": per_instance, "S per feature": per_feature}


def reference_generate_batch(batch_size, n_instances, n_features, sparsity, generator=None):
    """utils.data.sparse_features, which takes the probability of being active, 1 - S."""
    return sparse_features(batch_size, 1 - _grid(sparsity, n_instances, n_features), generator)


def _batch(batch_size, n_instances, n_features, sparsity, generator=None, *, active_if=lambda u, S: u >= S,
           values=None, mask_shape=None, mask_generator=True, grid=_grid):
    """generate_batch with one mistake: how a feature is active, its values, the mask's shape or its generator."""
    S = grid(sparsity, n_instances, n_features)
    shape = (batch_size, n_instances, n_features)
    x = torch.rand(shape, generator=generator) if values is None else values(shape, generator)
    u = torch.rand(mask_shape(shape) if mask_shape else shape, generator=generator if mask_generator else None)
    return x * active_if(u, S)


def _per_feature_grid(sparsity, n_instances, n_features):
    S = torch.as_tensor(sparsity, dtype=torch.float32)
    return S.expand(n_instances, n_features)  # a 1-D S broadcast along the features


GENERATE_BATCH = Exercise(
    name="generate_batch", points=2, inputs=generate_batch_inputs, reference=reference_generate_batch,
    answers=("utils.data.sparse_features", "utils.data.draw_sparse"),
    wrong=(
        Wrong("s_is_active_probability", "features are zero with probability 1 - S: you used S as the probability of "
              "being ACTIVE. S (sparsity) is the probability a feature is zero; it is active with probability 1 - S.",
              lambda *a, **k: _batch(*a, **k, active_if=lambda u, S: u < S)),
        Wrong("gaussian_values", "some features are negative (or above 1): active features are uniform in [0, 1) "
              "(torch.rand), not Gaussian (torch.randn).",
              lambda *a, **k: _batch(*a, **k, values=lambda shape, g: torch.randn(shape, generator=g))),
        Wrong("active_values_one", "active features all equal 1 (or one constant): an active feature's value is "
              "uniform in [0, 1); multiply the mask by a torch.rand draw.",
              lambda *a, **k: _batch(*a, **k, values=lambda shape, g: torch.full(shape, 0.999999))),
        Wrong("shared_mask", "within a sample, the features of an instance are on or off together: draw an "
              "independent mask for every feature (the mask has the batch's full shape).",
              lambda *a, **k: _batch(*a, **k, mask_shape=lambda shape: (*shape[:2], 1))),
        Wrong("generator_not_passed", "the same generator seed gave different batches: pass `generator` to every "
              "torch.rand call (values and mask), so that batches are reproducible.",
              lambda *a, **k: _batch(*a, **k, mask_generator=False)),
        Wrong("sparsity_per_feature", "a 1-D sparsity holds one S per instance, shape (n_instances,): broadcast it "
              "along the features (S[:, None]), not along the instances.",
              lambda *a, **k: _batch(*a, **k, grid=_per_feature_grid)),
    ),
    spec="Return a float tensor (batch_size, n_instances, n_features): each entry is independently 0 with "
         "probability S, else uniform in [0, 1), every draw made with `generator`. S is a float, one per instance "
         "(n_instances,) or one per instance and feature (n_instances, n_features).",
    passed="generate_batch: shape, sparsity per instance and per feature, uniform values, independent features, "
           "reproducible with its generator",
)


# --- forward -------------------------------------------------------------------------------------

def forward_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name, n_instances in (("instances", integer(g, 2, 4)), ("one instance", 1)):
        n_hidden, n_features = integer(g, 2, 3), integer(g, 5, 7)
        W = 0.8 * torch.randn(n_instances, n_hidden, n_features, generator=g)
        b = 0.3 * torch.randn(n_instances, n_features, generator=g)  # both signs: a missing ReLU or bias shows
        cases[name] = {"args": [W, b, _sparse(g, integer(g, 8, 16), n_instances, n_features)]}
    return cases


def _model(W: torch.Tensor, b: torch.Tensor | None = None, importance=1.0) -> ToyModel:
    n_instances, n_hidden, n_features = W.shape
    model = ToyModel(n_features, n_hidden, n_instances, importance=importance, device="cpu")
    with torch.no_grad():
        model.W.copy_(W)
        if b is not None:
            model.b_final.copy_(b)
    return model


def reference_forward(W, b, x):
    """utils.ToyModel's forward with W and b loaded."""
    with torch.no_grad():
        return _model(W, b)(x)


def _linear(W, x):
    return torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x))


FORWARD = Exercise(
    name="forward", points=2, inputs=forward_inputs, reference=reference_forward,
    answers=("utils.model.ToyModel",), atol=1e-4,
    wrong=(
        Wrong("no_relu", "no ReLU: the output is ReLU(W^T W x + b); without it the model is linear (section 7 of "
              "this lesson shows why that matters).", lambda W, b, x: _linear(W, x) + b),
        Wrong("no_bias", "you forgot the bias b: the output is ReLU(W^T W x + b).",
              lambda W, b, x: torch.relu(_linear(W, x))),
        Wrong("relu_before_bias", "the ReLU is applied before adding the bias: add b first, then take "
              "ReLU(W^T W x + b).", lambda W, b, x: torch.relu(_linear(W, x)) + b),
        Wrong("first_instance_W", "every instance used the first instance's W: each instance i has its own W[i] "
              "and b[i] (keep the index i in the einsum).",
              lambda W, b, x: torch.relu(_linear(W[:1].expand_as(W), x) + b)),
        Wrong("transposed_output", "the output has shape (batch, n_features, n_instances): keep the layout "
              "(batch, n_instances, n_features), the shape of x.",
              lambda W, b, x: torch.relu(_linear(W, x) + b).transpose(1, 2)),
        Wrong("transposed_linear_part", "the output is transposed, (batch, n_features, n_instances) instead of the "
              "shape of x, and it is only the linear part W^T W x: keep x's layout, add b, then apply the ReLU.",
              lambda W, b, x: _linear(W, x).transpose(1, 2)),
    ),
    hints={"one instance": "It should work for a single instance (n_instances = 1) too.",
           "instances": "Check the orientation: h = W x uses each instance's W (n_hidden, n_features); the "
                        "read-out is W^T h (not W W^T)."},
    spec="forward(W, b, x) = ReLU(W^T W x + b) for each instance, shape (batch, n_instances, n_features).",
    passed="forward: shape, ReLU after the bias, per-instance weights, values match utils.ToyModel",
)


# --- weighted_loss -------------------------------------------------------------------------------

def weighted_loss_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name, n_instances in (("instances", integer(g, 2, 4)), ("one instance", 1)):
        n_features, batch = integer(g, 3, 7), integer(g, 8, 32)
        x = _sparse(g, batch, n_instances, n_features)
        x_hat = torch.relu(x + 0.3 * torch.randn(x.shape, generator=g))
        importance = 0.2 + 0.75 * torch.rand(n_instances, n_features, generator=g)  # never 0 or 1: I != I^2
        cases[name] = {"args": [x, x_hat, importance]}
    return cases


def reference_weighted_loss(x, x_hat, importance):
    """utils.ToyModel's loss with that importance."""
    n_instances, n_features = importance.shape
    return _model(torch.zeros(n_instances, 1, n_features), importance=importance).loss(x, x_hat)


WEIGHTED_LOSS = Exercise(
    name="weighted_loss", points=1, inputs=weighted_loss_inputs, reference=reference_weighted_loss,
    answers=("utils.model.ToyModel", "utils.neurons.NeuronModel"), atol=1e-6,
    wrong=(
        Wrong("no_importance", "you forgot the importance: each feature's squared error is weighted by it.",
              lambda x, xh, I: ((x - xh) ** 2).mean(dim=(0, 2))),
        Wrong("squared_importance", "the importance is squared: weight the squared error by I_i, not I_i^2.",
              lambda x, xh, I: (I**2 * (x - xh) ** 2).mean(dim=(0, 2))),
        Wrong("absolute_error", "that is an absolute error: the paper's loss uses the squared error.",
              lambda x, xh, I: (I * (x - xh).abs()).mean(dim=(0, 2))),
        Wrong("summed", "you summed over batch and features: average them. The paper writes its loss as a sum; this "
              "lesson's loss is that sum divided by batch size x n_features, the convention utils uses.",
              lambda x, xh, I: (I * (x - xh) ** 2).sum(dim=(0, 2))),
        Wrong("summed_features", "you summed over features: average over batch AND features, as utils does.",
              lambda x, xh, I: (I * (x - xh) ** 2).sum(dim=2).mean(dim=0)),
        Wrong("one_number", "you returned one number: the loss is per instance, shape (n_instances,), so that each "
              "instance trains independently. Average over batch and features only (dim=(0, 2)).",
              lambda x, xh, I: (I * (x - xh) ** 2).mean()),
    ),
    spec="weighted_loss(x, x_hat, importance) = mean over batch and features of importance * (x - x_hat)^2, one "
         "value per instance, shape (n_instances,).",
    passed="weighted_loss: per instance, importance-weighted squared error, averaged like utils.ToyModel.loss",
)


# --- MyToyModel ----------------------------------------------------------------------------------

def my_toy_model_inputs(g: torch.Generator) -> dict:
    n_features, n_hidden, n_instances = integer(g, 5, 7), 2, integer(g, 2, 4)  # 2 dimensions: superposition, negative bias
    sparsity = (0.85 + 0.08 * torch.rand(n_instances, generator=g)).mul(1e4).round().div(1e4)
    importance = (0.5 + 0.5 * torch.rand(n_features, generator=g)).mul(1e4).round().div(1e4)
    seed, s0, s1, s2, train_seed, eval_seed = _seeds(g, 6)
    x = _sparse(g, 16, n_instances, n_features)
    return {"model": {
        "args": [n_features, n_hidden, n_instances], "kwargs": {"sparsity": sparsity, "importance": importance},
        "seed": seed, "constructions": 20,
        "W": 0.5 * torch.randn(n_instances, n_hidden, n_features, generator=g),
        "b_final": 0.3 * torch.randn(n_instances, n_features, generator=g),
        "x": x, "x_hat": torch.relu(x + 0.3 * torch.randn(x.shape, generator=g)),
        "batch_size": 1000, "batch_seeds": [s0, s1, s2], "small_batch": 32,
        "W0": math.sqrt(2 / (n_hidden + n_features)) * torch.randn(n_instances, n_hidden, n_features, generator=g),
        "train": {"steps": 100, "batch_size": 256, "lr": 0.03, "seed": train_seed},
        "eval_batch": 4096, "eval_seed": eval_seed}}


class ReferenceToyModel(ToyModel):
    """utils.ToyModel on the CPU, its W drawn from the global RNG as nn.init does (so that constructions differ)."""

    def __init__(self, n_features, n_hidden, n_instances=1, *, sparsity=0.0, importance=1.0):
        super().__init__(n_features, n_hidden, n_instances, sparsity=sparsity, importance=importance, device="cpu",
                         seed=int(torch.randint(0, 2**62, ())))


def _replace(model: nn.Module, name: str, value) -> None:
    delattr(model, name)
    setattr(model, name, value)


class TransposedW(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.W = nn.Parameter(self.W.detach().transpose(1, 2).contiguous())


class BiasNamedB(nn.Module):
    """A student-style model whose bias is called b."""

    def __init__(self, n_features, n_hidden, n_instances=1, *, sparsity=0.0, importance=1.0):
        super().__init__()
        self.n_features, self.n_instances = n_features, n_instances
        self.sparsity = _grid(sparsity, n_instances, n_features)
        self.importance = torch.as_tensor(importance, dtype=torch.float32).expand(n_instances, n_features)
        self.W = nn.Parameter(torch.empty(n_instances, n_hidden, n_features))
        for W_i in self.W.data:
            nn.init.xavier_normal_(W_i)
        self.b = nn.Parameter(torch.zeros(n_instances, n_features))

    def forward(self, x):
        return torch.relu(_linear(self.W, x) + self.b)

    def generate_batch(self, batch_size, generator=None):
        return _batch(batch_size, self.n_instances, self.n_features, self.sparsity, generator)

    def loss(self, x, x_hat):
        return (self.importance * (x - x_hat) ** 2).mean(dim=(0, 2))


class BiasPerFeature(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.b_final = nn.Parameter(torch.zeros(self.n_features))


class WNotParameter(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _replace(self, "W", self.W.detach().clone())


class BiasBuffer(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        delattr(self, "b_final")
        self.register_buffer("b_final", torch.zeros(self.n_instances, self.n_features))


class RandomBias(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.b_final = nn.Parameter(torch.randn(self.n_instances, self.n_features))


class WStdOne(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.W = nn.Parameter(torch.randn(self.W.shape))


class XavierWholeTensor(ReferenceToyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.W = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.W.shape)))


class SparsityIgnored(ReferenceToyModel):
    def __init__(self, n_features, n_hidden, n_instances=1, *, sparsity=0.0, importance=1.0):
        super().__init__(n_features, n_hidden, n_instances, importance=importance)


class SparsityOneMinus(ReferenceToyModel):
    def __init__(self, n_features, n_hidden, n_instances=1, *, sparsity=0.0, importance=1.0):
        super().__init__(n_features, n_hidden, n_instances, importance=importance,
                         sparsity=1 - torch.as_tensor(sparsity, dtype=torch.float32))


class GeneratorIgnored(ReferenceToyModel):
    def generate_batch(self, batch_size, generator=None):
        return sparse_features(batch_size, self.feature_probability, None)


class ForwardNoReLU(ReferenceToyModel):
    def forward(self, x):
        return _linear(self.W, x) + self.b_final


class LossWithoutImportance(ReferenceToyModel):
    def loss(self, x, x_hat):
        return ((x - x_hat) ** 2).mean(dim=(0, 2))


MY_TOY_MODEL = Exercise(
    name="MyToyModel", points=3, inputs=my_toy_model_inputs, reference=ReferenceToyModel,
    answers=("utils.model.ToyModel", "utils.model.register_feature_data", "utils.neurons.NeuronModel"), atol=1e-4,
    wrong=(
        Wrong("transposed_W", "W has shape (n_instances, n_features, n_hidden): it should be (n_instances, n_hidden, "
              "n_features), so that h = W x per instance and column W[i, :, f] is feature f's direction.", TransposedW),
        Wrong("bias_not_named_b_final", "MyToyModel has no attribute b_final: name the output bias `b_final` "
              "(an nn.Parameter of shape (n_instances, n_features)), as utils.ToyModel does.", BiasNamedB),
        Wrong("bias_shared_by_instances", "b_final has shape (n_features,): each instance is an independent model "
              "with its own bias, shape (n_instances, n_features).", BiasPerFeature),
        Wrong("W_not_parameter", "W is a plain tensor, not an nn.Parameter, so utils.train never updates it: wrap it, "
              "self.W = nn.Parameter(...).", WNotParameter),
        Wrong("b_final_not_parameter", "b_final is a buffer or a plain tensor, not an nn.Parameter: utils.train never "
              "updates it, so the bias never turns negative. Make it an nn.Parameter (of zeros).", BiasBuffer),
        Wrong("b_final_random_init", "b_final starts random: it should start at zeros (as in the paper and "
              "utils.ToyModel); training makes it negative.", RandomBias),
        Wrong("W_std_one", "W starts with standard deviation 1 (torch.randn): initialise it Xavier-normal, standard "
              "deviation sqrt(2 / (n_hidden + n_features)), e.g. nn.init.xavier_normal_ on each instance's matrix.",
              WStdOne),
        Wrong("xavier_whole_tensor", "W's standard deviation is that of nn.init.xavier_normal_ on the whole 3-D "
              "tensor, which counts n_instances into the fans: initialise each instance's (n_hidden, n_features) "
              "matrix, standard deviation sqrt(2 / (n_hidden + n_features)).", XavierWholeTensor),
        Wrong("sparsity_ignored", "your model's batches are not zero with probability S: MyToyModel ignores its "
              "`sparsity` argument. Store it broadcast to (n_instances, n_features) and draw with it.",
              SparsityIgnored),
        Wrong("sparsity_stored_as_active_probability", "your model's batches are zero with probability 1 - S: it "
              "stores or uses 1 - S (the probability of being active) as the sparsity. S, as given, is the "
              "probability a feature is ZERO.", SparsityOneMinus),
        Wrong("generator_ignored", "model.generate_batch(batch_size, generator) ignores `generator`: the same seed "
              "gave different batches. Pass it on to your generate_batch, so that utils.train's batches are "
              "reproducible.", GeneratorIgnored),
        Wrong("forward_differs", "with W and b_final loaded, your model's output differs from utils.ToyModel's: it "
              "has no ReLU. Reuse your forward(W, b, x) in forward(x).", ForwardNoReLU),
        Wrong("loss_ignores_importance", "model.loss(x, x_hat) ignores the model's importance: reuse "
              "weighted_loss(x, x_hat, self.importance), with importance broadcast to (n_instances, n_features).",
              LossWithoutImportance),
    ),
    hints={"W": "W must be an nn.Parameter of shape (n_instances, n_hidden, n_features).",
           "b_final": "b_final must be an nn.Parameter of shape (n_instances, n_features).",
           "W init std": "Initialise W Xavier-normal per instance: nn.init.xavier_normal_ on each W[i].",
           "b_final starts at zero": "b_final starts at zeros.",
           "forward": "With W and b_final loaded, model(x) should equal ReLU(W^T W x + b_final): reuse your forward.",
           "loss": "model.loss(x, x_hat) should be your weighted_loss with the model's importance, shape "
                   "(n_instances,).",
           "batches": "model.generate_batch(batch_size, generator) should draw (batch_size, n_instances, n_features) "
                      "with the model's sparsity S (the probability a feature is zero).",
           "generator": "model.generate_batch should pass its generator on to every random draw.",
           "training": "utils.train should train it: W and b_final nn.Parameters, forward, loss and generate_batch "
                       "as in the exercises above."},
    spec="MyToyModel(n_features, n_hidden, n_instances=1, *, sparsity=0.0, importance=1.0): parameters W "
         "(n_instances, n_hidden, n_features), Xavier normal, and b_final (n_instances, n_features), zeros; "
         "forward(x), generate_batch(batch_size, generator=None) and loss(x, x_hat) reusing your three functions.",
    passed="MyToyModel: parameters, initialisation, forward, loss and batches match utils.ToyModel, and it trains",
)

EXERCISES = [GENERATE_BATCH, FORWARD, WEIGHTED_LOSS, MY_TOY_MODEL]
