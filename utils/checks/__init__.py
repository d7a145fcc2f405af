"""Visible checks: instant feedback inside the lesson notebooks, without the answer key.

An exercise is checked in three steps, the same for the student's visible check and for the grader:
  1. a *probe* calls the learner's object on given inputs and returns plain data (tensors, numbers,
     strings, lists, dicts; an exception becomes {"raised": its type}); the default probe `calls`
     calls a function once per case, and a lesson module adds probes for classes and models;
  2. optional *features* turn that raw data into what is judged (for example the fraction of zeros
     of a random batch, which does not depend on the order of the draws);
  3. `judge` compares the result with an *expectation*: the reference's result and the results of
     known wrong answers, each with its message and misconception id.

This package holds no reference and no wrong answer. For the visible check, the expectation on the
visible inputs was recorded by `grader release` in `notebooks/<lesson>/<lesson>.checks.json`; when
grading, the grader computes it on secret inputs, different for every student, and judges outside
the sandbox. So passing a visible check says the code is right on those inputs; the grade comes from
the others.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

import torch

Plain = dict[str, Any]
"""Plain data: str -> tensor, float, int, bool, str, None, or lists and dicts of them. No models, no
functions: what a sandbox can send back as JSON and the grader judge outside."""

Probe = Callable[[Any, Plain], Plain]
Features = Callable[[Plain, Plain], Plain]


class CheckFailed(AssertionError):
    """A visible check found a mistake; the message says what is probably misunderstood."""


def fail(message: str) -> NoReturn:
    raise CheckFailed(message)


# --- plain data ----------------------------------------------------------------------------------

def to_plain(value: Any) -> Any:
    """A learner's return value as plain data; types are kept (a tensor stays a tensor, a tuple becomes a list)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"unsupported": type(value).__name__}


def raised(error: BaseException) -> Plain:
    return {"raised": type(error).__name__, "detail": str(error)[:300]}


def encode_plain(data: Any) -> str:
    """Plain data as JSON: tensors become {"tensor": nested lists, "dtype": name}; nan and inf are kept."""
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


DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                                     torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8,
                                                     torch.bool, torch.complex64, torch.complex128)}


def decode_plain(text: str) -> Any:
    """The inverse of encode_plain: JSON only, never pickle; dtypes from a fixed list (no attribute lookups)."""
    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"tensor", "dtype"}:
                return torch.tensor(value["tensor"], dtype=DTYPES.get(str(value["dtype"])))
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value
    return convert(json.loads(text))


def roundtrip(data: Any) -> Any:
    """Data as the grader sees it after the sandbox sent it: every path judges the same types."""
    return decode_plain(encode_plain(data))


def fresh(value: Any) -> Any:
    """Inputs for one call: tensors cloned (a learner may modify them in place); {"generator": seed} -> a Generator."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        if set(value) == {"generator"}:
            return torch.Generator().manual_seed(int(value["generator"]))
        return {k: fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh(v) for v in value]
    return value


# --- probes --------------------------------------------------------------------------------------

def call(fn: Callable[..., Any], args: list | None = None, kwargs: dict | None = None) -> Any:
    """Call the learner's function on fresh copies of the inputs; its result as plain data, or what it raised."""
    try:
        return to_plain(fn(*fresh(args or []), **{name: fresh(value) for name, value in (kwargs or {}).items()}))
    except Exception as error:  # noqa: BLE001 - which error the learner raised is part of what is judged
        return raised(error)


def calls(fn: Callable[..., Any], inputs: Plain) -> Plain:
    """The default probe: inputs {case: {"args": [...], "kwargs": {...}}} -> {case: result}."""
    return {case: call(fn, spec.get("args"), spec.get("kwargs")) for case, spec in inputs.items()}


def judged(data: Any, features: Features | None, inputs: Plain) -> Any:
    """What is judged of a probe's data: the data itself, or the exercise's features of it (on the trusted side)."""
    data = roundtrip(data)
    return roundtrip(features(data, inputs)) if features else data


def observe(probe: Probe, features: Features | None, learner: Any, inputs: Plain) -> Any:
    """Probe the learner's object on `inputs` and return what is judged, as the grader would see it."""
    return judged(probe(learner, fresh(inputs)), features, inputs)


# --- judging -------------------------------------------------------------------------------------

def _shape(value: torch.Tensor) -> str:
    return str(tuple(value.shape))


def _kind(value: Any) -> str:
    if isinstance(value, dict) and "raised" in value:
        return f"raised {value['raised']}"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {_shape(value)}"
    if isinstance(value, dict) and set(value) == {"unsupported"}:
        return f"a {value['unsupported']}"
    return f"a {type(value).__name__}" if value is not None else "None"


def differs(got: Any, want: Any, atol: float = 1e-5, rtol: float = 1e-4, where: str = "",
            reveal: bool = True) -> str | None:
    """None when `got` matches `want` (same type, shape and values within atol + rtol |want|), else what differs.

    With reveal=False (graded inputs) the message never states an expected value, only the learner's own and
    the expected type and shape: repeated submissions must not turn the feedback into a table of answers.
    """
    at = f" at {where}" if where else ""

    def expected(value: Any) -> str:
        return f", expected {value}" if reveal else ", which is not the expected value"
    if isinstance(want, dict) and "raised" in want:
        if isinstance(got, dict) and got.get("raised") == want["raised"]:
            return None
        return f"{'it ' + _kind(got) if isinstance(got, dict) and 'raised' in got else 'no error'}{at}, but it " \
               f"should raise {want['raised']}"
    if isinstance(got, dict) and "raised" in got:
        return f"it raised {got['raised']}{at}: {got.get('detail', '')}".rstrip(": ")
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"got {_kind(got)}{at}, expected a tensor of shape {_shape(want)}"
        if got.shape != want.shape:
            return f"got shape {_shape(got)}{at}, expected {_shape(want)}"
        if want.dtype == torch.bool or not want.is_floating_point():
            return None if torch.equal(got.to(want.dtype), want) else f"the values{at} differ"
        if not torch.allclose(got.double(), want.double(), atol=atol, rtol=rtol, equal_nan=True):
            return f"the values{at} differ"
        return None
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return None if type(got) is type(want) and got == want else f"got {got!r}{at}{expected(repr(want))}"
    if isinstance(want, int):
        if isinstance(got, int) and not isinstance(got, bool):
            return None if got == want else f"got {got}{at}{expected(want)}"
        return f"got {_kind(got)}{at} ({got!r}), expected an int" if not isinstance(got, torch.Tensor) else \
            f"got {_kind(got)}{at}, expected an int (use int(...) or .item())"
    if isinstance(want, float):
        if isinstance(got, torch.Tensor):
            return f"got {_kind(got)}{at}, expected a float (use float(...) or .item())"
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"got {_kind(got)}{at}, expected a float"
        if math.isnan(want) or math.isinf(want):
            return None if (math.isnan(want) and math.isnan(got)) or got == want else \
                f"got {got!r}{at}{expected(repr(want))}"
        return None if abs(got - want) <= atol + rtol * abs(want) else f"got {got:.6g}{at}{expected(f'{want:.6g}')}"
    if isinstance(want, list):
        if not isinstance(got, list):
            return f"got {_kind(got)}{at}, expected a list (or tuple) of {len(want)}"
        if len(got) != len(want):
            return f"got {len(got)} items{at}, expected {len(want)}"
        for k, (g, w) in enumerate(zip(got, want)):
            found = differs(g, w, atol, rtol, f"{where}[{k}]", reveal)
            if found:
                return found
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"got {_kind(got)}{at}, expected a dict with keys {', '.join(map(repr, want))}"
        missing, extra = [k for k in want if k not in got], [k for k in got if k not in want]
        if missing or extra:
            return (f"the dict{at} " + (f"has no {', '.join(map(repr, missing))}" if missing else "")
                    + (" and " if missing and extra else "") + (f"has unexpected {', '.join(map(repr, extra))}"
                                                                if extra else "") + f" (keys: {', '.join(map(repr, want))})")
        for key in want:
            found = differs(got[key], want[key], atol, rtol, f"{where}[{key!r}]", reveal)
            if found:
                return found
        return None
    return None if got == want else f"got {got!r}{at}{expected(repr(want))}"


@dataclass
class Verdict:
    ok: bool
    message: str
    misconception: str | None = None  # a declared id, "not_implemented", "library_answer" or "other"


def _raised_anywhere(outputs: Plain, kind: str) -> bool:
    text = encode_plain(outputs)
    return f'"raised": "{kind}"' in text


def judge(outputs: Any, expectation: Plain, reveal: bool = True) -> Verdict:
    """Compare judged data with an expectation: reference first, then each known wrong answer, then the hints.

    reveal=False (the grader, on secret inputs): messages never state an expected value.

    expectation: {"name", "reference", "wrong": [{"id", "message", "output"}], "hints": {case: text},
                  "spec", "passed", "atol", "rtol"}; `outputs` and the outputs inside are dicts {case: value}.
    """
    name, reference = expectation["name"], expectation["reference"]
    atol, rtol = float(expectation.get("atol", 1e-5)), float(expectation.get("rtol", 1e-4))
    if not isinstance(outputs, dict):
        return Verdict(False, f"`{name}` could not be checked: the probe returned {_kind(outputs)}.", "other")
    for kind, why, misconception in (
            ("NotImplementedError", f"`{name}` is not implemented yet: replace `raise NotImplementedError()` with "
                                    "your code.", "not_implemented"),
            ("WithheldAnswer", f"`{name}` called the course library's own answer to this exercise, which is not "
                               "available while the exercise is graded: write it yourself.", "library_answer")):
        if _raised_anywhere(outputs, kind) and not _raised_anywhere(reference, kind):
            return Verdict(False, why, misconception)
    wrong_cases = {case: differs(outputs.get(case), reference[case], atol, rtol, case, reveal) for case in reference}
    wrong_cases = {case: why for case, why in wrong_cases.items() if why}
    if not wrong_cases:
        return Verdict(True, expectation.get("passed") or f"{name}: right on every case")
    for known in expectation.get("wrong", []):
        telling = [c for c in reference if differs(known["output"].get(c), reference[c], atol, rtol)]
        if telling and all(differs(outputs.get(c), known["output"].get(c), atol, rtol) is None for c in telling):
            return Verdict(False, known["message"], known["id"])
    case, why = next(iter(wrong_cases.items()))
    hint = expectation.get("hints", {}).get(case) or expectation.get("spec", "")
    return Verdict(False, f"{name}: {why}. {hint}".strip(), "other")


# --- the visible check ---------------------------------------------------------------------------

def expectations_path(lesson: str, near: Path | None = None) -> Path:
    """Where `grader release` recorded the visible expectations: beside the student copy of the lesson.

    Looked for in the current folder and its parents (a lesson opened from notebooks/<lesson>/ or run
    from solutions/<lesson>/), then beside this package (a course or bundle root holding utils/ and
    notebooks/), then in $COURSE_ROOT.
    """
    name = f"{lesson}.checks.json"
    here = Path.cwd().resolve()
    candidates = ([near / name] if near else []) + [here / name]
    candidates += [p / "notebooks" / lesson / name for p in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parents[2] / "notebooks" / lesson / name)
    if os.environ.get("COURSE_ROOT"):
        candidates.append(Path(os.environ["COURSE_ROOT"]) / "notebooks" / lesson / name)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no visible checks for {lesson}: {name} is missing. It ships beside the lesson "
                            f"notebook (notebooks/{lesson}/); run the notebook from there, or ask your instructor.")


@lru_cache(maxsize=16)
def _recorded(path: str, mtime: float) -> dict:
    return decode_plain(Path(path).read_text())


def recorded(lesson: str, near: Path | None = None) -> dict:
    path = expectations_path(lesson, near)
    return _recorded(str(path), path.stat().st_mtime)


class LessonChecks:
    """The visible checks of one lesson: `checks.check("name", learner_object)` in the notebook's test cells."""

    def __init__(self, lesson: str, probes: dict[str, Probe] | None = None,
                 features: dict[str, Features] | None = None) -> None:
        self.lesson, self.probes, self.features = lesson, dict(probes or {}), dict(features or {})

    def probe(self, name: str) -> Probe:
        return self.probes.get(name, calls)

    def observe(self, name: str, learner: Any, inputs: Plain) -> Plain:
        return observe(self.probe(name), self.features.get(name), learner, inputs)

    def check(self, name: str, learner: Any) -> None:
        """Run exercise `name` on the visible inputs; print one line when right, else raise CheckFailed naming the mistake."""
        exercises = recorded(self.lesson)["exercises"]
        if name not in exercises:
            raise KeyError(f"{self.lesson} has no exercise {name!r}; it has {', '.join(exercises)}")
        recorded_case = exercises[name]
        verdict = judge(self.observe(name, learner, recorded_case["inputs"]), recorded_case["expectation"])
        if not verdict.ok:
            fail(verdict.message)
        print(f"✔ {verdict.message}. (The grader checks more cases, on inputs you have not seen.)")
