"""Lesson 02's checks beyond the declarations' generic tests: the random batch's features, the model class's probe,
and student-style answers (not the library's) judged the same as the reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grader import key as answer_key
from grader.key import lesson02 as key
from utils.checks import CheckFailed, encode_plain, judge
from utils.checks import lesson02 as checks

from lesson_testing import solution_namespace, verdict_on

LESSON = answer_key._load(str(key.__file__))


SOLUTIONS = solution_namespace(key.LESSON, "import torch\nfrom torch import nn\n")  # torch.rand and autograd


def _graded_verdict(exercise, answer, student="mallory", k=0):
    return verdict_on(LESSON, exercise, answer, answer_key.graded_inputs(LESSON, exercise, student)[k])


def _rejected(exercise, answer) -> str:
    """The visible check's message for `answer` (which must fail), after checking graded inputs fail it too."""
    assert not _graded_verdict(exercise, answer).ok
    with pytest.raises(CheckFailed) as failure:
        checks.check(exercise.name, answer)
    return str(failure.value)


@pytest.mark.parametrize("name", ["generate_batch", "forward", "weighted_loss", "MyToyModel"])
def test_the_solution_notebooks_answers_pass_visible_and_graded_inputs(name, capsys):
    """The references are the library's (sparse_features' bit trick, ToyModel's closed-form gradients); a student's
    torch.rand and autograd answer draws and trains differently and must be judged right all the same."""
    exercise = next(e for e in key.EXERCISES if e.name == name)
    checks.check(name, SOLUTIONS[name])
    assert "✔" in capsys.readouterr().out
    for student in ("alice", "bob"):
        for k in range(answer_key.GRADED_SETS):
            verdict = _graded_verdict(exercise, SOLUTIONS[name], student, k)
            assert verdict.ok, (student, k, verdict.message)


def test_random_features_agree_for_independent_implementations_on_many_inputs():
    """The statistical features (6 standard errors) and the training feature hold for the student-style answers on
    inputs they were not tuned on."""
    for seed in range(12):
        for exercise in (key.GENERATE_BATCH, key.MY_TOY_MODEL):
            if exercise is key.MY_TOY_MODEL and seed >= 4:
                continue
            inputs = exercise.inputs(torch.Generator().manual_seed(900 + seed))
            reference = checks.checks.observe(exercise.name, exercise.reference, inputs)
            verdict = judge(checks.checks.observe(exercise.name, SOLUTIONS[exercise.name], inputs),
                            {"name": exercise.name, "reference": reference, "atol": exercise.atol})
            assert verdict.ok, (exercise.name, seed, verdict.message)


# --- generate_batch ------------------------------------------------------------------------------

def _batch(batch_size, n_instances, n_features, sparsity, generator=None, values_generator=True, mask_generator=True):
    S = torch.as_tensor(sparsity, dtype=torch.float32)
    S = (S[:, None] if S.ndim == 1 else S).expand(n_instances, n_features)
    shape = (batch_size, n_instances, n_features)
    values = torch.rand(shape, generator=generator if values_generator else None)
    return values * (torch.rand(shape, generator=generator if mask_generator else None) >= S)


@pytest.mark.parametrize("answer", [
    lambda b, i, f, S, generator=None: _batch(b, i, f, S, generator, values_generator=False),
    lambda b, i, f, S, generator=None: _batch(b, i, f, S, generator, mask_generator=False),
    lambda b, i, f, S, generator=None: _batch(b, i, f, S, None),
], ids=["values_without_generator", "mask_without_generator", "no_generator_at_all"])
def test_a_draw_without_the_generator_is_told_to_pass_it(answer):
    """The probe moves the global RNG between two calls with the same seed: any draw that skips `generator` shows."""
    assert "pass `generator` to every torch.rand call" in _rejected(key.GENERATE_BATCH, answer)


def test_a_generator_of_its_own_fails():
    """Ignoring the given generator for a fixed seed of one's own: the same batch for every seed."""
    def own_seed(batch_size, n_instances, n_features, sparsity, generator=None):
        return _batch(batch_size, n_instances, n_features, sparsity, torch.Generator().manual_seed(0))
    assert "another generator seed gives another batch" in _rejected(key.GENERATE_BATCH, own_seed)


def test_active_values_exactly_one_get_the_same_message_as_almost_one():
    def mask_only(batch_size, n_instances, n_features, sparsity, generator=None):
        return (_batch(batch_size, n_instances, n_features, sparsity, generator) > 0).float()
    assert "active features all equal 1" in _rejected(key.GENERATE_BATCH, mask_only)


def test_a_sparsity_ignored_on_one_instance_is_caught_per_instance():
    """Only the first instance's S used for all: the per-instance zero fractions tell."""
    def first_instance_only(batch_size, n_instances, n_features, sparsity, generator=None):
        S = torch.as_tensor(sparsity, dtype=torch.float32).flatten()[0]
        return _batch(batch_size, n_instances, n_features, S, generator)
    assert "zero with probability S" in _rejected(key.GENERATE_BATCH, first_instance_only)


def test_the_probes_leave_the_global_rng_as_they_found_it():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check("generate_batch", SOLUTIONS["generate_batch"])
    checks.check("MyToyModel", SOLUTIONS["MyToyModel"])
    assert torch.equal(torch.rand(3), expected)


def test_the_probes_never_use_the_withheld_library_answers(monkeypatch):
    """In the sandbox utils.ToyModel and utils.data's sparse_features and draw_sparse are stubs that raise: the probes
    must not need them."""
    import utils.data
    import utils.model

    def withheld(*args, **kwargs):
        raise RuntimeError("withheld")

    monkeypatch.setattr(utils.model.ToyModel, "__init__", withheld)
    monkeypatch.setattr(utils.data, "sparse_features", withheld)
    monkeypatch.setattr(utils.model, "sparse_features", withheld)
    monkeypatch.setattr(utils.data, "draw_sparse", withheld)
    monkeypatch.setattr(utils.model, "draw_sparse", withheld)
    for exercise in key.EXERCISES:
        inputs = answer_key.visible_inputs(LESSON, exercise)
        raw = checks.checks.probe(exercise.name)(SOLUTIONS[exercise.name], inputs)
        assert '"raised"' not in encode_plain(raw), exercise.name


# --- MyToyModel ----------------------------------------------------------------------------------

ISSUE_13 = {"sparsity_ignored", "sparsity_stored_as_active_probability", "b_final_not_parameter", "b_final_random_init",
            "W_std_one", "generator_ignored", "bias_not_named_b_final"}


def test_the_mistakes_the_old_check_accepted_are_declared():
    assert ISSUE_13 <= {w.id for w in key.MY_TOY_MODEL.wrong}


class _Student(SOLUTIONS["MyToyModel"]):
    """The solution's class, to make one mistake in a subclass."""


def test_a_bias_under_another_name_is_told_b_final_is_missing():
    class BiasNamedBias(_Student):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.bias = self.b_final
            del self.b_final

        def forward(self, x):
            return SOLUTIONS["forward"](self.W, self.bias, x)

    message = _rejected(key.MY_TOY_MODEL, BiasNamedBias)
    assert "no attribute b_final" in message and "shape ()" not in message


def test_a_plain_tensor_bias_is_told_it_is_not_a_parameter():
    """A plain tensor attribute (not a registered buffer) makes the same mistake as a buffer."""
    class PlainBias(_Student):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            del self.b_final
            self.b_final = torch.zeros(self.n_instances, self.n_features)

    assert "not an nn.Parameter" in _rejected(key.MY_TOY_MODEL, PlainBias)


def test_a_student_style_generate_batch_without_generator_is_told_so():
    class NoGenerator(_Student):
        def generate_batch(self, batch_size, generator=None):
            return super().generate_batch(batch_size, None)

    assert "ignores `generator`" in _rejected(key.MY_TOY_MODEL, NoGenerator)


def test_std_one_and_whole_tensor_xavier_are_told_apart_from_xavier_per_instance():
    class StdOne(_Student):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.W = nn.Parameter(torch.randn(self.W.shape))

    class WholeTensor(_Student):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            nn.init.xavier_normal_(self.W.data)

    assert "standard deviation 1" in _rejected(key.MY_TOY_MODEL, StdOne)
    assert "whole 3-D tensor" in _rejected(key.MY_TOY_MODEL, WholeTensor)


def test_a_frozen_W_does_not_train():
    class Frozen(_Student):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.W.requires_grad_(False)

    assert "training changes W" in _rejected(key.MY_TOY_MODEL, Frozen)


def test_a_loss_with_the_wrong_sign_fails_training():
    """Training that makes the model worse than predicting zeros is caught, whatever the cause."""
    class Ascent(_Student):
        def loss(self, x, x_hat):
            return -super().loss(x, x_hat)

    assert "loss" in _rejected(key.MY_TOY_MODEL, Ascent)
