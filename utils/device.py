"""Where tensors live: the GPU when torch sees one, else the CPU."""

from __future__ import annotations

import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """Return `device` as a torch.device, or CUDA when available and the CPU otherwise."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A seeded random generator on `device`, so results never depend on global random state."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
