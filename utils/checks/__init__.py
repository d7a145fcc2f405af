"""Visible checks: instant feedback inside the lesson notebooks.

A check receives what the learner wrote (a function, a model, a number), runs it on small seeded
inputs and compares with a reference, in this order: shape, then cheap invariants that catch known
mistakes, then values. A failure raises CheckFailed with a message naming the likely
misconception; success prints one line. Checks never say "all tests passed": hidden tests, run by
the grader, decide the grade.

One module per lesson: utils.checks.lesson01, utils.checks.lesson02, ...
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import torch


class CheckFailed(AssertionError):
    """A visible check found a mistake; the message says what is probably misunderstood."""


def fail(message: str) -> NoReturn:
    raise CheckFailed(message)


def passed(message: str) -> None:
    print(f"✔ visible checks passed: {message}. (Hidden tests decide the grade.)")


def call_learner(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function, turning 'not written yet' into a clear message."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        fail(f"{getattr(fn, '__name__', 'this function')} is not implemented yet: replace "
             "`raise NotImplementedError()` with your code.")


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """The learner's result as a float tensor, or a message saying what type was expected."""
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu()
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        fail(f"{what} should be a torch.Tensor (or something convertible to one), got {type(value).__name__}.")


def expect_shape(value: torch.Tensor, shape: tuple[int, ...], what: str, hint: str = "") -> None:
    if tuple(value.shape) != tuple(shape):
        fail(f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}. {hint}".rstrip())


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol, rtol=rtol)


Plain = dict[str, Any]
"""What a probe returns: a dict of str -> tensor, float, int, bool, str or lists of them. No models, no
functions, no figures: plain data is what a sandboxed grader can send back as JSON and judge outside."""


def make_check(
    probe: Callable[[Any, int], Plain],
    judge: Callable[[Plain, int], str],
) -> Callable[..., None]:
    """The visible check of one exercise: probe the learner's object on seeded inputs, judge the plain result.

    Every exercise's check is split in two so that grading can be trusted later:
      probe(learner_object, seed) -> Plain   calls the learner's code on inputs built from `seed` and
                                             returns only plain data;
      judge(data, seed) -> str               rebuilds the same inputs and the reference from `seed`,
                                             raises CheckFailed naming the misconception, or returns
                                             the one-line success message.
    """
    def check(learner_object: Any, seed: int = 0) -> None:
        passed(judge(probe(learner_object, seed), seed))

    check.__doc__ = f"Check the learner's object with {probe.__name__} and {judge.__name__} (seeded inputs)."
    return check


def encode_plain(data: Plain) -> str:
    """A probe's plain result as JSON: tensors become {"tensor": nested lists, "dtype": name}."""
    def convert(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return {"tensor": value.detach().cpu().tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return {"unsupported": type(value).__name__}
    return json.dumps(convert(data), allow_nan=True)


def decode_plain(text: str) -> Plain:
    """The inverse of encode_plain, for the trusted side: JSON only, never pickle."""
    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"tensor", "dtype"}:
                dtype = getattr(torch, str(value["dtype"]), None)
                return torch.tensor(value["tensor"], dtype=dtype if isinstance(dtype, torch.dtype) else None)
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value
    data = convert(json.loads(text))
    if not isinstance(data, dict):
        raise ValueError("a probe result must be a JSON object")
    return data
