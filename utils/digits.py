"""Superposition in a network trained on real data: handwritten digits (lesson 08).

The data are scikit-learn's handwritten digits (`sklearn.datasets.load_digits`: 1,797 grey 8x8 images of
the digits 0-9, shipped inside the package, so nothing is downloaded). The network is a one-hidden-layer
MLP, logits = ReLU(x W1 + b1) W2 + b2, whose hidden layer is a privileged basis (lesson 04): the ReLU acts
on each neuron separately, so one may ask what each neuron stands for.

What each hidden unit (a neuron, a random direction, an SAE latent) responds to is summarised by its
mean activation on each class (`per_class_activation`) and one number, the class selectivity index of
Morcos et al. (2018, "On the importance of single directions for generalization"):

    selectivity = (mu_max - mu_rest) / (mu_max + mu_rest)

where mu_max is the unit's mean activation on the class that activates it most and mu_rest its mean
activation over the other classes (each class weighted equally). It is 0 for a unit that responds to every
class alike and 1 for one that fires on a single class only; a unit that never fires has none (nan).

Its chance level is that of random directions in h's space. Read like neurons, ReLU(h . d), they fire on about
half the inputs; but the index rises as a unit fires more rarely, whatever it reads, so the fair baseline is
random directions thresholded to fire as often as the units compared (`matched_random_selectivity`). Lesson 08
finds neurons and SAE latents alike near that baseline, and tests it (tests/test_digits.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from utils.device import default_device, make_generator
from utils.model import _check_positive_int, select_instance

N_CLASSES = 10
SIDE = 8  # images are SIDE x SIDE pixels
N_PIXELS = SIDE * SIDE


# --- data ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Digits:
    """A seeded train / held-out split. x_*: (n, 64) float pixels in [0, 1]; y_*: (n,) int64 labels 0-9."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(test_fraction: float = 0.25, seed: int = 0, device: str | torch.device | None = None) -> Digits:
    """The 1,797 digits split into train and held-out parts, stratified: each class keeps the same fraction out.

    Pixels (0-16 in scikit-learn) are divided by 16. The split depends only on `seed`.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}.")
    from sklearn.datasets import load_digits as sklearn_digits  # here, not at the top: importing sklearn takes time

    data = sklearn_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16
    y = torch.tensor(data.target, dtype=torch.int64)
    g = make_generator(seed, torch.device("cpu"))
    test = torch.zeros(len(y), dtype=torch.bool)
    for c in range(N_CLASSES):
        members = (y == c).nonzero().flatten()
        held_out = members[torch.randperm(len(members), generator=g)[:round(test_fraction * len(members))]]
        test[held_out] = True
    device = default_device(device)
    return Digits(x[~test].to(device), y[~test].to(device), x[test].to(device), y[test].to(device))


# --- the network ---------------------------------------------------------------------------------

class DigitsMLP(nn.Module):
    """n_instances independent MLPs 64 -> n_hidden (ReLU) -> 10, trained together (one per seed).

    Attributes:
        W1: (n_instances, 64, n_hidden), b1: (n_instances, n_hidden): the hidden layer h = ReLU(x W1 + b1).
        W2: (n_instances, n_hidden, 10), b2: (n_instances, 10): the logits h W2 + b2.
    """

    def __init__(self, n_hidden: int = 32, n_instances: int = 1, *, device: str | torch.device | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        _check_positive_int(n_hidden, "n_hidden", "e.g. DigitsMLP(n_hidden=32).")
        _check_positive_int(n_instances, "n_instances", "use 1 for a single network.")
        self.n_hidden, self.n_instances = n_hidden, n_instances
        g = make_generator(seed, torch.device("cpu"))

        def kaiming(fan_in: int, fan_out: int) -> torch.Tensor:  # He initialisation, suited to ReLU
            return torch.randn(n_instances, fan_in, fan_out, generator=g) * math.sqrt(2 / fan_in)

        device = default_device(device)
        self.W1 = nn.Parameter(kaiming(N_PIXELS, n_hidden).to(device))
        self.b1 = nn.Parameter(torch.zeros(n_instances, n_hidden, device=device))
        self.W2 = nn.Parameter(kaiming(n_hidden, N_CLASSES).to(device))
        self.b2 = nn.Parameter(torch.zeros(n_instances, N_CLASSES, device=device))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """h = ReLU(x W1 + b1): x (batch, 64), the same images for every instance, -> (batch, n_instances, n_hidden)."""
        if x.ndim != 2 or x.shape[1] != N_PIXELS:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (batch, {N_PIXELS}), one flattened 8x8 image per row.")
        return torch.relu(torch.einsum("bp,iph->bih", x, self.W1) + self.b1)

    def logits_from_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """h (batch, n_instances, n_hidden) -> logits (batch, n_instances, 10): where an edited h is spliced in."""
        return torch.einsum("bih,ihc->bic", h, self.W2) + self.b2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, 64) -> logits (batch, n_instances, 10)."""
        return self.logits_from_hidden(self.hidden(x))

    def select(self, k: int) -> DigitsMLP:
        """A one-instance DigitsMLP copy of instance k: every tensor's leading axis is the instance."""
        return select_instance(self, k)


def train_classifier(model: DigitsMLP, x: torch.Tensor, y: torch.Tensor, steps: int = 600, batch_size: int = 256,
                     lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Train every instance with AdamW on cross-entropy, minibatches drawn with replacement (seeded).

    x: (n, 64), y: (n,). Returns (steps, n_instances) CPU tensor: each instance's training loss per step.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got steps={steps}, batch_size={batch_size}.")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    g = make_generator(seed, x.device)
    history = []
    for _ in tqdm(range(steps), disable=not progress, desc="training the MLP", unit="step", mininterval=0.5):
        rows = torch.randint(len(x), (batch_size,), generator=g, device=x.device)
        logits = model(x[rows])                                                    # (batch, i, 10)
        loss = nn.functional.cross_entropy(logits.transpose(1, 2), y[rows, None].expand(-1, model.n_instances),
                                           reduction="none").mean(0)               # (i,)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        history.append(loss.detach())
    return torch.stack(history).cpu()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions: logits (batch, *instances, 10), y (batch,) -> (*instances)."""
    correct = logits.argmax(-1) == y.reshape(-1, *[1] * (logits.ndim - 2))
    return correct.float().mean(0)


def class_accuracy(logits: torch.Tensor, y: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """Accuracy on the inputs of each class: logits (batch, n_classes), y (batch,) -> (n_classes,)."""
    correct = (logits.argmax(-1) == y).float()
    counts = torch.bincount(y, minlength=n_classes).float()
    return torch.zeros(n_classes, dtype=correct.dtype, device=correct.device).index_add_(0, y, correct) / counts


def accuracy_drop(logits_clean: torch.Tensor, logits_edited: torch.Tensor, y: torch.Tensor,
                  n_classes: int = N_CLASSES) -> torch.Tensor:
    """How much an intervention costs each class: class_accuracy(clean) - class_accuracy(edited), (n_classes,)."""
    return class_accuracy(logits_clean, y, n_classes) - class_accuracy(logits_edited, y, n_classes)


def targeted_and_collateral(drop: torch.Tensor, target: int) -> tuple[float, float]:
    """(the drop on the target class, the mean drop on the other classes) from an accuracy_drop (n_classes,)."""
    others = torch.ones_like(drop, dtype=torch.bool)
    others[target] = False
    return float(drop[target]), float(drop[others].mean())


# --- what a unit responds to ---------------------------------------------------------------------

def per_class_activation(acts: torch.Tensor, y: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """Mean activation of every unit on the inputs of each class: acts (batch, n_units), y (batch,) -> (n_classes, n_units).

    Every class must occur in y (a class without inputs has no mean).
    """
    counts = torch.bincount(y, minlength=n_classes).to(acts.dtype)
    sums = torch.zeros(n_classes, acts.shape[1], dtype=acts.dtype, device=acts.device).index_add_(0, y, acts)
    return sums / counts[:, None]


def selectivity(table: torch.Tensor) -> torch.Tensor:
    """Class selectivity index of each unit (module docstring): table (n_classes, n_units) of mean activations >= 0
    -> (n_units,) in [0, 1], nan for a unit whose activation is 0 on every class."""
    top = table.amax(dim=0)  # amax: max(dim) also finds indices, much slower on small CPU tensors
    rest = (table.sum(0) - top) / (table.shape[0] - 1)
    return (top - rest) / (top + rest)


def random_directions(n_directions: int, n_hidden: int, seed: int = 0) -> torch.Tensor:
    """(n_directions, n_hidden) directions uniform on the sphere (unit Gaussian rows): the chance baseline for neurons."""
    d = torch.randn(n_directions, n_hidden, generator=make_generator(seed, torch.device("cpu")))
    return d / d.norm(dim=1, keepdim=True)


def direction_activations(h: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Read h along directions as a neuron would: ReLU(h . d). h (batch, n_hidden), directions (n, n_hidden) -> (batch, n).

    For the neuron basis (d = e_j) this is h itself, since h >= 0 after the network's ReLU.
    """
    return torch.relu(h @ directions.to(h).T)


def top_activating(acts: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Indices of each unit's k most activating inputs, strongest first: acts (batch, n_units) -> (n_units, k)."""
    return acts.topk(k, dim=0).indices.T


def thresholded_directions(h: torch.Tensor, directions: torch.Tensor, firing: torch.Tensor) -> torch.Tensor:
    """Random directions made as sparse as the units they stand in for: ReLU(h . d - t), t set so that unit k fires
    on a fraction firing[k] of the inputs. h (batch, n_hidden), directions (n, n_hidden), firing (n,) -> (batch, n).

    A unit that fires rarely looks selective almost whatever it reads (it only fires on the far end of its
    projection, where inputs of one class cluster), so selectivities are compared at equal firing rates.
    """
    projection = h @ directions.to(h).T                                       # (batch, n)
    threshold = torch.stack([projection[:, k].quantile(1 - float(firing[k])) for k in range(len(firing))])
    return torch.relu(projection - threshold)


def matched_random_selectivity(h: torch.Tensor, y: torch.Tensor, acts: torch.Tensor, repeats: int = 20,
                               seed: int = 0) -> torch.Tensor:
    """The chance level of `acts`'s selectivities: `repeats` random directions in h's space per live unit of acts,
    each thresholded to fire as often as that unit. h (batch, n_hidden), y (batch,), acts (batch, n_units)
    -> (repeats * n_live,) selectivities."""
    firing = (acts > 0).float().mean(0)
    firing = firing[firing > 0].repeat(repeats)
    units = thresholded_directions(h, random_directions(len(firing), h.shape[1], seed), firing)
    return selectivity(per_class_activation(units, y))


# --- feature splitting ---------------------------------------------------------------------------

def decoder_cosines(W_a: torch.Tensor, W_b: torch.Tensor) -> torch.Tensor:
    """Cosines between the latent directions of two dictionaries: W_a (n_a, d), W_b (n_b, d) -> (n_a, n_b)."""
    return (W_a / W_a.norm(dim=1, keepdim=True)) @ (W_b / W_b.norm(dim=1, keepdim=True)).T


def latent_family(decoders: list[torch.Tensor], root: int, alive: list[torch.Tensor] | None = None,
                  min_cosine: float = 0.5) -> list[list[tuple[int, int, float]]]:
    """A latent of the smallest dictionary and its descendants in larger ones (feature splitting).

    decoders: dictionaries of growing size, each (n_latents_k, n_hidden); alive: optional (n_latents_k,) bool per
    dictionary (dead latents have meaningless directions). Level 0 is [root]; a live latent of dictionary k+1
    belongs to level k+1 when its nearest live latent of dictionary k (by decoder cosine) is in level k, at a
    cosine of at least min_cosine.

    Returns one list per dictionary of (latent, parent in the previous level, cosine to that parent), by cosine.
    """
    alive = alive or [torch.ones(len(d), dtype=torch.bool) for d in decoders]
    levels = [[(root, -1, 1.0)]]
    for k in range(1, len(decoders)):
        cos = decoder_cosines(decoders[k], decoders[k - 1]).masked_fill(~alive[k - 1][None, :], -2.0)  # (n_k, n_{k-1})
        best, parent = cos.max(dim=1)
        members = {j for j, _, _ in levels[-1]}
        level = [(j, int(parent[j]), float(best[j])) for j in range(len(decoders[k]))
                 if alive[k][j] and int(parent[j]) in members and best[j] >= min_cosine]
        levels.append(sorted(level, key=lambda item: -item[2]))
    return levels


def chance_selectivity(h: torch.Tensor, y: torch.Tensor, firing: torch.Tensor, n_directions: int = 50,
                       seed: int = 0) -> torch.Tensor:
    """Mean selectivity of random directions thresholded to fire on each fraction in `firing`, (len(firing),):
    the curve that any unit's selectivity should be compared with at its own firing rate."""
    rates = torch.as_tensor(firing, dtype=torch.float32)
    units = thresholded_directions(h, random_directions(n_directions * len(rates), h.shape[1], seed),
                                   rates.repeat_interleave(n_directions))
    return selectivity(per_class_activation(units, y)).reshape(len(rates), n_directions).nanmean(1)


def fvu_at_l0(l0: torch.Tensor, fvu: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """An L0 / FVU curve read at other L0 values, linear in log L0: l0, fvu (n,) from a sweep, at (m,) -> (m,),
    nan outside the curve's range (no extrapolation)."""
    order = l0.argsort()
    x, f, q = l0[order].log(), fvu[order], torch.as_tensor(at, dtype=l0.dtype).log()
    right = torch.searchsorted(x, q).clamp(1, len(x) - 1)
    w = (q - x[right - 1]) / (x[right] - x[right - 1])
    out = f[right - 1] + w * (f[right] - f[right - 1])
    return torch.where((q >= x[0]) & (q <= x[-1]), out, torch.full_like(out, float("nan")))
