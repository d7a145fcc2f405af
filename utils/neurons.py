"""Superposition in a privileged basis, computation in superposition, correlated features (lesson 07).

The paper's neuron model has a ReLU on its hidden layer, so its hidden coordinates (the neurons) are
special: rotating them changes what the model computes.

    h = ReLU(W1 x),   y = ReLU(W2 h + b)

with W1 (n_hidden, n_features) and W2 (n_features, n_hidden) per instance. `task="identity"` asks y = x
on features in [0, 1), `task="abs"` asks y = |x| on features uniform in [-1, 1] (the paper's
absolute-value task, untied weights). `tied=True` sets W2 = W1^T, the paper's privileged-basis model
(lesson 04's `utils.geometry.HiddenReLUModel`, here with closed-form gradients: several times faster).

Also here: how many neurons are monosemantic, how many features a model computes |x| for, and the
batches of correlated and anti-correlated feature pairs.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from utils.data import sparse_features
from utils.device import default_device, make_generator
from utils.model import PerFeature, ToyModel, _check_positive_int, register_feature_data

Task = Literal["identity", "abs"]

#: A neuron whose input weights have a norm below this reads (almost) nothing: it counts as dead.
DEAD_NORM = 0.1
#: A neuron is monosemantic when one feature carries at least this share of its squared input weights.
MONOSEMANTIC_SHARE = 0.9
#: |x_i| counts as computed when the error on x_i alone is at most this fraction of E[x_i^2] = 1/3.
COMPUTED_ERROR = 0.1


def signed_features(batch_size: int, feature_probability: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch_size, n_instances, n_features): 0 with probability 1 - p, else uniform in [-1, 1).

    feature_probability: (n_instances, n_features), the probability p that a feature is active.
    """
    x = sparse_features(batch_size, feature_probability, generator)
    return torch.where(x > 0, 2 * x - 1, x)


class NeuronModel(nn.Module):
    """n_instances independent neuron models  y = ReLU(W2 ReLU(W1 x) + b), trained together by utils.train.

    Attributes:
        W1: (n_instances, n_hidden, n_features) parameter; row W1[i, k] is neuron k's input weights.
        W2: (n_instances, n_features, n_hidden) parameter; column W2[i, :, k] is neuron k's output weights.
        b_final: (n_instances, n_features) parameter, the output bias.
        sparsity, importance: (n_instances, n_features) buffers, as in utils.ToyModel.
        task: "identity" (target x, features in [0, 1)) or "abs" (target |x|, features in [-1, 1)).
        tied: when True, W2 is not a parameter but W1^T (a view: it follows W1).
    """

    def __init__(self, n_features: int, n_hidden: int, n_instances: int = 1, *, sparsity: PerFeature = 0.0,
                 importance: PerFeature = 1.0, task: Task = "identity", tied: bool = False, device: str | torch.device | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        _check_positive_int(n_features, "n_features", "the model needs at least one feature.")
        _check_positive_int(n_hidden, "n_hidden", "the model needs at least one neuron.")
        _check_positive_int(n_instances, "n_instances", "use 1 for a single model.")
        if task not in ("identity", "abs"):
            raise ValueError(f"task must be 'identity' or 'abs', got {task!r}.")
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances
        self.task, self.tied = task, tied
        device = default_device(device)
        register_feature_data(self, sparsity, importance, device)
        # W1 Xavier-normal per instance, drawn on the CPU so that a seed gives the same model anywhere. Untied,
        # W2 starts at |W1|^T: then every output starts positive on its own feature, for either sign of it, so
        # none starts dead behind its ReLU (a random W2 leaves many outputs stuck at 0 on the abs task).
        std = math.sqrt(2.0 / (n_hidden + n_features))
        W1 = std * torch.randn((n_instances, n_hidden, n_features), generator=make_generator(seed, torch.device("cpu")))
        self.W1 = nn.Parameter(W1.to(device))
        if not tied:
            self.W2 = nn.Parameter(W1.abs().transpose(1, 2).contiguous().to(device))
        self.b_final = nn.Parameter(torch.zeros((n_instances, n_features), device=device))

    def __getattr__(self, name: str):
        if name == "W2" and self.__dict__.get("tied"):
            return self.W1.transpose(1, 2)
        return super().__getattr__(name)

    @property
    def feature_probability(self) -> torch.Tensor:
        """(n_instances, n_features): 1 - S."""
        return 1.0 - self.sparsity

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Neuron activations ReLU(W1 x): (batch, n_instances, n_features) -> (batch, n_instances, n_hidden)."""
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.n_instances, self.n_features):
            raise ValueError(f"expected x of shape (batch, {self.n_instances}, {self.n_features}), got {tuple(x.shape)}.")
        return torch.relu(torch.einsum("bif,ihf->bih", x, self.W1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = ReLU(W2 h + b): (batch, n_instances, n_features) -> the same shape."""
        return torch.relu(torch.einsum("bih,ifh->bif", self.hidden(x), self.W2) + self.b_final)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the model should output: x itself, or |x| for the abs task."""
        return x.abs() if self.task == "abs" else x

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch_size, n_instances, n_features) sparse features, in [0, 1) (identity) or [-1, 1) (abs) when active."""
        draw = signed_features if self.task == "abs" else sparse_features
        return draw(batch_size, self.feature_probability, generator)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error against target(x), averaged over batch and features: (n_instances,)."""
        return (self.importance * (self.target(x) - y) ** 2).mean(dim=(0, 2))

    def loss_and_grads(self, x: torch.Tensor) -> torch.Tensor:
        """Per-instance loss on x, with gradients written into W1.grad, W2.grad and b_final.grad.

        Closed-form backward (tests check it against autograd): several times faster than autograd for these
        tiny matrices, where the per-operation overhead dominates. A subclass that changes forward, target
        or loss gets autograd instead, so it never trains on stale formulas.

        x: (batch, n_instances, n_features) -> loss: (n_instances,), detached.
        """
        if any(getattr(type(self), name) is not getattr(NeuronModel, name) for name in ("forward", "target", "loss")):
            loss = self.loss(x, self(x))
            self.zero_grad(set_to_none=True)
            loss.sum().backward()
            return loss.detach()
        with torch.no_grad():
            x_i = x.transpose(0, 1)                                            # (i, batch, f)
            pre = torch.bmm(x_i, self.W1.transpose(1, 2))                      # (i, batch, h)
            h = torch.relu(pre)
            z = torch.baddbmm(self.b_final[:, None, :], h, self.W2.transpose(1, 2))  # (i, batch, f)
            err = torch.relu(z).sub_(self.target(x_i))                        # y - target
            dz = err * (self.importance * (2.0 / (x.shape[0] * self.n_features)))[:, None, :]
            loss = torch.linalg.vecdot(dz.flatten(1), err.flatten(1)) / 2
            dz = torch.ops.aten.threshold_backward(dz, z, 0.0)                 # zero where the output ReLU clipped
            dW2 = torch.bmm(dz.transpose(1, 2), h)                            # (i, f, h)
            self.b_final.grad = dz.sum(dim=1)
            dpre = torch.ops.aten.threshold_backward(torch.bmm(dz, self.W2), pre, 0.0)
            dW1 = torch.bmm(dpre.transpose(1, 2), x_i)                         # (i, h, f)
            if self.tied:                                                      # W1 is used twice: sum both paths
                self.W1.grad = dW1.add_(dW2.transpose(1, 2))
            else:
                self.W1.grad, self.W2.grad = dW1, dW2
        return loss

    def extra_repr(self) -> str:
        return (f"n_features={self.n_features}, n_hidden={self.n_hidden}, n_instances={self.n_instances}, "
                f"task={self.task!r}, tied={self.tied}")


# --- neurons: monosemantic or polysemantic ----------------------------------------------------------

def driving_weights(W1: torch.Tensor, signed_inputs: bool = False) -> torch.Tensor:
    """The input weights that can make a neuron fire: all of them for signed inputs, else only the positive
    ones (a feature >= 0 with a negative weight can only hold its neuron below zero). Same shape as W1."""
    W1 = W1.detach().float()
    return W1 if signed_inputs else W1.clamp_min(0)


def neuron_feature_shares(W1: torch.Tensor, signed_inputs: bool = False) -> torch.Tensor:
    """Each feature's share of what drives a neuron: w_f^2 / sum_g w_g^2 over its driving weights w.

    W1: (n_hidden, n_features) or (n_instances, n_hidden, n_features) -> the same shape; rows sum to 1
    (a neuron that nothing drives gets zeros).
    """
    squared = driving_weights(W1, signed_inputs) ** 2
    return squared / squared.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def count_neurons(W1: torch.Tensor, signed_inputs: bool = False, share: float = MONOSEMANTIC_SHARE,
                  dead_norm: float = DEAD_NORM) -> dict[str, torch.Tensor]:
    """How many neurons are monosemantic, polysemantic and dead, per instance.

    Definition: a neuron's driving weights w (`driving_weights`: the positive input weights when inputs are
    >= 0) decide what makes it fire. It is dead when ||w|| < `dead_norm`; otherwise monosemantic when one
    feature carries at least `share` of ||w||^2, and polysemantic when none does.

    W1: (n_instances, n_hidden, n_features) (or one (n_hidden, n_features) matrix).
    Returns {"monosemantic", "polysemantic", "dead"}: (n_instances,) int64 tensors summing to n_hidden.
    """
    W1 = driving_weights(W1, signed_inputs)
    if W1.ndim == 2:
        W1 = W1[None]
    alive = W1.norm(dim=-1) >= dead_norm
    mono = alive & (neuron_feature_shares(W1, signed_inputs=True).amax(dim=-1) >= share)
    return {"monosemantic": mono.sum(dim=-1), "polysemantic": (alive & ~mono).sum(dim=-1),
            "dead": (~alive).sum(dim=-1)}


# --- computation in superposition: the abs task --------------------------------------------------

@torch.no_grad()
def single_feature_errors(model: NeuronModel, points: int = 101, side: Literal["both", "negative", "positive"] = "both"
                          ) -> torch.Tensor:
    """How well each |x_i| is computed when feature i is the only active one.

    For every feature i, x_i sweeps `points` values evenly over [-1, 1] (or only its negative or positive
    half) with all other features 0; the error is the mean of (y_i - |x_i|)^2 divided by the mean of x_i^2
    (1/3 for a fine sweep): 0 is a perfect |x|, 1 an output of 0; over both halves 0.25 is the best constant
    (1/2) and 0.5 a one-sided ReLU(x) or ReLU(-x).

    Returns (n_instances, n_features).
    """
    n_inst, n_feat = model.n_instances, model.n_features
    device = model.W1.device
    low, high = {"both": (-1.0, 1.0), "negative": (-1.0, 0.0), "positive": (0.0, 1.0)}[side]
    grid = torch.linspace(low, high, points, device=device)
    # One sample per (grid point, feature): x[p, i, :, i] = grid[p], every other entry 0.
    x = torch.zeros(points, n_feat, n_inst, n_feat, device=device)
    x[:, torch.arange(n_feat), :, torch.arange(n_feat)] = grid[None, :, None].expand(n_feat, points, n_inst)
    y = model(x.flatten(0, 1)).view(points, n_feat, n_inst, n_feat)
    own = y.diagonal(dim1=1, dim2=3)                       # (points, n_inst, n_feat): y_i with only x_i on
    error = ((own - grid.abs()[:, None, None]) ** 2).mean(dim=0)
    return (error / (grid**2).mean()).cpu()


def features_computed(model: NeuronModel, max_error: float = COMPUTED_ERROR) -> torch.Tensor:
    """(n_instances,) int64: how many features' |x_i| the model computes, i.e. single_feature_errors <= max_error."""
    return (single_feature_errors(model) <= max_error).sum(dim=-1)


def sides_computed(model: NeuronModel, max_error: float = COMPUTED_ERROR) -> torch.Tensor:
    """(n_instances,) int64: how many half-functions ReLU(x_i) and ReLU(-x_i) the model computes.

    |x| = ReLU(x) + ReLU(-x): a feature's two sides each need a neuron that fires there. A side counts when
    its error (single_feature_errors on that half alone) is at most max_error. Without superposition one
    neuron serves one side of one feature, so a model computes at most n_hidden sides; more is computation
    in superposition (n_hidden <= sides <= 2 n_features).
    """
    return sum((single_feature_errors(model, side=side) <= max_error).sum(dim=-1) for side in ("negative", "positive"))


# --- correlated and anti-correlated feature pairs ------------------------------------------------

Correlation = Literal["independent", "correlated", "anticorrelated"]


def correlated_pairs(batch_size: int, pair_probability: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Features in pairs (2k, 2k + 1) that are active together: both with probability p, else both 0.

    pair_probability: (n_instances, n_pairs) -> (batch_size, n_instances, 2 n_pairs); active values are
    uniform in [0, 1), drawn independently for the two features of a pair.
    """
    n_inst, n_pairs = pair_probability.shape
    active = torch.rand((batch_size, n_inst, n_pairs), generator=generator, device=pair_probability.device) < pair_probability
    values = torch.rand((batch_size, n_inst, 2 * n_pairs), generator=generator, device=pair_probability.device)
    return values * active.repeat_interleave(2, dim=-1)


def anticorrelated_pairs(batch_size: int, pair_probability: torch.Tensor,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Features in pairs (2k, 2k + 1) that are never active together; each is active with probability p.

    A pair is active with probability 2p (so p <= 1/2), and then a fair coin picks which one of its two
    features is on. pair_probability: (n_instances, n_pairs) -> (batch_size, n_instances, 2 n_pairs).
    """
    if (pair_probability > 0.5).any():
        raise ValueError("anti-correlated features need p <= 0.5: a pair is active with probability 2p.")
    n_inst, n_pairs = pair_probability.shape
    device = pair_probability.device
    pair_on = torch.rand((batch_size, n_inst, n_pairs), generator=generator, device=device) < 2 * pair_probability
    first = torch.rand((batch_size, n_inst, n_pairs), generator=generator, device=device) < 0.5
    active = torch.stack([pair_on & first, pair_on & ~first], dim=-1).flatten(-2)
    values = torch.rand((batch_size, n_inst, 2 * n_pairs), generator=generator, device=device)
    return values * active


class PairedToyModel(ToyModel):
    """utils.ToyModel on feature pairs (2k, 2k + 1) that are independent, correlated or anti-correlated.

    Each feature is active with probability 1 - S as in ToyModel (one value per pair: feature 2k's); only the
    data differs, so training keeps ToyModel's closed-form gradients.
    """

    def __init__(self, n_pairs: int, n_hidden: int, n_instances: int = 1, *, correlation: Correlation = "correlated",
                 **kwargs) -> None:
        if correlation not in ("independent", "correlated", "anticorrelated"):
            raise ValueError(f"correlation must be 'independent', 'correlated' or 'anticorrelated', got {correlation!r}.")
        super().__init__(2 * n_pairs, n_hidden, n_instances, **kwargs)
        self.correlation = correlation

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        p = self.feature_probability
        if self.correlation == "independent":
            return sparse_features(batch_size, p, generator)
        draw = correlated_pairs if self.correlation == "correlated" else anticorrelated_pairs
        return draw(batch_size, p[:, ::2].contiguous(), generator)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, correlation={self.correlation!r}"


def pair_cosines(W: torch.Tensor) -> torch.Tensor:
    """Cosine between the two features of each pair (2k, 2k + 1): W (n_instances, n_hidden, 2 n_pairs) -> (n_instances, n_pairs)."""
    W = W.detach().float()
    unit = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (unit[..., ::2] * unit[..., 1::2]).sum(dim=1)
