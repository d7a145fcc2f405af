"""Shared test settings: fixed thread count so timings and results are reproducible."""

import torch

torch.set_num_threads(2)
