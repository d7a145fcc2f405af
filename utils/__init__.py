"""Shared code of the superposition course: the toy model, its data, training, metrics and plots.

Lessons import from here instead of copying code; each function's docstring names the lesson
that introduces it.
"""

from utils import metrics, plots
from utils.data import sparse_features
from utils.device import default_device, make_generator
from utils.model import ToyModel
from utils.training import best_of_seeds, evaluate_loss, train

__all__ = ["ToyModel", "train", "evaluate_loss", "best_of_seeds", "sparse_features", "default_device", "make_generator", "metrics", "plots"]

from utils import neuron_plots, neurons  # lesson 07  # noqa: E402

__all__ += ["neurons", "neuron_plots"]

from utils import digit_plots, digits  # lesson 08  # noqa: E402

__all__ += ["digits", "digit_plots"]
