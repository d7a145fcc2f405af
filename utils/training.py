"""Training many toy models at once (introduced in lesson 02)."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from utils.device import make_generator


def train(
    model: nn.Module,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """Train every instance of `model` at once with Adam on freshly drawn sparse batches.

    The model provides either `sample_loss_and_grads(batch_size, generator)` (draws the batch and
    returns the per-instance loss with the gradients already in .grad, as ToyModel does), or
    `generate_batch(batch_size, generator)` and then `loss_and_grads(x)` (the same on a given batch)
    or `loss(x, x_hat)`, in which case autograd computes the gradients.

    Returns:
        (steps, n_instances) float tensor on the CPU: the loss of every instance at every step.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got steps={steps}, batch_size={batch_size}.")
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    # The fused Adam kernel does the whole update in one pass per tensor.
    optimizer = torch.optim.Adam(params, lr=lr, fused=True)
    generator = make_generator(seed, device)
    history: list[torch.Tensor] = []
    bar = tqdm(range(steps), disable=not progress, desc="training", unit="step", mininterval=0.5)
    for step in bar:
        if hasattr(model, "sample_loss_and_grads"):
            loss = model.sample_loss_and_grads(batch_size, generator)
        elif hasattr(model, "loss_and_grads"):
            loss = model.loss_and_grads(model.generate_batch(batch_size, generator))
        else:
            x = model.generate_batch(batch_size, generator)
            loss = model.loss(x, model(x))
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            loss = loss.detach()
        optimizer.step()
        history.append(loss)
        if progress and (step % 500 == 0 or step == steps - 1):
            bar.set_postfix(loss=f"{loss.mean().item():.3g}")
    return torch.stack(history).cpu()


@torch.no_grad()
def evaluate_loss(model: nn.Module, batch_size: int = 65_536, seed: int = 12345) -> torch.Tensor:
    """Per-instance loss on one large batch drawn with a fixed seed: (n_instances,)."""
    x = model.generate_batch(batch_size, make_generator(seed, next(model.parameters()).device))
    return model.loss(x, model(x)).cpu()


@torch.no_grad()
def best_of_seeds(model: nn.Module, n_seeds: int) -> torch.Tensor:
    """Index of the lowest-loss instance in each configuration: (n_instances // n_seeds,) (lesson 02).

    Instances are laid out configuration-major (k * n_seeds + seed), as `repeat_interleave` builds them.
    The paper notes that some seeds land in local minima; keeping the best of a few is its remedy.
    """
    loss = evaluate_loss(model).view(-1, n_seeds)
    return loss.argmin(dim=1) + torch.arange(loss.shape[0]) * n_seeds
