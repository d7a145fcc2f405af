"""Answer key of lesson 07 (neurons and computation): references, known wrong answers, input builders.

The references are the library's: utils.neurons.correlated_pairs and anticorrelated_pairs (the two pair
batches), utils.neurons.NeuronModel's forward (neuron_forward) and utils.neurons.count_neurons
(monosemantic_neurons).
"""

from __future__ import annotations

import torch

from grader.key import Exercise, Wrong, integer, uniform
from utils.neurons import NeuronModel, anticorrelated_pairs, correlated_pairs, count_neurons

LESSON = "07_neurons_and_computation"
CHECKS = "utils.checks.lesson07"


def _seeds(g: torch.Generator, k: int) -> list[int]:
    """k different seeds."""
    while True:
        seeds = torch.randint(0, 2**31 - 1, (k,), generator=g).tolist()
        if len(set(seeds)) == k:
            return seeds


# --- the two pair batches ------------------------------------------------------------------------

def pair_batch_inputs(g: torch.Generator) -> dict:
    def case(p: float) -> dict:
        return {"args": [integer(g, 2500, 3500), integer(g, 2, 3), integer(g, 2, 4), round(p, 4)],
                "seeds": _seeds(g, 3), "small_batch": integer(g, 48, 64), "global_seed": _seeds(g, 1)[0]}
    # p well away from 1/2: p and 1 - p, and p and 2p, must be told apart.
    return {"sparse": case(uniform(g, 0.08, 0.2)), "denser": case(uniform(g, 0.25, 0.35))}


def _grid(n_instances: int, n_pairs: int, p: float) -> torch.Tensor:
    return torch.full((n_instances, n_pairs), float(p))


def reference_correlated(batch_size, n_instances, n_pairs, p, generator=None):
    """utils.neurons.correlated_pairs with one p for every pair."""
    return correlated_pairs(batch_size, _grid(n_instances, n_pairs, p), generator)


def reference_anticorrelated(batch_size, n_instances, n_pairs, p, generator=None):
    """utils.neurons.anticorrelated_pairs with one p for every pair."""
    return anticorrelated_pairs(batch_size, _grid(n_instances, n_pairs, p), generator)


def _values(shape, generator, *, shared=False, mask_generator=True):
    values = torch.rand(shape, generator=generator)
    return values[..., ::2].repeat_interleave(2, dim=-1) if shared else values


def _correlated(batch_size, n_instances, n_pairs, p, generator=None, *, on=lambda u, p: u < p, layout="adjacent",
                mask_pairs=None, shared=False, mask_generator=True):
    """generate_correlated_batch with one mistake: the probability, the layout, the mask's shape, shared values, the generator."""
    shape = (batch_size, n_instances, 2 * n_pairs)
    u = torch.rand(mask_pairs or (batch_size, n_instances, n_pairs), generator=generator if mask_generator else None)
    active = on(u, p)
    active = active.repeat(1, 1, 2) if layout == "halves" else active.repeat_interleave(2, dim=-1)
    return _values(shape, generator, shared=shared) * active.expand(shape)


def _independent(batch_size, n_instances, n_pairs, p, generator=None):
    shape = (batch_size, n_instances, 2 * n_pairs)
    return torch.rand(shape, generator=generator) * (torch.rand(shape, generator=generator) < p)


CORRELATED = Exercise(
    name="generate_correlated_batch", points=2, inputs=pair_batch_inputs, reference=reference_correlated,
    answers=("utils.neurons.correlated_pairs",),
    wrong=(
        Wrong("pairs_in_halves", "features k and k + n_pairs are on together: the pairs are neighbours, (2k, 2k + 1). "
              "repeat_interleave(2, dim=-1) puts a pair's decision on both of its features.",
              lambda *a, **k: _correlated(*a, **k, layout="halves")),
        Wrong("pairs_independent", "the two features of a pair are drawn independently: draw ONE on/off decision per "
              "pair (shape (batch, n_instances, n_pairs)) and use it for both features 2k and 2k + 1.", _independent),
        Wrong("p_is_sparsity", "features are zero with probability p: here p is the probability that a pair is "
              "ACTIVE (1 - S), not the sparsity.", lambda *a, **k: _correlated(*a, **k, on=lambda u, p: u >= p)),
        Wrong("one_mask_per_sample", "all the pairs of a sample are on or off together: each pair gets its own "
              "decision, independent of the other pairs.",
              lambda b, i, n, p, generator=None: _correlated(b, i, n, p, generator, mask_pairs=(b, i, 1))),
        Wrong("shared_values", "both features of an active pair have the same value: they are on together, but each "
              "draws its own value, uniform in [0, 1).", lambda *a, **k: _correlated(*a, **k, shared=True)),
        Wrong("generator_not_passed", "the same generator seed gave different batches: pass `generator` to every "
              "torch.rand call (mask and values).", lambda *a, **k: _correlated(*a, **k, mask_generator=False)),
    ),
    spec="Return (batch_size, n_instances, 2 n_pairs): features 2k and 2k + 1 are both active with probability p "
         "(one decision per pair, independent across pairs), else both 0; active values uniform in [0, 1), drawn "
         "separately; every draw made with `generator`.",
    passed="generate_correlated_batch: shape, pairs on together with probability p, independent pairs, uniform "
           "values, reproducible with its generator",
)


def _anticorrelated(batch_size, n_instances, n_pairs, p, generator=None, *, pair_p=lambda p: 2 * p,
                    coin=lambda u: u < 0.5, mask_generator=True):
    """generate_anticorrelated_batch with one mistake: the pair's probability, the coin, the generator."""
    shape = (batch_size, n_instances, n_pairs)
    draw = generator if mask_generator else None
    pair_on = torch.rand(shape, generator=draw) < pair_p(p)
    first = coin(torch.rand(shape, generator=draw))
    active = torch.stack([pair_on & first, pair_on & ~first], dim=-1).flatten(-2)
    return torch.rand((batch_size, n_instances, 2 * n_pairs), generator=generator) * active


ANTICORRELATED = Exercise(
    name="generate_anticorrelated_batch", points=2, inputs=pair_batch_inputs, reference=reference_anticorrelated,
    answers=("utils.neurons.anticorrelated_pairs",),
    wrong=(
        Wrong("both_can_be_on", "both features of a pair are sometimes on together: anti-correlated features are "
              "NEVER active at the same time. Decide whether the pair is on, then which ONE of its two features.",
              _independent),
        Wrong("pair_probability_p", "each feature is active with probability p / 2: the pair must be on with "
              "probability 2p, so that each of its two features (chosen by a fair coin) is on with probability p.",
              lambda *a, **k: _anticorrelated(*a, **k, pair_p=lambda p: p)),
        Wrong("always_first", "only the first feature of each pair is ever active: a fair coin (probability 1/2) "
              "picks which feature of an active pair is on.",
              lambda *a, **k: _anticorrelated(*a, **k, coin=lambda u: u < 2)),
        Wrong("generator_not_passed", "the same generator seed gave different batches: pass `generator` to every "
              "torch.rand call (pair, coin and values).", lambda *a, **k: _anticorrelated(*a, **k, mask_generator=False)),
    ),
    spec="Return (batch_size, n_instances, 2 n_pairs): a pair is active with probability 2p, and then exactly one of "
         "its features 2k, 2k + 1 (a fair coin) is on, uniform in [0, 1); so each feature is active with probability "
         "p and the two never together. Every draw made with `generator`.",
    passed="generate_anticorrelated_batch: shape, never both on, each feature active with probability p, independent "
           "pairs, uniform values, reproducible with its generator",
)


# --- neuron_forward ------------------------------------------------------------------------------

def neuron_forward_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name, n_instances in (("instances", integer(g, 2, 4)), ("one instance", 1)):
        n_hidden, n_features = integer(g, 2, 4), integer(g, 5, 7)  # never square: a transposed W cannot pass
        W1 = torch.randn(n_instances, n_hidden, n_features, generator=g)
        W2 = torch.randn(n_instances, n_features, n_hidden, generator=g)
        b = 0.3 * torch.randn(n_instances, n_features, generator=g)
        x = 2 * torch.rand(integer(g, 8, 16), n_instances, n_features, generator=g) - 1  # both signs: a missing ReLU shows
        cases[name] = {"args": [W1, W2, b, x]}
    return cases


def reference_neuron_forward(W1, W2, b, x):
    """utils.neurons.NeuronModel's forward with W1, W2 and b loaded."""
    n_instances, n_hidden, n_features = W1.shape
    model = NeuronModel(n_features, n_hidden, n_instances, device="cpu")
    with torch.no_grad():
        model.W1.copy_(W1)
        model.W2.copy_(W2)
        model.b_final.copy_(b)
        return model(x)


def _forward(W1, W2, b, x, *, hidden_relu=True, out_relu=True, bias=True, W2_of=lambda W1, W2: W2):
    pre = torch.einsum("ihf,bif->bih", W1, x)
    h = torch.relu(pre) if hidden_relu else pre
    out = torch.einsum("ifh,bih->bif", W2_of(W1, W2), h) + (b if bias else 0)
    return torch.relu(out) if out_relu else out


NEURON_FORWARD = Exercise(
    name="neuron_forward", points=2, inputs=neuron_forward_inputs, reference=reference_neuron_forward,
    answers=("utils.neurons.NeuronModel",), atol=1e-4,
    wrong=(
        Wrong("no_hidden_relu", "no ReLU on the hidden layer: h = ReLU(W1 x). That ReLU is what makes the neurons a "
              "privileged basis.", lambda *a: _forward(*a, hidden_relu=False)),
        Wrong("no_output_relu", "no ReLU on the output: y = ReLU(W2 h + b).", lambda *a: _forward(*a, out_relu=False)),
        Wrong("no_bias", "you forgot the bias b: y = ReLU(W2 h + b).", lambda *a: _forward(*a, bias=False)),
        Wrong("tied_weights", "you read out with W1^T instead of W2: this model's weights are untied, y = "
              "ReLU(W2 ReLU(W1 x) + b) with W2 of shape (n_instances, n_features, n_hidden).",
              lambda *a: _forward(*a, W2_of=lambda W1, W2: W1.transpose(1, 2))),
        Wrong("relu_before_bias", "the output ReLU is applied before adding b: add b first, then the ReLU.",
              lambda W1, W2, b, x: _forward(W1, W2, b, x, bias=False) + b),
    ),
    hints={"one instance": "It should work for a single instance (n_instances = 1) too.",
           "instances": "Keep the instance index i in both einsums: h[b, i, k] = ReLU(sum_f W1[i, k, f] x[b, i, f])."},
    spec="neuron_forward(W1, W2, b, x) = ReLU(W2 ReLU(W1 x) + b) per instance, shape (batch, n_instances, n_features).",
    passed="neuron_forward: both ReLUs, the bias, untied per-instance weights, values match utils.neurons.NeuronModel",
)


# --- monosemantic_neurons ------------------------------------------------------------------------

def monosemantic_inputs(g: torch.Generator) -> dict:
    """Drawn again until the planted case tells the reference and every known wrong answer apart: per-instance
    counts are small integers, and two mistakes with equal counts would be named one for the other."""
    while True:
        cases = _monosemantic_cases(g)
        W1 = cases["planted"]["args"][0]
        counts = [reference_monosemantic(W1), *(known.answer(W1) for known in MONOSEMANTIC.wrong)]
        if all(not torch.equal(a, b) for k, a in enumerate(counts) for b in counts[k + 1:]):
            return cases


def _monosemantic_cases(g: torch.Generator) -> dict:
    n_instances, n_hidden, n_features = integer(g, 3, 5), integer(g, 4, 6), integer(g, 5, 8)
    W1 = 0.4 * torch.randn(n_instances, n_hidden, n_features, generator=g)
    # Plant neurons of every kind: one clean feature plus small leaks, a clean feature beside a big NEGATIVE
    # weight (monosemantic: inputs are >= 0), two comparable features, and a dead neuron.
    for i in range(n_instances):
        kinds = (torch.randperm(n_hidden, generator=g) % 4)  # n_hidden >= 4: every kind in every instance
        for k, kind in enumerate(kinds.tolist()):
            f, other = torch.randperm(n_features, generator=g)[:2].tolist()
            w = 0.05 * torch.rand(n_features, generator=g)
            if kind == 0:
                w[f] = uniform(g, 0.8, 1.5)
            elif kind == 1:
                w[f], w[other] = uniform(g, 0.8, 1.5), -uniform(g, 0.8, 1.5)
            elif kind == 2:
                w[f], w[other] = uniform(g, 0.7, 1.0), uniform(g, 0.5, 0.7)
            else:  # dead, though one feature is all it has: counting it as monosemantic is the mistake
                w = torch.zeros(n_features)
                w[f] = uniform(g, 0.02, 0.08)
            W1[i, k] = w
    return {"planted": {"args": [W1]}, "random": {"args": [0.5 * torch.randn(n_instances, n_hidden, n_features, generator=g)]}}


def reference_monosemantic(W1):
    """utils.neurons.count_neurons(W1)["monosemantic"] (inputs >= 0: positive weights drive a neuron)."""
    return count_neurons(W1)["monosemantic"]


def _mono(W1, *, drive=lambda W: W.clamp_min(0), power=2, dead=True, share=0.9):
    w = drive(W1)
    mass = w.abs() ** power
    top = mass.amax(dim=-1) / mass.sum(dim=-1).clamp_min(1e-12)
    alive = w.norm(dim=-1) >= 0.1 if dead else torch.ones_like(top, dtype=torch.bool)
    return (alive & (top >= share)).sum(dim=-1)


MONOSEMANTIC = Exercise(
    name="monosemantic_neurons", points=2, inputs=monosemantic_inputs, reference=reference_monosemantic,
    answers=("utils.neurons.count_neurons", "utils.neurons.driving_weights", "utils.neurons.neuron_feature_shares"),
    wrong=(
        Wrong("negative_weights_count", "a neuron with one large positive weight and a large NEGATIVE one was counted "
              "polysemantic: the features here are >= 0, so a negative weight can never make the neuron fire. Only "
              "the positive weights drive it: use W1.clamp(min=0).", lambda W: _mono(W, drive=lambda W: W)),
        Wrong("not_squared", "you took each feature's share of the sum of |weights|: the definition uses squared "
              "weights, w_f^2 / sum_g w_g^2.", lambda W: _mono(W, power=1)),
        Wrong("dead_counted", "dead neurons (driving weights with norm < 0.1) were counted: a neuron that nothing "
              "drives is dead, neither monosemantic nor polysemantic.", lambda W: _mono(W, dead=False)),
        Wrong("polysemantic_counted", "you counted the polysemantic neurons: the exercise asks for the monosemantic "
              "ones (one feature carries >= 90% of the squared driving weights).",
              lambda W: count_neurons(W)["polysemantic"]),
        Wrong("one_number", "you returned one number: count per instance, shape (n_instances,).",
              lambda W: count_neurons(W)["monosemantic"].sum()),
    ),
    spec="monosemantic_neurons(W1) -> (n_instances,) int: neurons whose positive input weights w have ||w|| >= 0.1 "
         "and one feature carrying >= 90% of ||w||^2.",
    passed="monosemantic_neurons: positive weights only, squared shares, dead neurons left out, one count per instance",
)

EXERCISES = [CORRELATED, ANTICORRELATED, NEURON_FORWARD, MONOSEMANTIC]
