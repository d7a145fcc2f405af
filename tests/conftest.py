"""Shared test settings: fixed thread count, and an instructor secret of the test session's own."""

import os
import tempfile

import torch

torch.set_num_threads(2)
# Grading derives every student's inputs from the instructor's secret; tests never touch the real one.
os.environ["GRADER_SECRET_FILE"] = os.path.join(tempfile.mkdtemp(prefix="grader-secret-"), "secret")
