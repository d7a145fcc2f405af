"""Visible checks of lesson 07 (neurons and computation): probes for the two random pair batches.

neuron_forward and monosemantic_neurons use the default probe (one call per case). The pair batches are
random, so (as for lesson 02's generate_batch) the learner's function draws one large batch, then the same
generator seed twice and another seed. The probe does not send those batches back: it reduces them to a
few statistics (`pair_statistics`: value range, each feature's zero rate, how often a pair's two features
are on alone or together, neighbouring pairs' co-activation, a uniformity test, the seeds), so that one
check costs milliseconds beyond the learner's own draws. `pair_features` then judges those statistics
against p on the grader's side: shape, range, zero fraction against 1 - p, on together or never together,
balanced, independent pairs, uniform and distinct values, the generator used.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from utils.checks import LessonChecks, Plain
from utils.checks.lesson02 import SIGMAS, _raised, _same, _uniform, probe_generate_batch

TENSOR, SHAPE, FLOAT, RANGE = "a tensor", "shape", "float dtype", "values in [0, 1)"
ZERO = f"each feature zero with probability 1 - p (within {SIGMAS} standard errors)"
TOGETHER = "the two features of a pair are always on (or off) together"
NEVER_BOTH = "the two features of a pair are never on together"
PAIRS_INDEPENDENT = f"different pairs on or off independently (within {SIGMAS} standard errors)"
UNIFORM = "active values uniform in [0, 1) (Kolmogorov-Smirnov test)"
BALANCED = f"the two features of a pair active equally often (within {SIGMAS} standard errors)"
DISTINCT = "when both features of a pair are on, their values are drawn separately"
SAME_SEED = "the same generator seed gives the same batch"
OTHER_SEED = "another generator seed gives another batch"
FEATURES = (TENSOR, SHAPE, FLOAT, RANGE, ZERO, TOGETHER, NEVER_BOTH, BALANCED, PAIRS_INDEPENDENT, UNIFORM, DISTINCT, SAME_SEED,
            OTHER_SEED)


def pair_statistics(draws: list) -> Plain:
    """The four draws [large batch, small, same seed again, another seed] -> a few numbers (or what was raised).

    The large batch x is (batch, n_instances, 2 n_pairs); first = x[..., ::2] != 0, second = x[..., 1::2] != 0.
    Returns {"tensor", "shape", "float"} and, for a float tensor: "min", "max"; "zero_rate" (n_instances,
    2 n_pairs); "one_alone" and "both_on" (counts of pairs with exactly one / both features on); "pair_on_rate"
    (n_instances, n_pairs), how often pair k is on, and "pairs_on_rate" (n_instances, n_pairs, n_pairs), how often
    pairs k and l are on together; "uniform" (Kolmogorov-Smirnov on the active values); "equal_when_both" (pairs both on with equal
    values); "same_seed", "other_seed".
    """
    for draw in draws:
        if _raised(draw):
            return draw
    if not all(isinstance(d, torch.Tensor) for d in draws):
        return {"tensor": False}
    big, small, again, other = draws
    stats: Plain = {"tensor": True, "shape": list(big.shape), "float": big.is_floating_point()}
    if big.ndim != 3 or big.shape[-1] % 2 or not stats["float"]:
        return stats
    x = big.double()
    first, second = x[..., ::2] != 0, x[..., 1::2] != 0
    both, pair_on = first & second, (first | second).double()
    stats.update(min=x.min().item() if x.numel() else 0.0, max=x.max().item() if x.numel() else 0.0,
                 zero_rate=(x == 0).double().mean(dim=0), one_alone=int((first ^ second).sum()), both_on=int(both.sum()),
                 pair_on_rate=pair_on.mean(dim=0), pairs_on_rate=torch.einsum("bik,bil->ikl", pair_on, pair_on) / len(x),
                 uniform=_uniform(x[x != 0]), equal_when_both=int((x[..., ::2][both] == x[..., 1::2][both]).sum()),
                 same_seed=_same(small, again), other_seed=not _same(small, other))
    return stats


def probe_pair_batch(generate: Any, inputs: Plain) -> Plain:
    """{case: pair_statistics of the learner's four draws}: lesson 02's batch probe, reduced in the sandbox."""
    return {case: pair_statistics(draws) if isinstance(draws, list) else draws
            for case, draws in probe_generate_batch(generate, inputs).items()}


def _within(observed: float, expected: float, n: int) -> bool:
    return abs(observed - expected) <= SIGMAS * math.sqrt(max(expected * (1 - expected), 0.0) / n) + 2 / n


def _all_within(observed: Any, expected: Any, n: int) -> bool:
    """observed, expected: tensors (or one float) of the same shape; all within SIGMAS standard errors."""
    pairs = zip(observed.flatten().tolist(), torch.as_tensor(expected, dtype=torch.float64).expand_as(observed).flatten().tolist())
    return all(_within(o, e, n) for o, e in pairs)


def _features(stats: Any, spec: Plain) -> Any:
    if not isinstance(stats, dict) or "tensor" not in stats:
        return stats                                       # what was raised, or what the probe could not read
    batch_size, n_instances, n_pairs, p = spec["args"]
    found: dict[str, Any] = dict.fromkeys(FEATURES)
    found[TENSOR] = bool(stats["tensor"])
    if not found[TENSOR]:
        return found
    found[SHAPE], found[FLOAT] = str(tuple(stats["shape"])), bool(stats["float"])
    if tuple(stats["shape"]) != (batch_size, n_instances, 2 * n_pairs) or not found[FLOAT]:
        return found
    zeros, pair_on = stats["zero_rate"].double(), stats["pair_on_rate"].double()
    found[RANGE] = stats["min"] >= 0 and stats["max"] < 1
    found[ZERO] = _all_within(zeros, 1 - p, batch_size)
    found[TOGETHER], found[NEVER_BOTH] = stats["one_alone"] == 0, stats["both_on"] == 0
    found[BALANCED] = _all_within(1 - zeros[..., ::2], 1 - zeros[..., 1::2], batch_size)
    # Every two pairs, not only neighbours: pairs in halves ((k, k + n_pairs) together) repeat with period
    # n_pairs / 2, which neighbouring pairs alone would miss when n_pairs = 4.
    k, l = torch.triu_indices(n_pairs, n_pairs, offset=1)
    found[PAIRS_INDEPENDENT] = _all_within(stats["pairs_on_rate"].double()[:, k, l], pair_on[:, k] * pair_on[:, l], batch_size)
    found[UNIFORM] = stats["uniform"]
    found[DISTINCT] = stats["equal_when_both"] == 0 if stats["both_on"] else None
    found[SAME_SEED], found[OTHER_SEED] = bool(stats["same_seed"]), bool(stats["other_seed"])
    return found


def pair_features(raw: Plain, inputs: Plain) -> Plain:
    return {case: _features(raw.get(case) if isinstance(raw, dict) else raw, spec) for case, spec in inputs.items()}


checks = LessonChecks("07_neurons_and_computation",
                      probes={"generate_correlated_batch": probe_pair_batch,
                              "generate_anticorrelated_batch": probe_pair_batch},
                      features={"generate_correlated_batch": pair_features,
                                "generate_anticorrelated_batch": pair_features})
check = checks.check
