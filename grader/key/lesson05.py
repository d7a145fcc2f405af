"""Answer key of lesson 05 (the sycophancy link): references, known wrong answers, input builders.

Every input is drawn from the generator: the model (W with unequal column norms and an antipodal pair of
features, like the narrow model's agreement_with_user / confidence), its bias, the batch of correlated
features and its size, the feature indices asked for, the directions and the steering strengths. The
feature indices a case asks about are moreover never those of the visible check (see `_avoiding`), so a
submission that special-cases the visible feature fails the graded inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grader import key as answer_key
from grader.key import Exercise, Wrong, integer, uniform
from utils import sycophancy as syc

LESSON = "05_sycophancy_link"
CHECKS = "utils.checks.lesson05"
N_FEATURES = len(syc.FEATURES)


def _avoiding(exercise: str, draw: Callable[[torch.Generator], tuple[tuple[int, ...], ...]],
              g: torch.Generator) -> tuple[tuple[int, ...], ...]:
    """`draw(g)`, the generator's first draws (groups of feature indices), redrawn until no index of a group is one
    of the visible check's in that group.

    The visible inputs are built from a public seed; for any other generator the features asked about (a pair,
    or the feature of each case) share no index with the visible check's, in either order.
    """
    chosen = draw(g)
    seed = answer_key.visible_seed(LESSON, exercise)
    if g.initial_seed() == seed:
        return chosen
    visible = draw(torch.Generator().manual_seed(seed))
    while any(set(mine) & set(theirs) for mine, theirs in zip(chosen, visible, strict=True)):
        chosen = draw(g)
    return chosen


def _distinct(g: torch.Generator, n: int, k: int = 2) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.randperm(n, generator=g)[:k])


def _scaled(g: torch.Generator, v: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """v rescaled to a norm in [low, high] (kept away from 1, so that a missing normalisation shows)."""
    return v * (uniform(g, low, high) / v.norm())


def _model(g: torch.Generator, pair: tuple[int, int], n_hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W (n_hidden, 8) with unequal column norms and features pair[1] = -c pair[0] (antipodal); b negative."""
    W = torch.randn(n_hidden, N_FEATURES, generator=g) * (0.5 + torch.rand(N_FEATURES, generator=g))
    i, j = pair
    W[:, j] = -uniform(g, 0.7, 1.3) * W[:, i]
    b = -0.05 - 0.25 * torch.rand(N_FEATURES, generator=g)
    return W, b


def _batch(g: torch.Generator, low: int = 48, high: int = 96) -> torch.Tensor:
    return syc.correlated_features(integer(g, low, high), 1, g)[:, 0]


# --- feature_direction ---------------------------------------------------------------------------

def _direction_indices(g: torch.Generator) -> tuple[tuple[int, ...], ...]:
    return _distinct(g, 6), (integer(g, 0, 2),)  # indices valid for every size drawn below


def direction_inputs(g: torch.Generator) -> dict:
    (first, second), (square_index,) = _avoiding("feature_direction", _direction_indices, g)
    n_hidden, n_features, k = integer(g, 2, 5), integer(g, 6, 10), integer(g, 3, 5)
    W = torch.randn(n_hidden, n_features, generator=g) * (0.3 + 2.7 * torch.rand(n_features, generator=g))
    W_square = torch.randn(k, k, generator=g) * (0.3 + 2.7 * torch.rand(k, generator=g))
    return {"feature": {"args": [W, first]}, "another feature": {"args": [W, second]},
            "square W": {"args": [W_square, square_index]}}


ROW = ("A feature's direction in hidden space is column i of W (n_hidden, n_features), W[:, i], with n_hidden "
       "entries; row i, W[i], has one number per feature.")

FEATURE_DIRECTION = Exercise(
    name="feature_direction", points=1, inputs=direction_inputs, reference=syc.feature_direction,
    answers=("utils.sycophancy.feature_direction",), atol=1e-5,
    wrong=(
        Wrong("row", "you took row i of W (one number per feature when W is not square). " + ROW,
              lambda W, i: W[i]),
        Wrong("row_normalised", "you normalised row i of W. " + ROW, lambda W, i: W[i] / W[i].norm()),
        Wrong("not_normalised", "normalise the direction: divide W[:, i] by its norm, so that projections measure "
              "cosines.", lambda W, i: W[:, i]),
        Wrong("normalised_rows", "you normalised along the wrong axis: each entry of column i was divided by the norm "
              "of its row (dim=1). Divide the column by its own norm, ||W[:, i]||.",
              lambda W, i: (W / W.norm(dim=1, keepdim=True))[:, i]),
        Wrong("whole_matrix_norm", "you divided column i by the norm of the whole matrix W; the direction must be a "
              "unit vector: divide by the column's own norm.", lambda W, i: W[:, i] / W.norm()),
    ),
    hints={"square W": "W is square here, so row i has the right shape: " + ROW},
    spec="Return W[:, index] / ||W[:, index]||: the unit vector, shape (n_hidden,), along which the feature is written.",
    passed="feature_direction: the unit column of W",
)


# --- ablate_direction ----------------------------------------------------------------------------

def ablate_inputs(g: torch.Generator) -> dict:
    ((i,),) = _avoiding("ablate_direction", lambda g: (_distinct(g, N_FEATURES, 1),), g)
    n_hidden = integer(g, 3, 5)
    W, _ = _model(g, (i, (i + 1) % N_FEATURES), n_hidden)
    x = _batch(g, 12, 30)
    cases = {"feature column": {"args": [x @ W.T, _scaled(g, W[:, i], 1.5, 3.5)]}}
    h = torch.randn(integer(g, 6, 20), n_hidden, generator=g)
    cases["random direction"] = {"args": [h, _scaled(g, torch.randn(n_hidden, generator=g), 0.2, 0.6)]}
    k = integer(g, 3, 6)  # batch = n_hidden: a projection multiplied along the wrong axis still broadcasts
    cases["batch = n_hidden"] = {"args": [torch.randn(k, k, generator=g),
                                          _scaled(g, torch.randn(k, generator=g), 1.5, 3.0)]}
    d = torch.randn(n_hidden, generator=g)
    cases["unit direction"] = {"args": [torch.randn(integer(g, 6, 20), n_hidden, generator=g), d / d.norm()]}
    return cases


def _unit(d: torch.Tensor) -> torch.Tensor:
    return d / d.norm()


ABLATE_DIRECTION = Exercise(
    name="ablate_direction", points=2, inputs=ablate_inputs, reference=syc.ablate_direction,
    answers=("utils.sycophancy.ablate_direction",), atol=1e-4,
    wrong=(
        Wrong("subtracted_direction", "you subtracted the direction itself; ablation subtracts each row's projection "
              "onto it, (h . d_hat) d_hat, so the result has no component along d.", lambda h, d: h - d),
        Wrong("not_normalised", "the direction was not normalised: with d of norm != 1, h - (h . d) d does not remove "
              "the component; use d_hat = d / ||d||.", lambda h, d: h - (h @ d)[:, None] * d),
        Wrong("normalised_once", "you divided by ||d|| only once: (h . d) d / ||d|| still has a factor ||d||. Normalise "
              "both: (h . d_hat) d_hat = (h . d) d / ||d||^2.", lambda h, d: h - (h @ d)[:, None] * d / d.norm()),
        Wrong("returned_projection", "you returned the component along the direction, (h . d_hat) d_hat; ablation "
              "removes it: return what is left of h.", lambda h, d: (h @ _unit(d))[:, None] * _unit(d)),
        Wrong("added_projection", "the sign is flipped: you added the projection (h . d_hat) d_hat instead of "
              "subtracting it.", lambda h, d: h + (h @ _unit(d))[:, None] * _unit(d)),
        Wrong("wrong_axis", "the projections h @ d_hat are one number per row (batch,): multiply them as a column, "
              "(h @ d_hat)[:, None] * d_hat, so that each row (batch axis first) subtracts its own projection.",
              lambda h, d: h - (h @ _unit(d)) * _unit(d)),
    ),
    hints={"batch = n_hidden": "Each row of h subtracts its own projection: (h @ d_hat)[:, None] * d_hat.",
           "feature column": "The direction is not unit length: project onto d_hat = d / ||d||.",
           "random direction": "The direction is not unit length: project onto d_hat = d / ||d||."},
    spec="After ablation the hidden activations have no component along the direction: return "
         "h - (h @ d_hat)[:, None] * d_hat with d_hat = d / ||d||; only the component along d changes.",
    passed="ablate_direction: removes exactly the component along the (normalised) direction",
)


# --- ablate_one_sided ----------------------------------------------------------------------------

def _both_sides(h: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """h with row 0 flipped, if need be, to a positive projection onto d and row 1 to a negative one, each moved
    along d to at least 0.5 in size (a near-zero projection would not tell the one-sided answer apart)."""
    signs = torch.ones(h.shape[0], 1)
    signs[0], signs[1] = torch.sign(h[0] @ d), -torch.sign(h[1] @ d)
    h = h * signs
    d_hat = d / d.norm()
    for row, sign in ((0, 1.0), (1, -1.0)):
        shortfall = 0.5 - sign * float(h[row] @ d_hat)
        if shortfall > 0:
            h[row] += sign * shortfall * d_hat
    return h


def one_sided_inputs(g: torch.Generator) -> dict:
    """Every case has rows on both sides of the direction (positive and negative projections)."""
    ((i,),) = _avoiding("ablate_one_sided", lambda g: (_distinct(g, N_FEATURES, 1),), g)
    n_hidden = integer(g, 3, 5)
    W, _ = _model(g, (i, (i + 1) % N_FEATURES), n_hidden)  # feature i + 1 is antipodal: negative projections
    pair = [i, (i + 1) % N_FEATURES]
    W[:, pair] *= max(1.0, 0.5 / float(W[:, i].norm()))  # a short W_i would put rows 0 and 1 next to the boundary
    x = _batch(g, 24, 40)
    x[:2] = 0.0
    x[0, i], x[1, (i + 1) % N_FEATURES] = uniform(g, 0.3, 1.0), uniform(g, 0.3, 1.0)  # each half-line once at least
    cases = {"antipodal pair": {"args": [x @ W.T, _scaled(g, W[:, i], 1.5, 3.5)]}}
    h, d = torch.randn(integer(g, 6, 20), n_hidden, generator=g), _scaled(g, torch.randn(n_hidden, generator=g), 0.2, 0.6)
    cases["random direction"] = {"args": [_both_sides(h, d), d]}
    k = integer(g, 3, 6)  # batch = n_hidden: a projection multiplied along the wrong axis still broadcasts
    h, d = torch.randn(k, k, generator=g), _scaled(g, torch.randn(k, generator=g), 1.5, 3.0)
    cases["batch = n_hidden"] = {"args": [_both_sides(h, d), d]}
    h, d = torch.randn(integer(g, 6, 20), n_hidden, generator=g), _unit(torch.randn(n_hidden, generator=g))
    cases["unit direction"] = {"args": [_both_sides(h, d), d]}
    return cases


def _one_sided(h: torch.Tensor, d: torch.Tensor, part: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """h minus part(projection) along the unit direction: how a wrong answer picks the part it removes."""
    return h - part(h @ _unit(d))[:, None] * _unit(d)


HALF = ("Features are non-negative: agreement only ever pushes h towards +d_hat, so remove ReLU(h . d_hat) d_hat "
        "and leave rows with a negative projection as they are.")

ABLATE_ONE_SIDED = Exercise(
    name="ablate_one_sided", points=1, inputs=one_sided_inputs, reference=syc.ablate_one_sided,
    answers=("utils.sycophancy.ablate_one_sided",), atol=1e-4,
    wrong=(
        Wrong("two_sided", "you removed the whole projection (h . d_hat) d_hat, as ablate_direction does: rows with a "
              "negative projection changed too. " + HALF, lambda h, d: _one_sided(h, d, lambda p: p)),
        Wrong("negative_part", "the ReLU is on the wrong side: you removed the negative part of the projection (the "
              "half-line of the antipodal partner) and kept the positive one. " + HALF,
              lambda h, d: _one_sided(h, d, lambda p: -torch.relu(-p))),
        Wrong("abs_projection", "you removed |h . d_hat| d_hat: rows with a negative projection were pushed further "
              "along -d_hat instead of being left alone. " + HALF, lambda h, d: _one_sided(h, d, torch.abs)),
        Wrong("relu_on_h", "you applied the ReLU to h before projecting (ReLU(h) . d_hat): the ReLU belongs on the "
              "projection, one number per row, ReLU(h . d_hat).",
              lambda h, d: h - (torch.relu(h) @ _unit(d))[:, None] * _unit(d)),
        Wrong("relu_after", "you applied the ReLU to the result, ReLU(h - (h . d_hat) d_hat): hidden activations can "
              "be negative. The ReLU belongs on the projection: h - ReLU(h . d_hat) d_hat.",
              lambda h, d: torch.relu(h - (h @ _unit(d))[:, None] * _unit(d))),
        Wrong("not_normalised", "the direction was not normalised: with d of norm != 1, h - ReLU(h . d) d does not "
              "remove the component; use d_hat = d / ||d||.", lambda h, d: h - torch.relu(h @ d)[:, None] * d),
        Wrong("normalised_once", "you divided by ||d|| only once: ReLU(h . d) d / ||d|| still has a factor ||d||. "
              "Normalise both: ReLU(h . d_hat) d_hat.", lambda h, d: h - torch.relu(h @ d)[:, None] * d / d.norm()),
        Wrong("returned_projection", "you returned the part that is removed, ReLU(h . d_hat) d_hat; return what is "
              "left of h.", lambda h, d: torch.relu(h @ _unit(d))[:, None] * _unit(d)),
        Wrong("wrong_axis", "the projections ReLU(h @ d_hat) are one number per row (batch,): multiply them as a "
              "column, ReLU(h @ d_hat)[:, None] * d_hat, so that each row subtracts its own.",
              lambda h, d: h - torch.relu(h @ _unit(d)) * _unit(d)),
    ),
    hints={"batch = n_hidden": "Each row of h subtracts its own part: ReLU(h @ d_hat)[:, None] * d_hat.",
           "antipodal pair": "The direction is not unit length: project onto d_hat = d / ||d||.",
           "random direction": "The direction is not unit length: project onto d_hat = d / ||d||."},
    spec="Return h - ReLU(h @ d_hat)[:, None] * d_hat with d_hat = d / ||d||: rows with a positive projection lose "
         "it, rows with a negative projection are unchanged; same shape as h.",
    passed="ablate_one_sided: removes the positive part of the projection and leaves the other half-line alone",
)


# --- collateral_damage and steering_effect: the model and its read-out ---------------------------

def _readout(W: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.relu(h @ W + b)


def _damage(W, b, x, direction, *, ablate=syc.ablate_direction, readout=_readout,
            error=lambda e: e ** 2, reduce=lambda e: e.mean(dim=0)) -> torch.Tensor:
    """collateral_damage with one step swapped out: how a wrong answer computes it."""
    h = x @ W.T
    return reduce(error(x - readout(W, b, ablate(h, direction)))) - reduce(error(x - readout(W, b, h)))


def _pair(g: torch.Generator) -> tuple[tuple[int, ...]]:
    return (_distinct(g, N_FEATURES, 2),)


def damage_inputs(g: torch.Generator) -> dict:
    ((i, j),) = _avoiding("collateral_damage", _pair, g)
    W, b = _model(g, (i, j), integer(g, 2, 4))
    x = _batch(g)
    return {"unit feature direction": {"args": [W, b, x, W[:, i] / W[:, i].norm()]},
            "raw feature column": {"args": [W, b, x, _scaled(g, W[:, j], 1.5, 3.0)]},
            "random direction": {"args": [W, b, x, _scaled(g, torch.randn(W.shape[0], generator=g), 0.3, 0.7)]}}


def _no_bias_readout(W, b, h):
    return torch.relu(h @ W)


UNIT = "The direction is not unit length here: ablate along d_hat = d / ||d||."

COLLATERAL_DAMAGE = Exercise(
    name="collateral_damage", points=2, inputs=damage_inputs, reference=syc.collateral_damage,
    answers=("utils.sycophancy.collateral_damage", "utils.sycophancy.readout_damage"), atol=1e-5,
    wrong=(
        Wrong("error_after_only", "that is the error after ablation; the damage is the INCREASE: subtract the clean "
              "model's error.",
              lambda W, b, x, d: ((x - _readout(W, b, syc.ablate_direction(x @ W.T, d))) ** 2).mean(dim=0)),
        Wrong("sign_flipped", "the sign is flipped: damage = error after ablation - error before.",
              lambda W, b, x, d: -_damage(W, b, x, d)),
        Wrong("no_relu", "the read-out is ReLU(W^T h + b): you left out the ReLU.",
              lambda W, b, x, d: _damage(W, b, x, d, readout=lambda W, b, h: h @ W + b)),
        Wrong("forgot_bias", "you forgot the bias: the read-out is ReLU(W^T h + b), with b added before the ReLU.",
              lambda W, b, x, d: _damage(W, b, x, d, readout=_no_bias_readout)),
        Wrong("error_not_squared", "the error was not squared: the mean of x - x_hat lets positive and negative errors "
              "cancel. Square each error, (x_i - x_hat_i)^2, then average.",
              lambda W, b, x, d: _damage(W, b, x, d, error=lambda e: e)),
        Wrong("absolute_error", "you used the absolute error |x - x_hat|; the damage is measured in squared error, "
              "(x_i - x_hat_i)^2.", lambda W, b, x, d: _damage(W, b, x, d, error=torch.abs)),
        Wrong("output_change", "you measured how much the output changes, (x_hat_ablated - x_hat_clean)^2; the damage "
              "is how much the error grows: the error against the true x after ablation, minus the error before.",
              lambda W, b, x, d: ((_readout(W, b, syc.ablate_direction(x @ W.T, d))
                                   - _readout(W, b, x @ W.T)) ** 2).mean(dim=0)),
        Wrong("wrong_axis", "you averaged over the wrong axis (features, dim=1): that gives one number per input. "
              "Average over the batch (dim=0), one number per feature.",
              lambda W, b, x, d: _damage(W, b, x, d, reduce=lambda e: e.mean(dim=1))),
        Wrong("summed_batch", "you summed over the batch instead of averaging: the damage is the increase in MEAN "
              "squared error, which does not grow with the batch size.",
              lambda W, b, x, d: _damage(W, b, x, d, reduce=lambda e: e.sum(dim=0))),
        Wrong("direction_not_normalised", "the direction was not normalised: with d of norm != 1, h - (h . d) d does "
              "not remove the component; ablate along d_hat = d / ||d||.",
              lambda W, b, x, d: _damage(W, b, x, d, ablate=lambda h, d: h - (h @ d)[:, None] * d)),
        Wrong("normalised_once", "you divided by ||d|| only once when ablating: removing the component along d takes "
              "(h . d) d / ||d||^2, the square of the norm, not (h . d) d / ||d||.",
              lambda W, b, x, d: _damage(W, b, x, d, ablate=lambda h, d: h - (h @ d)[:, None] * d / d.norm())),
    ),
    hints={"raw feature column": UNIT, "random direction": UNIT},
    spec="Per feature i: the mean over the batch of (x_i - x_hat_i)^2 with the direction ablated from h, minus the "
         "same without ablation; x_hat = ReLU(W^T h + b), h = W x. Shape (n_features,).",
    passed="collateral_damage: per-feature increase in squared error, with the ReLU read-out",
)


# --- steering_effect -----------------------------------------------------------------------------

def _steer(W, b, x, direction, alpha, *, unit=_unit, readout=_readout, change=lambda s, c: s - c,
           reduce=lambda e: e.mean(dim=0)) -> torch.Tensor:
    """steering_effect with one step swapped out: how a wrong answer computes it."""
    h = x @ W.T
    return reduce(change(readout(W, b, h + alpha * unit(direction)), readout(W, b, h)))


def steering_inputs(g: torch.Generator) -> dict:
    ((i, j),) = _avoiding("steering_effect", _pair, g)
    W, b = _model(g, (i, j), integer(g, 2, 4))
    x = _batch(g)
    return {"unit direction, alpha > 0": {"args": [W, b, x, W[:, i] / W[:, i].norm(), round(uniform(g, 0.3, 1.5), 3)]},
            "raw feature column, alpha < 0": {"args": [W, b, x, _scaled(g, W[:, i], 1.5, 3.0),
                                                       round(-uniform(g, 0.3, 1.5), 3)]},
            "random direction": {"args": [W, b, x, _scaled(g, torch.randn(W.shape[0], generator=g), 0.3, 0.7),
                                          round(uniform(g, 0.5, 2.0), 3)]}}


STEER_UNIT = "The direction is not unit length here: steer by alpha * d / ||d||."

STEERING_EFFECT = Exercise(
    name="steering_effect", points=2, inputs=steering_inputs, reference=syc.steering_effect,
    answers=("utils.sycophancy.steering_effect",), atol=1e-5,
    wrong=(
        Wrong("not_unit", "steer by alpha times the UNIT direction, so that alpha means the same for every feature.",
              lambda W, b, x, d, a: _steer(W, b, x, d, a, unit=lambda d: d)),
        Wrong("steered_output", "return the CHANGE of the mean output (steered minus unsteered), not the steered "
              "output.", lambda W, b, x, d, a: _steer(W, b, x, d, a, change=lambda s, c: s)),
        Wrong("sign_flipped", "the sign is flipped: the change is the steered output minus the unsteered one.",
              lambda W, b, x, d, a: _steer(W, b, x, d, a, change=lambda s, c: c - s)),
        Wrong("forgot_bias", "you forgot the bias: the read-out is ReLU(W^T h + b), with b added before the ReLU, for "
              "the steered and the unsteered h alike.",
              lambda W, b, x, d, a: _steer(W, b, x, d, a, readout=_no_bias_readout)),
        Wrong("after_relu", "you steered after the ReLU (or left the ReLU out): the change is then linear in alpha. "
              "Steering adds alpha * d_hat to the hidden vector h, BEFORE the read-out ReLU(W^T h + b).",
              lambda W, b, x, d, a: (_readout(W, b, x @ W.T) + a * (_unit(d) @ W)
                                     - _readout(W, b, x @ W.T)).mean(dim=0)),
        Wrong("summed_batch", "you summed over the batch instead of averaging: return the change of each feature's "
              "MEAN output, which does not grow with the batch size.",
              lambda W, b, x, d, a: _steer(W, b, x, d, a, reduce=lambda e: e.sum(dim=0))),
        Wrong("wrong_axis", "you averaged over the wrong axis (features, dim=1): that gives one number per input. "
              "Average over the batch (dim=0), one number per feature.",
              lambda W, b, x, d, a: _steer(W, b, x, d, a, reduce=lambda e: e.mean(dim=1))),
        Wrong("squared_norm", "you divided the direction by its squared norm, as in a projection; steering adds alpha "
              "times the unit vector d / ||d||.",
              lambda W, b, x, d, a: _steer(W, b, x, d, a, unit=lambda d: d / d.norm() ** 2)),
    ),
    hints={"raw feature column, alpha < 0": STEER_UNIT, "random direction": STEER_UNIT},
    spec="Add alpha * d_hat to every hidden vector h = W x, read out with ReLU(W^T h + b), and return the mean over "
         "the batch of steered minus unsteered outputs: shape (n_features,).",
    passed="steering_effect: mean output change for positive and negative alpha",
)

EXERCISES = [FEATURE_DIRECTION, ABLATE_DIRECTION, COLLATERAL_DAMAGE, ABLATE_ONE_SIDED, STEERING_EFFECT]
