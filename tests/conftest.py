"""Shared test settings: fixed thread count, and an instructor secret of the test session's own."""

import os
import tempfile

import pytest
import torch

torch.set_num_threads(2)
# Grading derives every student's inputs from the instructor's secret; tests never touch the real one.
os.environ["GRADER_SECRET_FILE"] = os.path.join(tempfile.mkdtemp(prefix="grader-secret-"), "secret")


@pytest.fixture
def one_thread():
    """For tests of tiny tensors: one thread is fastest, while two spin against each other on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
