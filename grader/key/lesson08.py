"""Answer key of lesson 08 (a real network: handwritten digits): references, known wrong answers, input builders.

Units are columns: acts (batch, n_units) are the activations of any set of units (neurons, random
directions, SAE latents), y (batch,) the labels 0..n_classes-1, a per-class table (n_classes, n_units).
Every input builder makes n_units differ from n_classes, so an answer along the wrong axis has the wrong shape.
"""

from __future__ import annotations

import torch

from grader.key import Exercise, Wrong, integer, uniform
from utils import digits
from utils.sae import TopKSparseAutoencoder

LESSON = "08_real_network"
CHECKS = "utils.checks.lesson08"


def _labels(g: torch.Generator, batch: int, n_classes: int) -> torch.Tensor:
    """Labels in which every class occurs, in unequal numbers (so a sum and a mean differ by more than a factor)."""
    y = torch.cat([torch.arange(n_classes), torch.randint(n_classes, (batch - n_classes,), generator=g)])
    y[-3:] = 0  # class 0 is the largest
    return y[torch.randperm(batch, generator=g)]


def _acts(g: torch.Generator, batch: int, n_units: int) -> torch.Tensor:
    """Non-negative activations with exact zeros, as a ReLU gives them."""
    return torch.relu(torch.randn(batch, n_units, generator=g) + 0.3) * (1 + 2 * torch.rand(n_units, generator=g))


def _sizes(g: torch.Generator) -> tuple[int, int, int]:
    n_classes = integer(g, 3, 5)
    n_units = n_classes + integer(g, 1, 3)
    return n_classes, n_units, integer(g, 16, 24)


# --- per_class_activation ------------------------------------------------------------------------

def class_table_inputs(g: torch.Generator) -> dict:
    cases = {}
    for name in ("unequal classes", "another size"):
        n_classes, n_units, batch = _sizes(g)
        cases[name] = {"args": [_acts(g, batch, n_units), _labels(g, batch, n_classes), n_classes]}
    return cases


def _class_sums(acts: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    return torch.stack([acts[y == c].sum(0) for c in range(n_classes)])


PER_CLASS_ACTIVATION = Exercise(
    name="per_class_activation", points=1, inputs=class_table_inputs, reference=digits.per_class_activation,
    answers=("utils.digits.per_class_activation",),
    wrong=(
        Wrong("transposed", "the table is transposed: return (n_classes, n_units), one row per class (row c: every "
              "unit's mean activation on the inputs of class c).",
              lambda a, y, n: digits.per_class_activation(a, y, n).T),
        Wrong("summed", "you summed the activations of each class instead of averaging them: classes have different "
              "numbers of inputs, so divide by the number of inputs of THAT class.", _class_sums),
        Wrong("divided_by_batch", "you divided each class's sum by the whole batch size; divide by the number of "
              "inputs of that class (the mean over the class).", lambda a, y, n: _class_sums(a, y, n) / len(y)),
        Wrong("ignored_labels", "every row is the same: you averaged over all inputs instead of over the inputs of "
              "each class (select the rows with y == c).", lambda a, y, n: a.mean(0).expand(n, -1).clone()),
        Wrong("normalised_per_unit", "each column was normalised to sum to 1; return the plain mean activations "
              "(selectivity normalises later).",
              lambda a, y, n: (lambda t: t / t.sum(0, keepdim=True))(digits.per_class_activation(a, y, n))),
    ),
    spec="Return (n_classes, n_units): entry [c, u] is the mean of acts[:, u] over the inputs with y == c.",
    passed="per_class_activation: each unit's mean activation on each class, (n_classes, n_units)",
)


# --- selectivity ---------------------------------------------------------------------------------

def selectivity_inputs(g: torch.Generator) -> dict:
    """Tables of mean activations with a unit silent on every class (nan), one that answers a single class (1)
    and one that answers every class alike (0)."""
    cases = {}
    for name in ("silent and single-class units", "another size"):
        n_classes, n_units, _ = _sizes(g)
        table = torch.rand(n_classes, n_units, generator=g) ** 2 * (0.5 + 2 * torch.rand(n_units, generator=g))
        table[:, 1] = 0.0
        table[:, 2] = 0.0
        table[integer(g, 0, n_classes - 1), 2] = uniform(g, 0.5, 2.0)
        table[:, 3] = uniform(g, 0.2, 1.0)
        cases[name] = {"args": [table[:, torch.randperm(n_units, generator=g)]]}
    return cases


def _index(top: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    return (top - rest) / (top + rest)


def _top(table: torch.Tensor) -> torch.Tensor:
    return table.amax(0)


def _rest(table: torch.Tensor) -> torch.Tensor:
    return (table.sum(0) - _top(table)) / (table.shape[0] - 1)


SELECTIVITY = Exercise(
    name="selectivity", points=2, inputs=selectivity_inputs, reference=digits.selectivity,
    answers=("utils.digits.selectivity",),
    wrong=(
        Wrong("per_class", "you computed one number per class; selectivity is one number per UNIT (column of the "
              "table): take the max and the rest along the class axis (dim 0).",
              lambda t: digits.selectivity(t.T.contiguous())),
        Wrong("rest_includes_top", "mu_rest is the mean over the OTHER classes: leave the top class out of it (you "
              "averaged over all classes).", lambda t: _index(_top(t), t.mean(0))),
        Wrong("rest_summed", "mu_rest is the MEAN activation over the other classes, not their sum.",
              lambda t: _index(_top(t), t.sum(0) - _top(t))),
        Wrong("second_best", "mu_rest is the mean over all the other classes, not the second-best class alone.",
              lambda t: _index(_top(t), t.topk(2, dim=0).values[1])),
        Wrong("not_normalised", "divide the difference by mu_max + mu_rest, so that the index lies between 0 and 1 "
              "whatever the unit's scale.", lambda t: _top(t) - _rest(t)),
        Wrong("divided_by_top", "the index divides by mu_max + mu_rest, not by mu_max alone.",
              lambda t: (_top(t) - _rest(t)) / _top(t)),
        Wrong("silent_is_zero", "a unit that never fires (0 on every class) has no selectivity: 0 / 0 is nan, and "
              "nan is the honest answer (0 would count it as a perfectly unselective unit). Do not clamp the "
              "denominator.", lambda t: torch.nan_to_num(digits.selectivity(t), nan=0.0)),
    ),
    hints={"silent and single-class units": "A unit silent on every class gives nan; one that fires on a single "
                                            "class gives 1; one equal on every class gives 0."},
    spec="Return (n_units,): (mu_max - mu_rest) / (mu_max + mu_rest) per column, mu_max the column's largest entry "
         "and mu_rest the mean of its other entries (nan for an all-zero column).",
    passed="selectivity: (mu_max - mu_rest) / (mu_max + mu_rest) per unit, nan for a silent unit",
)


# --- topk_activation -----------------------------------------------------------------------------

def reference_topk_activation(pre: torch.Tensor, k: int) -> torch.Tensor:
    return TopKSparseAutoencoder.top_k(pre, k)


def topk_inputs(g: torch.Generator) -> dict:
    """Pre-activations (batch, n_latents) with one row that has fewer than k positive entries, and one row
    whose largest entries in absolute value are negative; the batch is long enough that some column has more
    than k positive entries (so a top-k over the batch drops some)."""
    cases = {}
    for name in ("few positive", "another k"):
        k = integer(g, 2, 4)
        batch, n_latents = integer(g, 12, 16), integer(g, 9, 12)
        pre = torch.randn(batch, n_latents, generator=g)
        pre[0] = -torch.rand(n_latents, generator=g) - 0.1
        pre[0, integer(g, 0, n_latents - 1)] = uniform(g, 0.5, 1.5)     # only one positive entry
        pre[1, :k] = -3 - torch.rand(k, generator=g)                    # the largest |pre| of row 1 are negative
        cases[name] = {"args": [pre, k]}
    return cases


def _keep(pre: torch.Tensor, indices: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(pre).scatter(-1, indices, values)


TOPK_ACTIVATION = Exercise(
    name="topk_activation", points=2, inputs=topk_inputs, reference=reference_topk_activation,
    answers=("utils.sae.TopKSparseAutoencoder",),
    wrong=(
        Wrong("no_relu", "some kept activations are negative: keep the k largest pre-activations of each input and "
              "then apply ReLU, so a latent never fires negatively (an input with fewer than k positive "
              "pre-activations has fewer than k active latents).",
              lambda p, k: _keep(p, p.topk(k, dim=-1).indices, p.topk(k, dim=-1).values)),
        Wrong("largest_abs", "you kept the k largest |pre|; keep the k LARGEST pre-activations (a very negative one "
              "is a latent that is far from firing).",
              lambda p, k: _keep(p, p.abs().topk(k, dim=-1).indices, torch.relu(p.gather(-1, p.abs().topk(k, dim=-1).indices)))),
        Wrong("over_the_batch", "you took the top k over the batch (dim 0); top-k is per input: in each ROW keep "
              "the k largest of its n_latents pre-activations.",
              lambda p, k: _keep(p.T, p.T.topk(k, dim=-1).indices, torch.relu(p.T.topk(k, dim=-1).values)).T),
        Wrong("mask", "you returned which latents were kept (0 or 1); return their activations, ReLU of the kept "
              "pre-activations.", lambda p, k: (reference_topk_activation(p, k) > 0).float()),
        Wrong("relu_only", "every positive pre-activation was kept; keep only the k largest of each input (the rest "
              "are set to 0).", lambda p, k: torch.relu(p)),
    ),
    hints={"few positive": "An input with fewer than k positive pre-activations keeps only those: ReLU comes after "
                           "the top-k."},
    spec="Return a (batch, n_latents) tensor: in each row the k largest pre-activations, passed through ReLU, "
         "and 0 everywhere else.",
    passed="topk_activation: the k largest pre-activations of each input, through ReLU, zeros elsewhere",
)


# --- accuracy_drop -------------------------------------------------------------------------------

def drop_inputs(g: torch.Generator) -> dict:
    """Clean logits that are right except on four inputs (none of class 1); an edit that breaks half of class 1
    and repairs two of the four wrong inputs (so 'predictions changed' and 'accuracy dropped' differ)."""
    cases = {}
    for name in ("targeted edit", "another size"):
        n_classes, _, batch = _sizes(g)
        y = _labels(g, batch, n_classes)
        rows = torch.arange(batch)
        clean = torch.randn(batch, n_classes, generator=g)
        clean[rows, y] = clean.amax(1) + 0.5 + torch.rand(batch, generator=g)                  # right ...
        others = (y != 1).nonzero().flatten()
        wrong_rows = others[torch.randperm(len(others), generator=g)[:4]]
        clean[wrong_rows, y[wrong_rows]] = clean[wrong_rows].amin(1) - 0.5                   # ... except 4
        edited = clean.clone()
        ones = (y == 1).nonzero().flatten()
        broken = ones[: max(1, len(ones) // 2)]
        edited[broken, 1] = edited[broken].amin(1) - 1.0                                     # half of class 1
        repaired = wrong_rows[:2]
        edited[repaired, y[repaired]] = edited[repaired].amax(1) + 1.0                       # two repaired
        cases[name] = {"args": [clean, edited, y, n_classes]}
    return cases


def _class_correct(logits: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    return torch.stack([(logits[y == c].argmax(-1) == c).float().sum() for c in range(n)])


def _changed(clean: torch.Tensor, edited: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    changed = (clean.argmax(-1) != edited.argmax(-1)).float()
    return torch.stack([changed[y == c].mean() for c in range(n)])


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis, written out: torch's own is slow on small tensors with several CPU threads."""
    e = (logits - logits.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def _probability_drop(clean: torch.Tensor, edited: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    p = _softmax(clean) - _softmax(edited)
    right = p[torch.arange(len(y)), y]
    return torch.stack([right[y == c].mean() for c in range(n)])


def _by_prediction(clean: torch.Tensor, edited: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    def accuracy(logits: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(-1)
        return torch.stack([(y[pred == c] == c).float().mean() for c in range(n)])
    return accuracy(clean) - accuracy(edited)


ACCURACY_DROP = Exercise(
    name="accuracy_drop", points=2, inputs=drop_inputs, reference=digits.accuracy_drop,
    answers=("utils.digits.accuracy_drop", "utils.digits.class_accuracy"),
    wrong=(
        Wrong("reversed", "the signs are reversed: the drop is clean accuracy minus edited accuracy, positive where "
              "the edit hurts.", lambda c, e, y, n: -digits.accuracy_drop(c, e, y, n)),
        Wrong("overall", "you returned the overall accuracy drop; return one value per class: the drop in accuracy "
              "on the inputs whose TRUE label is c.",
              lambda c, e, y, n: digits.accuracy(c, y) - digits.accuracy(e, y)),
        Wrong("counts", "you counted the inputs that became wrong; return fractions: each class's accuracy (correct "
              "inputs of class c / inputs of class c) before minus after.",
              lambda c, e, y, n: _class_correct(c, y, n) - _class_correct(e, y, n)),
        Wrong("predictions_changed", "you measured how often the prediction CHANGED; the question is how much the "
              "accuracy dropped (an edit can also repair an input the clean model got wrong).", _changed),
        Wrong("probability", "you measured the drop in the probability of the true class; the question asks for the "
              "drop in accuracy (argmax of the logits equal to the label).", _probability_drop),
        Wrong("by_prediction", "you grouped the inputs by the class the model PREDICTED; group them by their true "
              "label y.", _by_prediction),
    ),
    hints={"targeted edit": "The edit breaks half the inputs of class 1 and repairs two inputs the clean model got "
                            "wrong: those count as negative drops."},
    spec="Return (n_classes,): for each class c, accuracy of logits_clean on the inputs with y == c minus that of "
         "logits_edited (accuracy: argmax over the last dimension equals the label).",
    passed="accuracy_drop: per true class, clean accuracy minus edited accuracy",
)

EXERCISES = [PER_CLASS_ACTIVATION, SELECTIVITY, TOPK_ACTIVATION, ACCURACY_DROP]
