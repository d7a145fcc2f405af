"""Visible checks of lesson 04 (the geometry of superposition): probes and features, no answer key.

feature_dimensionality uses the default probe (one call per case).

analyze_superposition trains toy models, so its result is judged by features of the raw returned dict,
computed with the case's inputs: the dict's keys and W's shape and orientation; whether W was trained at
all (it is not ToyModel's initial weights); whether it is a regular polygon when the features are sparse,
and about two features' worth of ||W||_F^2 when they are dense; which count `n_represented` and which
mean `mean_cosine` are, recomputed from the returned W (so that a formula, not a trained number, is
judged); their types; whether `figure` is a plotly figure; whether W is a clearly worse instance than the
best of the 4 that the spec's seeded training gives (never true when the training ran elsewhere, e.g. on
a GPU, where the draws differ); and, across cases, whether another `seed` or more `steps` change W.

rotation_loss_change takes a model: its probe builds the model from plain data (class, sizes, weights),
seeds the global random generator (so that even a learner drawing random batches is reproducible), calls
the learner and returns its return value and the model's weights after the call; the features say
whether the model was left as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import torch

from utils.checks import LessonChecks, Plain, fresh, raised, to_plain
from utils.geometry import HiddenReLUModel
from utils.model import ToyModel
from utils.training import evaluate_loss, train

THRESHOLD = 0.5  # a feature is represented when ||W_i|| > THRESHOLD
N_INSTANCES = 4  # the spec's random starts

# analyze_superposition's cases (the inputs of the visible check and of the graded ones have these names)
SPARSE, OTHER_SEED, MORE_STEPS = "sparse", "sparse, another seed", "sparse, more steps"
DENSE, ONE_FEATURE = "dense", "at most one feature represented"
STEPS_MATTER, SEED_MATTERS = "more steps change W", "another seed changes W"
SPARSE_CASES = (SPARSE, OTHER_SEED, MORE_STEPS)

RETURNS, MISSING, W_SHAPE, W_FINITE = "returns", "missing keys", "W shape", "W finite"
TRAINED = "W trained (not ToyModel's initial weights)"
POLYGON = "a regular polygon: every feature represented, mean cosine -1/(n-1), ||W||_F^2 >= 0.8 n"
TWO_FEATURES = "about 2 features' worth: 1.5 <= ||W||_F^2 <= 2.7"
WORSE_INSTANCE = "W is a clearly worse instance than the lowest-loss one"
COUNT_TYPE, COUNT = "n_represented type", "n_represented counts (from the returned W)"
MEAN_TYPE, MEAN = "mean_cosine type", "mean_cosine is (from the returned W)"
FIGURE = "figure"
KEYS = ("W", "mean_cosine", "n_represented", "figure")

COUNT_RIGHT = f"features with norm > {THRESHOLD}"
COUNT_SQUARED = f"features with squared norm > {THRESHOLD}"
COUNT_ROWS = f"rows of W with norm > {THRESHOLD}"
MEAN_RIGHT = "the mean signed cosine over ordered pairs of distinct represented features"
MEAN_ABS = "the mean |cos|"
MEAN_DIAGONAL = "the mean including the diagonal"
MEAN_HALF = "half the mean (each pair once, divided by k(k-1))"
MEAN_ALL = "the mean over all features, represented or not"
OTHER = "something else"
PLOTLY = ("plotly.graph_objs._figure.Figure", "plotly.graph_objs._figurewidget.FigureWidget")


def _raised(value: Any) -> bool:
    return isinstance(value, dict) and "raised" in value


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, dict) and set(value) == {"unsupported"}:
        return str(value["unsupported"])
    return "None" if value is None else type(value).__name__


def _number(value: Any) -> float | None:
    """A returned number (a one-element tensor too: its type is judged separately), or None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models: one torch thread is as fast as many, and immune to a busy machine (often 20x faster then)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --- the spec's seeded training, as the trusted side reproduces it --------------------------------

@lru_cache(maxsize=512)
def _seeded(n_features: int, n_hidden: int, sparsity: float, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    with one_thread():
        model = ToyModel(n_features, n_hidden, N_INSTANCES, sparsity=sparsity, seed=seed, device="cpu")
        train(model, steps, batch_size=512, lr=5e-3, seed=seed, progress=False)
        return model.W.detach().clone(), evaluate_loss(model)


def seeded_training(n_features: int, n_hidden: int, sparsity: float, steps: int, seed: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the spec's training gives, on the CPU: every instance's W (4, n_hidden, n_features) and its
    evaluate_loss (4,). Cached: the trusted side judges many answers on the same inputs."""
    W, losses = _seeded(int(n_features), int(n_hidden), float(sparsity), int(steps), int(seed))
    return W.clone(), losses.clone()


@lru_cache(maxsize=512)
def _initial(n_features: int, n_hidden: int, seed: int) -> torch.Tensor:
    return ToyModel(n_features, n_hidden, N_INSTANCES, seed=seed, device="cpu").W.detach().clone()


# --- measurements of one W (n_hidden, n_features) -------------------------------------------------

def _cosines(W: torch.Tensor) -> torch.Tensor:
    W_hat = W / W.norm(dim=0, keepdim=True).clamp_min(1e-8)
    return W_hat.T @ W_hat


def _off_diagonal_mean(cos: torch.Tensor, absolute: bool = False) -> float:
    k = cos.shape[0]
    if k < 2:
        return 0.0
    off = cos[~torch.eye(k, dtype=torch.bool)]
    return float((off.abs() if absolute else off).mean())


def mean_cosines(W: torch.Tensor) -> dict[str, float]:
    """The candidate mean cosines of W: the spec's, and those of the known formula mistakes."""
    W = W.double()
    keep = W.norm(dim=0) > THRESHOLD
    cos = _cosines(W[:, keep])
    right = _off_diagonal_mean(cos)
    return {MEAN_RIGHT: right, MEAN_ABS: _off_diagonal_mean(cos, absolute=True),
            MEAN_DIAGONAL: float(cos.mean()) if cos.numel() else math.nan, MEAN_HALF: right / 2,
            MEAN_ALL: _off_diagonal_mean(_cosines(W))}


def counts(W: torch.Tensor) -> dict[str, int]:
    """The candidate counts of represented features: the spec's, and those of the known counting mistakes."""
    W = W.double()
    return {COUNT_RIGHT: int((W.norm(dim=0) > THRESHOLD).sum()),
            COUNT_SQUARED: int((W.norm(dim=0) ** 2 > THRESHOLD).sum()),
            COUNT_ROWS: int((W.norm(dim=1) > THRESHOLD).sum())}


def is_polygon(W: torch.Tensor) -> bool:
    """Every feature represented, in a regular polygon (mean cosine -1/(n-1)), with norms about 1."""
    W = W.double()
    n = W.shape[1]
    keep = W.norm(dim=0) > THRESHOLD
    return (n >= 2 and bool(keep.all()) and abs(_off_diagonal_mean(_cosines(W)) + 1 / (n - 1)) <= 0.03
            and float((W**2).sum()) >= 0.8 * n)


def two_features_worth(W: torch.Tensor) -> bool:
    return 1.5 <= float((W.double() ** 2).sum()) <= 2.7


def _label(value: float | None, candidates: dict[str, float], tolerance: float) -> str | None:
    if value is None:
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    for name, candidate in candidates.items():
        if not math.isnan(candidate) and abs(value - candidate) <= tolerance:
            return name
    return OTHER


def worse_instance(W: torch.Tensor, args: list, kwargs: dict) -> bool:
    """Is W (nearly) one of the seeded instances, with a loss clearly above the best one's?"""
    n_features, n_hidden, sparsity = args
    every, losses = seeded_training(n_features, n_hidden, sparsity, kwargs["steps"], kwargs["seed"])
    distance = (every - W.float()).abs().flatten(1).amax(dim=1)
    j = int(distance.argmin())
    return bool(distance[j] < 1e-3 and losses[j] > 1.005 * losses.min())


# --- analyze_superposition -------------------------------------------------------------------------

def probe_analyze_superposition(analyze_superposition: Any, inputs: Plain) -> Plain:
    """{case: the returned dict as plain data, its figure replaced by {"type": the figure's class}}."""
    raw = {}
    with one_thread():
        for case, spec in inputs.items():
            try:
                result = analyze_superposition(*fresh(spec.get("args", [])), **fresh(spec.get("kwargs", {})))
            except Exception as error:  # noqa: BLE001 - what the learner raised is judged
                raw[case] = raised(error)
                continue
            if isinstance(result, dict) and "figure" in result:
                figure = type(result["figure"])
                result = {**result, "figure": {"type": f"{figure.__module__}.{figure.__qualname__}"}}
            raw[case] = to_plain(result)
    return raw


def _oriented(W: Any, n_features: int, n_hidden: int) -> torch.Tensor | None:
    """The returned W as (n_hidden, n_features): as it is, or transposed when it came (n_features, n_hidden)."""
    if not isinstance(W, torch.Tensor) or not W.is_floating_point():
        return None
    if tuple(W.shape) == (n_hidden, n_features):
        return W
    if tuple(W.shape) == (n_features, n_hidden):
        return W.T
    return None


def _case_features(result: Any, case: str, spec: Plain) -> Any:
    if _raised(result):
        return result
    args, kwargs = spec["args"], spec["kwargs"]
    n_features, n_hidden, _ = args
    found: dict[str, Any] = {RETURNS: "dict" if isinstance(result, dict) else _kind(result), MISSING: None,
                             W_SHAPE: None, W_FINITE: None, TRAINED: None}
    if case in SPARSE_CASES:
        found[POLYGON] = None
    if case == DENSE:
        found[TWO_FEATURES] = found[WORSE_INSTANCE] = None
    found.update({COUNT_TYPE: None, COUNT: None, MEAN_TYPE: None, MEAN: None, FIGURE: None})
    if not isinstance(result, dict):
        return found
    found[MISSING] = [key for key in KEYS if key not in result]
    W = result.get("W")
    found[W_SHAPE] = list(W.shape) if isinstance(W, torch.Tensor) else _kind(W)
    count, mean = result.get("n_represented"), result.get("mean_cosine")
    found[COUNT_TYPE] = _kind(count)
    found[MEAN_TYPE] = "float" if isinstance(mean, int) and not isinstance(mean, bool) else _kind(mean)
    figure = result.get("figure")
    figure = figure.get("type") if isinstance(figure, dict) else _kind(figure)
    found[FIGURE] = "a plotly go.Figure" if figure in PLOTLY else str(figure)
    Wm = _oriented(W, n_features, n_hidden)
    if Wm is None:
        return found
    found[W_FINITE] = bool(torch.isfinite(Wm).all())
    if not found[W_FINITE]:
        return found
    found[TRAINED] = not any(torch.allclose(Wm.float(), W0, atol=1e-6, rtol=0)
                             for W0 in _initial(n_features, n_hidden, kwargs["seed"]))
    if case in SPARSE_CASES:
        found[POLYGON] = is_polygon(Wm)
    if case == DENSE:
        found[TWO_FEATURES] = two_features_worth(Wm)
        found[WORSE_INSTANCE] = worse_instance(Wm, args, kwargs)
    found[COUNT] = _label(_number(count), counts(Wm), 0.0)
    found[MEAN] = _label(_number(mean), mean_cosines(Wm), 1e-3)
    return found


def _changes(raw: Plain, inputs: Plain, a: str, b: str) -> bool | None:
    """Do cases a and b (which differ in one input) return different W? None when either has no usable W."""
    Ws = []
    for case in (a, b):
        result = raw.get(case) if isinstance(raw, dict) else None
        n_features, n_hidden, _ = inputs[case]["args"]
        Ws.append(_oriented(result.get("W"), n_features, n_hidden) if isinstance(result, dict) else None)
    if any(W is None for W in Ws):
        return None
    return not torch.allclose(Ws[0].double(), Ws[1].double(), atol=1e-4, rtol=0)


def features_analyze_superposition(raw: Plain, inputs: Plain) -> Plain:
    found = {case: _case_features(raw.get(case) if isinstance(raw, dict) else raw, case, spec)
             for case, spec in inputs.items()}
    found[STEPS_MATTER] = _changes(raw, inputs, SPARSE, MORE_STEPS)
    found[SEED_MATTERS] = _changes(raw, inputs, SPARSE, OTHER_SEED)
    return found


# --- rotation_loss_change --------------------------------------------------------------------------

MODELS = {"ToyModel": ToyModel, "HiddenReLUModel": HiddenReLUModel}
CHANGE, UNCHANGED = "change", "the model is left unchanged"


def build_model(spec: Plain) -> ToyModel:
    """A one-instance model from plain data: {"class", "n_features", "n_hidden", "sparsity", "activation", "W", "b_final"}."""
    model = MODELS[spec["class"]](int(spec["n_features"]), int(spec["n_hidden"]), 1, sparsity=float(spec["sparsity"]),
                                  activation=spec["activation"], device="cpu")
    with torch.no_grad():
        model.W.copy_(spec["W"])
        model.b_final.copy_(spec["b_final"])
    return model


def probe_rotation_loss_change(rotation_loss_change: Any, inputs: Plain) -> Plain:
    """{case: {"change": the return value, "W": model.W after the call, "b_final": model.b_final after it}}."""
    raw = {}
    with torch.random.fork_rng(devices=[]), one_thread():
        for case, spec in inputs.items():
            model = build_model(spec["model"])
            torch.manual_seed(int(spec["global_seed"]))
            try:
                change = to_plain(rotation_loss_change(model, spec["rotation"].clone()))
            except Exception as error:  # noqa: BLE001 - what the learner raised is judged
                raw[case] = raised(error)
                continue
            raw[case] = {"change": change, "W": to_plain(model.W), "b_final": to_plain(model.b_final)}
    return raw


def features_rotation_loss_change(raw: Plain, inputs: Plain) -> Plain:
    found = {}
    for case, spec in inputs.items():
        result = raw.get(case) if isinstance(raw, dict) else raw
        if _raised(result) or not isinstance(result, dict):
            found[case] = result
            continue
        W, b = result.get("W"), result.get("b_final")
        unchanged = (isinstance(W, torch.Tensor) and isinstance(b, torch.Tensor)
                     and W.shape == spec["model"]["W"].shape and torch.equal(W, spec["model"]["W"])
                     and b.shape == spec["model"]["b_final"].shape and torch.equal(b, spec["model"]["b_final"]))
        change = result.get("change")
        if isinstance(change, str):  # judged by its type: a string's digits are float noise (the bottleneck's ~1e-8)
            change = {"unsupported": "str"}
        found[case] = {CHANGE: change, UNCHANGED: bool(unchanged)}
    return found


checks = LessonChecks("04_geometry",
                      probes={"analyze_superposition": probe_analyze_superposition,
                              "rotation_loss_change": probe_rotation_loss_change},
                      features={"analyze_superposition": features_analyze_superposition,
                                "rotation_loss_change": features_rotation_loss_change})
check = checks.check
