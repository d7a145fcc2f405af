"""The toy model of superposition (Elhage et al., 2022), many independent instances at once.

Introduced in lesson 02. Each instance maps n_features sparse features through an
n_hidden-dimensional bottleneck and back:  x' = ReLU(W^T W x + b)  (or without the ReLU when
activation="linear"), the seed's 5 -> 2 -> 5 model when n_features=5, n_hidden=2.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from utils.data import draw_sparse, sparse_features
from utils.device import default_device, make_generator

Number = float | int
PerFeature = Number | torch.Tensor

# The CPU training step works on about this many batch values at a time (float32: 1 MiB per tensor),
# few enough that a chunk's handful of tensors stay in cache while it is drawn, used and dropped.
_CHUNK_VALUES = 2**18


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

        register_feature_data(self, sparsity, importance, device)

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

    def _closed_form_applies(self) -> bool:
        """Whether forward and loss are ToyModel's own, so that the closed-form gradients are right."""
        return type(self).forward is ToyModel.forward and type(self).loss is ToyModel.loss

    def loss_and_grads(self, x: torch.Tensor) -> torch.Tensor:
        """Per-instance loss of reconstructing x, with gradients written into W.grad and b_final.grad.

        The gradients are computed in closed form, several times faster than autograd for these
        tiny matrices (tests check both agree); a subclass that changes forward or loss gets
        autograd instead, so it can never train on stale formulas.

        x: (batch, n_instances, n_features) -> loss: (n_instances,), detached.
        """
        if not self._closed_form_applies():
            loss = self.loss(x, self(x))
            self.zero_grad(set_to_none=True)
            loss.sum().backward()
            return loss.detach()
        self._check_input(x)
        x_i = x.transpose(0, 1)  # (i, batch, f); free for generate_batch's layout
        if self._feature_major:
            return self._loss_and_grads_by_chunk(x.shape[0], lambda chunk: x_i[chunk].transpose(1, 2).contiguous())
        return self._loss_and_grads_by_chunk(x.shape[0], lambda chunk: x_i[chunk])

    def sample_loss_and_grads(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One training step's loss and gradients on a fresh batch: loss_and_grads(generate_batch(batch_size, generator)).

        It draws the batch a few instances at a time, each part just before it is used (the same values
        from the same generator, since sparse_features draws instance by instance), so that a part's
        tensors stay in the CPU's cache instead of the whole batch streaming through memory several
        times. A subclass that changes the data, forward or loss takes the unfused path.

        Returns: (n_instances,) loss, detached; the gradients are in W.grad and b_final.grad.
        """
        n_values = batch_size * self.n_features
        if type(self).generate_batch is not ToyModel.generate_batch or not self._closed_form_applies():
            return self.loss_and_grads(self.generate_batch(batch_size, generator))
        if n_values % 2:
            # sparse_features draws 64 bits per two values; an odd part would shift every later draw.
            return self._loss_and_grads_by_chunk(batch_size, lambda chunk: self._draw(batch_size, chunk, generator),
                                                 instances_per_chunk=self.n_instances)
        return self._loss_and_grads_by_chunk(batch_size, lambda chunk: self._draw(batch_size, chunk, generator))

    def _draw(self, batch_size: int, chunk: slice, generator: torch.Generator | None) -> torch.Tensor:
        """generate_batch's values for the instances in `chunk`, drawn next from `generator`, in the layout
        the step wants: (c, f, batch) when _feature_major, else (c, batch, f)."""
        return draw_sparse(batch_size, self.feature_probability[chunk], generator, feature_major=self._feature_major)

    @property
    def _feature_major(self) -> bool:
        """Whether the closed-form step works on (c, f, batch) batches instead of (c, batch, f).

        With n_hidden <= 2 the batch-major products are degenerate (a 2-column output) and BLAS runs them
        several times slower than the same products feature-major; for wider models the transpose costs
        more than it saves (measured on the benchmark's configurations), and the batch stays batch-major.
        """
        return self.n_hidden <= 2

    @torch.no_grad()
    def _loss_and_grads_by_chunk(self, batch_size: int, batch_of: Callable[[slice], torch.Tensor],
                                 instances_per_chunk: int | None = None) -> torch.Tensor:
        """Loss and closed-form gradients, a few instances at a time (instances are independent).

        batch_of(chunk) gives the batch of the instances in `chunk`, (c, f, batch) when _feature_major, else
        (c, batch, f); it is called once per chunk, in order. A chunk holds about _CHUNK_VALUES values (at
        least one instance).
        """
        if instances_per_chunk is None:
            # A GPU has no such cache to fit and launches a kernel per operation: there, one chunk.
            fits = max(1, _CHUNK_VALUES // (batch_size * self.n_features))
            instances_per_chunk = fits if self.W.device.type == "cpu" else self.n_instances
        c = instances_per_chunk
        loss = torch.empty(self.n_instances, device=self.W.device)
        W_grad, b_grad = torch.empty_like(self.W), torch.empty_like(self.b_final)
        for start in range(0, self.n_instances, c):
            chunk = slice(start, start + c)
            loss[chunk] = self._chunk_loss_and_grads(batch_of(chunk), chunk, W_grad[chunk], b_grad[chunk])
        self.W.grad, self.b_final.grad = W_grad, b_grad
        return loss

    def _chunk_loss_and_grads(self, x: torch.Tensor, chunk: slice, W_grad: torch.Tensor,
                              b_grad: torch.Tensor) -> torch.Tensor:
        """The closed-form step for the c instances in `chunk`: x (c, f, batch) when _feature_major, else
        (c, batch, f) -> loss (c,); fills W_grad, b_grad."""
        W, b = self.W[chunk], self.b_final[chunk]                  # (c, h, f), (c, f)
        feature_major = self._feature_major
        batch_dim = 2 if feature_major else 1
        if feature_major:
            h = torch.bmm(W, x)                                    # (c, h, batch)
            z = torch.baddbmm(b[:, :, None], W.transpose(1, 2), h) # (c, f, batch), pre-activation
        else:
            h = torch.bmm(x, W.transpose(1, 2))                    # (c, batch, h)
            z = torch.baddbmm(b[:, None, :], h, W)                 # (c, batch, f)
        err = (torch.relu(z) if self.activation == "relu" else z.clone()).sub_(x)  # x_hat - x
        # d loss / d z = 2 I (x_hat - x) / (batch * n_features), zero where the ReLU clipped.
        coef = self.importance[chunk] * (2.0 / (x.shape[batch_dim] * self.n_features))
        dz = err * coef.unsqueeze(batch_dim)
        loss = torch.linalg.vecdot(dz.flatten(1), err.flatten(1)) / 2
        if self.activation == "relu":
            # ReLU's own backward kernel, in place: much faster on a CPU than multiplying by a boolean mask.
            torch.ops.aten.threshold_backward.grad_input(dz, z, 0.0, grad_input=dz)
        # W appears twice (encoder h = W x and decoder W^T h): dL/dW = h dz^T + (W dz) x^T, summed.
        if feature_major:
            torch.baddbmm(torch.bmm(h, dz.transpose(1, 2)), torch.bmm(W, dz), x.transpose(1, 2), out=W_grad)
        else:
            torch.baddbmm(torch.bmm(h.transpose(1, 2), dz), torch.bmm(W, dz.transpose(1, 2)), x, out=W_grad)
        torch.sum(dz, dim=batch_dim, out=b_grad)
        return loss

    def select(self, k: int) -> ToyModel:
        """A one-instance copy of instance k (e.g. the best of several seeds), of the same class and data."""
        return select_instance(self, k)

    def extra_repr(self) -> str:
        return (f"n_features={self.n_features}, n_hidden={self.n_hidden}, "
                f"n_instances={self.n_instances}, activation={self.activation!r}")


def select_instance(module: nn.Module, k: int) -> nn.Module:
    """A one-instance copy of instance k of any module whose every parameter and buffer has the instance axis first.

    Module-level (not only ToyModel.select) so that other instanced models share it even while the grader's view
    of utils replaces ToyModel by a stub.
    """
    if not 0 <= int(k) < module.n_instances:
        raise ValueError(f"instance {k} does not exist: this model has instances 0 to {module.n_instances - 1}.")
    k = int(k)
    chosen = copy.deepcopy(module)
    with torch.no_grad():
        for tensor in (*chosen.parameters(), *chosen.buffers()):
            tensor.data = tensor.data[k:k + 1].clone()
    chosen.n_instances = 1
    return chosen


def register_feature_data(module: nn.Module, sparsity: PerFeature, importance: PerFeature, device: torch.device) -> None:
    """Check sparsity and importance and register them as (n_instances, n_features) buffers of `module`.

    Shared by every instanced model on the paper's synthetic features (ToyModel, utils.neurons.NeuronModel).
    """
    n_instances, n_features = module.n_instances, module.n_features
    sparsity_t = _per_instance_feature(sparsity, "sparsity", n_instances, n_features, "instances")
    importance_t = _per_instance_feature(importance, "importance", n_instances, n_features, "features")
    _check_sparsity(sparsity_t)
    _check_importance(importance_t)
    module.register_buffer("sparsity", sparsity_t.to(device))
    module.register_buffer("importance", importance_t.to(device))
