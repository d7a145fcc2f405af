"""Visible checks of lesson 02 (the toy model): probes for the random batch and the model class, and their features.

forward and weighted_loss use the default probe (one call per case). generate_batch is random, so its probe
returns the raw batches (one large one, then the same generator seed twice and another seed, with the global
RNG moved in between) and `features_generate_batch` turns them into what is judged: shape, range, the zero
fraction per instance and feature against S, uniform active values, independent features, the generator
used. MyToyModel is a class: its probe constructs it, exercises it and trains it briefly with utils.train,
and `features_my_toy_model` judges the raw results (the trained weights are evaluated with utils.ToyModel,
outside the sandbox). No probe constructs utils.ToyModel: it is withheld while lesson 02 is graded.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from utils.checks import LessonChecks, Plain, call, fresh, raised, to_plain
from utils.training import train

SIGMAS = 6  # statistical features allow this many standard errors (a false alarm is rarer than 1e-8 per test)


def _raised(value: Any) -> bool:
    return isinstance(value, dict) and "raised" in value


def _grid(sparsity: Any, n_instances: int, n_features: int) -> torch.Tensor:
    """S as given to generate_batch (a float, (n_instances,) or (n_instances, n_features)) -> (n_instances, n_features)."""
    S = torch.as_tensor(sparsity, dtype=torch.float64)
    return (S[:, None] if S.ndim == 1 else S).expand(n_instances, n_features)


def _zero_with_probability(x: torch.Tensor, S: torch.Tensor) -> bool:
    """Is every (instance, feature) of x (batch, n_instances, n_features) zero with probability S, within SIGMAS?"""
    batch = x.shape[0]
    zeros = (x == 0).double().mean(dim=0)
    return bool(((zeros - S).abs() <= SIGMAS * (S * (1 - S) / batch).sqrt() + 2 / batch).all())


def _uniform(values: torch.Tensor) -> bool | None:
    """Kolmogorov-Smirnov: are `values` uniform in [0, 1)? (D sqrt(n) > 3 happens with probability < 1e-7.)"""
    v = values.double().flatten().sort().values
    n = v.numel()
    if n < 50:
        return None
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return bool(torch.maximum(i / n - v, v - (i - 1) / n).max() <= 3 / math.sqrt(n))


def _independent(active: torch.Tensor, S: torch.Tensor) -> bool:
    """Are the features of each instance drawn independently? Compares how often all of an instance's features
    are on or off together with prod S + prod (1 - S)."""
    batch, n_features = active.shape[0], active.shape[-1]
    if n_features < 2:
        return True
    together = (active == active[..., :1]).all(dim=-1).double().mean(dim=0)
    q = S.prod(dim=-1) + (1 - S).prod(dim=-1)
    return bool(((together - q).abs() <= SIGMAS * (q * (1 - q) / batch).sqrt() + 2 / batch).all())


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)


# --- generate_batch ------------------------------------------------------------------------------

TENSOR, SHAPE, FLOAT = "a tensor", "shape", "float dtype"
NONNEGATIVE, AT_MOST_ONE = "values >= 0", "values <= 1"
ZERO_S = f"zero with probability S, per instance and feature (within {SIGMAS} standard errors)"
ZERO_1_MINUS_S = f"zero with probability 1 - S (within {SIGMAS} standard errors)"
UNIFORM = "active values uniform in [0, 1) (Kolmogorov-Smirnov test)"
INDEPENDENT = f"features on or off independently of each other (within {SIGMAS} standard errors)"
SAME_SEED = "the same generator seed gives the same batch"
OTHER_SEED = "another generator seed gives another batch"
BATCH_FEATURES = (TENSOR, SHAPE, FLOAT, NONNEGATIVE, AT_MOST_ONE, ZERO_S, ZERO_1_MINUS_S, UNIFORM, INDEPENDENT,
                  SAME_SEED, OTHER_SEED)


def _draw(generate_batch: Any, args: list, size: int, seed: int) -> Any:
    """One call with a fresh generator seeded `seed` (passed positionally, after `args`); the global RNG moves first,
    so a draw that does not use the generator changes between two calls with the same seed."""
    torch.rand(())
    return call(generate_batch, [size, *args, {"generator": seed}])


def probe_generate_batch(generate_batch: Any, inputs: Plain) -> Plain:
    """{case: [the large batch, a small one, the same seed again, another seed]}: the learner's raw batches."""
    raw = {}
    with torch.random.fork_rng(devices=[]):
        for case, spec in inputs.items():
            torch.manual_seed(int(spec["global_seed"]))
            batch_size, *args = spec["args"]
            stats_seed, seed, other = spec["seeds"]
            small = spec["small_batch"]
            raw[case] = [_draw(generate_batch, args, size, s)
                         for size, s in ((batch_size, stats_seed), (small, seed), (small, seed), (small, other))]
    return raw


def _batch_features(draws: Any, spec: Plain) -> Any:
    if not isinstance(draws, list) or len(draws) != 4:
        return draws
    for draw in draws:
        if _raised(draw):
            return draw
    batch_size, n_instances, n_features, sparsity = spec["args"]
    found: dict[str, Any] = dict.fromkeys(BATCH_FEATURES)
    found[TENSOR] = all(isinstance(d, torch.Tensor) for d in draws)
    if not found[TENSOR]:
        return found
    big, small, again, other = draws
    found[SHAPE], found[FLOAT] = str(tuple(big.shape)), big.is_floating_point()
    if big.shape != (batch_size, n_instances, n_features) or not found[FLOAT]:
        return found
    x, S = big.double(), _grid(sparsity, n_instances, n_features)
    found[NONNEGATIVE], found[AT_MOST_ONE] = bool((x >= 0).all()), bool((x <= 1).all())
    found[ZERO_S], found[ZERO_1_MINUS_S] = _zero_with_probability(x, S), _zero_with_probability(x, 1 - S)
    found[UNIFORM] = _uniform(x[x != 0])
    found[INDEPENDENT] = _independent(x != 0, S)
    found[SAME_SEED], found[OTHER_SEED] = _same(small, again), not _same(small, other)
    return found


def features_generate_batch(raw: Plain, inputs: Plain) -> Plain:
    return {case: _batch_features(raw.get(case) if isinstance(raw, dict) else raw, spec)
            for case, spec in inputs.items()}


# --- MyToyModel ----------------------------------------------------------------------------------

MODEL_FEATURES = ("W", "b_final", "W init std", "b_final starts at zero", "forward", "loss", "batches", "generator",
                  "training")
TRAINED_W, TRAINED_B = "training changes W", "training changes b_final"
BEATS_ZEROS = ("after training, every instance reconstructs better than predicting zeros (its loss, evaluated with "
               "utils.ToyModel on batches of sparsity S, below 85% of that of x_hat = 0)")


def _attribute(model: Any, name: str) -> Plain | None:
    """What the learner's model holds as `name`: None when it has no such attribute."""
    try:
        value = getattr(model, name)
    except Exception:  # noqa: BLE001 - a missing attribute, or a property that raises
        return None
    if not isinstance(value, torch.Tensor):
        return {"type": type(value).__name__}
    return {"shape": list(value.shape), "nn.Parameter": isinstance(value, nn.Parameter)}


def _load(model: Any, W: torch.Tensor, b_final: torch.Tensor) -> Any:
    with torch.no_grad():
        model.W.copy_(W)
        model.b_final.copy_(b_final)
    return model


def _forward(model: Any, W: torch.Tensor, b_final: torch.Tensor, x: torch.Tensor) -> Any:
    with torch.no_grad():
        return _load(model, W, b_final)(x)


def _train(MyToyModel: Any, spec: Plain) -> Plain:
    """A fresh model, started from W0 and a zero bias, trained with utils.train: its trained W and b_final."""
    model = MyToyModel(*spec["args"], **spec["kwargs"])
    _load(model, spec["W0"], torch.zeros_like(spec["b_final"]))
    train(model, **spec["train"], progress=False)
    return {"W": model.W, "b_final": model.b_final}


def probe_my_toy_model(MyToyModel: Any, inputs: Plain) -> Plain:
    """Construct the learner's class (several times, for the init statistics), report its parameters, run its
    forward and loss with given weights, draw its batches with given generator seeds, and train it briefly."""
    spec = inputs["model"]
    raw: Plain = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec["seed"]))
        models = []
        for _ in range(int(spec["constructions"])):
            try:
                models.append(MyToyModel(*fresh(spec["args"]), **fresh(spec["kwargs"])))
            except Exception as error:  # noqa: BLE001 - what the constructor raised is judged
                raw["construct"] = raised(error)
                return raw
        model = models[0]
        raw["W"], raw["b_final"] = _attribute(model, "W"), _attribute(model, "b_final")
        raw["W init"] = [to_plain(getattr(m, "W", None)) for m in models]
        raw["b_final init"] = to_plain(getattr(model, "b_final", None))
        raw["forward"] = call(_forward, [model, spec["W"], spec["b_final"], spec["x"]])
        raw["loss"] = call(lambda x, x_hat: model.loss(x, x_hat), [spec["x"], spec["x_hat"]])
        generate = getattr(model, "generate_batch", None)
        stats_seed, seed, other = spec["batch_seeds"]
        small = spec["small_batch"]
        raw["batches"] = [_draw(generate, [], size, s) for size, s in
                          ((spec["batch_size"], stats_seed), (small, seed), (small, seed), (small, other))]
        raw["trained"] = call(_train, [MyToyModel, spec])
    return raw


def _init_std(Ws: Any, n_features: int, n_hidden: int, n_instances: int) -> str | None:
    """Which standard deviation W starts with, over all constructions (within SIGMAS standard errors)."""
    if not isinstance(Ws, list) or not Ws or not all(isinstance(W, torch.Tensor) and W.is_floating_point() for W in Ws):
        return None
    values = torch.cat([W.double().flatten() for W in Ws])
    rms = float(values.square().mean().sqrt())
    tolerance = SIGMAS / math.sqrt(2 * values.numel())
    for name, std in (("sqrt(2 / (n_hidden + n_features)), Xavier normal per instance",
                       math.sqrt(2 / (n_hidden + n_features))),
                      ("1", 1.0),
                      ("sqrt(2 / (n_features (n_hidden + n_instances))), Xavier normal of the whole 3-D tensor",
                       math.sqrt(2 / (n_features * (n_hidden + n_instances))))):
        if abs(rms / std - 1) <= tolerance:
            return name
    return f"{rms:.3g}, none of Xavier's"


def _model_batches(draws: Any, spec: Plain) -> tuple[Any, Any]:
    """(the zero fractions of the model's own batches, whether they follow the generator)."""
    if not isinstance(draws, list) or len(draws) != 4:
        return None, None
    for draw in draws:
        if _raised(draw):
            return draw, draw
    if not all(isinstance(d, torch.Tensor) for d in draws):
        return {SHAPE: "not a tensor", ZERO_S: None, ZERO_1_MINUS_S: None}, {SAME_SEED: None, OTHER_SEED: None}
    n_features, n_hidden, n_instances = spec["args"]
    big, small, again, other = draws
    generator = {SAME_SEED: _same(small, again), OTHER_SEED: not _same(small, other)}
    batches: dict[str, Any] = {SHAPE: str(tuple(big.shape)), ZERO_S: None, ZERO_1_MINUS_S: None}
    if big.shape == (spec["batch_size"], n_instances, n_features):
        S = _grid(spec["kwargs"]["sparsity"], n_instances, n_features)
        batches[ZERO_S] = _zero_with_probability(big.double(), S)
        batches[ZERO_1_MINUS_S] = _zero_with_probability(big.double(), 1 - S)
    return batches, generator


def _training(trained: Any, spec: Plain, right_batches: bool) -> Any:
    """Did training move W and b_final, and does the trained model beat predicting zeros (evaluated with
    utils.ToyModel, outside the sandbox)? The latter is judged only when W and b_final moved and the model's own
    batches have sparsity S: a model trained on other data is told about its batches instead."""
    if _raised(trained) or not isinstance(trained, dict):
        return trained
    W, b = trained.get("W"), trained.get("b_final")
    W0, b0 = spec["W0"], torch.zeros_like(spec["b_final"])
    if not (isinstance(W, torch.Tensor) and isinstance(b, torch.Tensor) and W.shape == W0.shape
            and b.shape == b0.shape):
        return dict.fromkeys((TRAINED_W, TRAINED_B, BEATS_ZEROS))
    changed = {TRAINED_W: not torch.equal(W, W0), TRAINED_B: not torch.equal(b, b0)}
    if not (all(changed.values()) and right_batches):
        return {**changed, BEATS_ZEROS: None}
    if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
        return {**changed, BEATS_ZEROS: False}
    from utils.model import ToyModel  # features run outside the sandbox, where utils.ToyModel is the library's

    n_features, n_hidden, n_instances = spec["args"]
    evaluation = _load(ToyModel(n_features, n_hidden, n_instances, device="cpu", **spec["kwargs"]), W.float(), b.float())
    x = evaluation.generate_batch(int(spec["eval_batch"]), torch.Generator().manual_seed(int(spec["eval_seed"])))
    with torch.no_grad():
        better = evaluation.loss(x, evaluation(x)) < 0.85 * evaluation.loss(x, torch.zeros_like(x))
    return {**changed, BEATS_ZEROS: bool(better.all())}


def features_my_toy_model(raw: Plain, inputs: Plain) -> Plain:
    spec = inputs["model"]
    if not isinstance(raw, dict) or _raised(raw.get("construct")):
        failed = raw.get("construct") if isinstance(raw, dict) else raw
        return dict.fromkeys(MODEL_FEATURES, failed)
    n_features, n_hidden, n_instances = spec["args"]
    b_init = raw.get("b_final init")
    batches, generator = _model_batches(raw.get("batches"), spec)
    return {"W": raw.get("W") or "missing", "b_final": raw.get("b_final") or "missing",
            "W init std": _init_std(raw.get("W init"), n_features, n_hidden, n_instances),
            "b_final starts at zero": bool((b_init == 0).all()) if isinstance(b_init, torch.Tensor) else None,
            "forward": raw.get("forward"), "loss": raw.get("loss"), "batches": batches, "generator": generator,
            "training": _training(raw.get("trained"), spec, isinstance(batches, dict) and batches.get(ZERO_S) is True)}


checks = LessonChecks("02_toy_model", probes={"generate_batch": probe_generate_batch, "MyToyModel": probe_my_toy_model},
                      features={"generate_batch": features_generate_batch, "MyToyModel": features_my_toy_model})
check = checks.check
