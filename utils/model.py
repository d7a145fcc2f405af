"""The toy model of superposition (Elhage et al., 2022), many independent instances at once.

Introduced in lesson 02. Each instance maps n_features sparse features through an
n_hidden-dimensional bottleneck and back:  x' = ReLU(W^T W x + b)  (or without the ReLU when
activation="linear"), the seed's 5 -> 2 -> 5 model when n_features=5, n_hidden=2.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
from torch import nn

from utils.data import sparse_features
from utils.device import default_device, make_generator

Number = float | int
PerFeature = Number | torch.Tensor


def _per_instance_feature(
    value: PerFeature, name: str, n_instances: int, n_features: int, allowed: str
) -> torch.Tensor:
    """Broadcast a float or tensor to (n_instances, n_features) as float32, or say what is wrong.

    `allowed` is "instances" when a 1-D value is per instance, "features" when it is per feature.
    """
    t = torch.as_tensor(value, dtype=torch.float32).detach().clone()
    if t.ndim == 0:
        return t.expand(n_instances, n_features).clone()
    if t.ndim == 1:
        expected = n_instances if allowed == "instances" else n_features
        if t.shape[0] != expected:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}, but a 1-D {name} gives one value per "
                f"{allowed[:-1]}, so it needs shape ({expected},). Pass a float, a ({expected},) "
                f"tensor or an ({n_instances}, {n_features}) tensor."
            )
        return (t[:, None] if allowed == "instances" else t[None, :]).expand(n_instances, n_features).clone()
    if t.shape != (n_instances, n_features):
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}; expected a float, a 1-D tensor or shape "
            f"(n_instances, n_features) = ({n_instances}, {n_features})."
        )
    return t


def _check_sparsity(sparsity: torch.Tensor) -> None:
    bad = ~torch.isfinite(sparsity) | (sparsity < 0) | (sparsity >= 1)
    if bad.any():
        raise ValueError(
            f"sparsity must be in [0, 1), got {sparsity[bad].flatten()[0].item()}: S is the "
            "probability a feature is zero; S = 1 would mean the feature is never active. "
            "For 'active 5% of the time' pass sparsity=0.95."
        )


def _check_importance(importance: torch.Tensor) -> None:
    if not torch.isfinite(importance).all():
        raise ValueError("importance must be finite (no nan or inf); use e.g. 0.7 ** torch.arange(n_features).")
    if (importance < 0).any():
        raise ValueError("importance must be >= 0: it weights each feature's squared error in the loss.")


def _check_positive_int(value: int, name: str, hint: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; {hint}")


class ToyModel(nn.Module):
    """n_instances independent toy models, trained together.

    Attributes:
        W: (n_instances, n_hidden, n_features) parameter; column W[i, :, f] is feature f's direction.
        b_final: (n_instances, n_features) parameter, the output bias.
        sparsity: (n_instances, n_features) buffer, S = P(feature is zero).
        importance: (n_instances, n_features) buffer, the weight of each feature's error.
    """

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int = 1,
        *,
        sparsity: PerFeature = 0.0,
        importance: PerFeature = 1.0,
        activation: Literal["relu", "linear"] = "relu",
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_positive_int(n_features, "n_features", "the model needs at least one feature.")
        _check_positive_int(n_hidden, "n_hidden", "the bottleneck needs at least one dimension.")
        _check_positive_int(n_instances, "n_instances", "use 1 for a single model.")
        if activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', got {activation!r}.")
        self.n_features, self.n_hidden, self.n_instances = n_features, n_hidden, n_instances
        self.activation = activation
        device = default_device(device)

        sparsity_t = _per_instance_feature(sparsity, "sparsity", n_instances, n_features, "instances")
        importance_t = _per_instance_feature(importance, "importance", n_instances, n_features, "features")
        _check_sparsity(sparsity_t)
        _check_importance(importance_t)
        self.register_buffer("sparsity", sparsity_t.to(device))
        self.register_buffer("importance", importance_t.to(device))

        # Xavier-normal init per instance, as in the paper's notebook.
        std = math.sqrt(2.0 / (n_hidden + n_features))
        W = torch.randn((n_instances, n_hidden, n_features), generator=make_generator(seed, torch.device("cpu")))
        self.W = nn.Parameter((W * std).to(device))
        self.b_final = nn.Parameter(torch.zeros((n_instances, n_features), device=device))

    @property
    def feature_probability(self) -> torch.Tensor:
        """(n_instances, n_features): 1 - S, the probability that a feature is active."""
        return 1.0 - self.sparsity

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.n_instances, self.n_features)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected x of shape (batch, n_instances, n_features) = (batch, {expected[0]}, "
                f"{expected[1]}), got {tuple(x.shape)}. Make a batch with model.generate_batch(batch_size)."
            )

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """h = W x.  x: (batch, n_instances, n_features) -> (batch, n_instances, n_hidden)."""
        self._check_input(x)
        return torch.einsum("bif,ihf->bih", x, self.W)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """x' = act(W^T h + b).  h: (batch, n_instances, n_hidden) -> (batch, n_instances, n_features)."""
        out = torch.einsum("bih,ihf->bif", h, self.W) + self.b_final
        return torch.relu(out) if self.activation == "relu" else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, n_instances, n_features) -> reconstruction of the same shape."""
        return self.decode(self.hidden(x))

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch_size, n_instances, n_features) sparse features: uniform in [0, 1) when active, else 0."""
        return sparse_features(batch_size, self.feature_probability, generator)

    def loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error, averaged over batch and features: (n_instances,)."""
        return (self.importance * (x - x_hat) ** 2).mean(dim=(0, 2))

    def loss_and_grads(self, x: torch.Tensor) -> torch.Tensor:
        """Per-instance loss of reconstructing x, with gradients written into W.grad and b_final.grad.

        The gradients are computed in closed form, which is about twice as fast as autograd for
        these tiny matrices (tests check both agree); a subclass that changes forward or loss gets
        autograd instead, so it can never train on stale formulas.

        x: (batch, n_instances, n_features) -> loss: (n_instances,), detached.
        """
        if type(self).forward is not ToyModel.forward or type(self).loss is not ToyModel.loss:
            loss = self.loss(x, self(x))
            self.zero_grad(set_to_none=True)
            loss.sum().backward()
            return loss.detach()
        self._check_input(x)
        with torch.no_grad():
            W, b = self.W, self.b_final
            x_i = x.transpose(0, 1)                                   # (i, batch, f); free for generate_batch's layout
            h = torch.bmm(x_i, W.transpose(1, 2))                     # (i, batch, h)
            z = torch.baddbmm(b[:, None, :], h, W)                    # (i, batch, f)
            err = (torch.relu(z) if self.activation == "relu" else z.clone()).sub_(x_i)  # x_hat - x
            # d loss / d z = 2 I (x_hat - x) / (batch * n_features), zero where the ReLU clipped.
            dz = err * (self.importance * (2.0 / (x.shape[0] * self.n_features)))[:, None, :]
            loss = torch.linalg.vecdot(dz.flatten(1), err.flatten(1)) / 2
            if self.activation == "relu":
                # ReLU's own backward kernel: much faster on a CPU than multiplying by a boolean mask.
                dz = torch.ops.aten.threshold_backward(dz, z, 0.0)
            # W appears twice (encoder h = W x and decoder W^T h): sum both paths.
            self.W.grad = torch.baddbmm(torch.bmm(h.transpose(1, 2), dz), torch.bmm(W, dz.transpose(1, 2)), x_i)
            self.b_final.grad = dz.sum(dim=1)
        return loss

    def select(self, k: int) -> ToyModel:
        """A one-instance copy of instance k (e.g. the best of several seeds), of the same class and data."""
        if not 0 <= int(k) < self.n_instances:
            raise ValueError(f"instance {k} does not exist: this model has instances 0 to {self.n_instances - 1}.")
        k = int(k)
        chosen = copy.deepcopy(self)
        with torch.no_grad():
            for tensor in (*chosen.parameters(), *chosen.buffers()):
                tensor.data = tensor.data[k:k + 1].clone()
        chosen.n_instances = 1
        return chosen

    def extra_repr(self) -> str:
        return (f"n_features={self.n_features}, n_hidden={self.n_hidden}, "
                f"n_instances={self.n_instances}, activation={self.activation!r}")
