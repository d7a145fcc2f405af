"""The answer key: one declaration per exercise, and everything built from it.

Each lesson has a key module (named by its source notebook's `grader.key` metadata, a path relative
to the course root: `grader/key/lessonNN.py` for this course) holding `LESSON`, `CHECKS` (the
student-side module with the lesson's probes) and `EXERCISES`, a list of `Exercise`. From one
declaration come:
  - the notebook's test cell (`test_cell_source`) and its points (written by `grader release`);
  - the visible expectation: reference and known wrong answers run on the visible inputs, recorded
    by `grader release` in notebooks/<lesson>/<lesson>.checks.json (data, no code);
  - the graded cases: inputs built from the instructor's secret, different for every student, and
    their expectation, computed here and never sent to the sandbox;
  - the library objects that answer it, which the sandbox's view of `utils` replaces by stubs.
Nothing in this package is mounted in the sandbox or shipped to students.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import importlib.util
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import nbformat

if TYPE_CHECKING:
    import torch

    from utils.checks import LessonChecks, Plain

# torch and utils.checks are imported where they are used: a grading run with nothing to grade, and the class
# report, only read this module's paths and secret, and importing torch would be most of their start-up (1-1.5 s).

GRADED_SETS = 2  # independent input sets per exercise and student; every one must pass


@dataclass(frozen=True)
class Part:
    """A share of an exercise's points, earned when every one of its cases is right on every graded input set."""

    label: str  # what the student is told, e.g. "1-D input"
    points: float
    cases: tuple[str, ...]  # keys of the judged data (the input builder's cases, for the default probe)


@dataclass(frozen=True)
class Wrong:
    """A known wrong answer: an implementation of the mistake, and what to tell a student who made it."""

    id: str  # a stable misconception id, e.g. "abs_cos"; the class report counts them
    message: str
    answer: Callable[..., Any]


@dataclass(frozen=True)
class Exercise:
    """Everything about one autograded exercise. The student writes `name` in cell ex_<name>; test_<name> grades it."""

    name: str
    points: float
    inputs: Callable[[torch.Generator], Plain]  # case -> {"args": [...], "kwargs": {...}} (or what the probe takes)
    reference: Callable[..., Any]
    wrong: tuple[Wrong, ...] = ()
    answers: tuple[str, ...] = ()  # library objects that answer it, "utils.module.object", withheld while graded
    hints: dict[str, str] = field(default_factory=dict)  # case -> what to check when only that case is wrong
    spec: str = ""  # the fallback message: what the exercise asks, briefly
    passed: str = ""  # the one-line success message
    atol: float = 1e-5
    rtol: float = 1e-4
    fixed_cases: tuple[str, ...] = ()  # edge cases the spec names (e.g. x = 0), the same for everyone by design
    # Partial credit: the points split over groups of cases that test independent things. Empty (the default):
    # all or nothing, for exercises whose cases depend on each other.
    parts: tuple[Part, ...] = ()

    def __post_init__(self) -> None:
        if not self.parts:
            return
        cases = [case for part in self.parts for case in part.cases]
        if len(set(cases)) != len(cases) or any(not part.cases for part in self.parts):
            raise ValueError(f"{self.name}: every part needs cases of its own (a case in two parts counts twice)")
        if abs(sum(part.points for part in self.parts) - self.points) > 1e-9:
            raise ValueError(f"{self.name}: its parts' points add up to {sum(p.points for p in self.parts):g}, "
                             f"not to its {self.points:g} points")

    def check_parts(self, reference: Plain) -> None:
        """Raise unless the parts cover exactly the cases the judge compares (`reference`: case -> the reference's
        judged result), and each part has a case with a value: a part of only "raises an error" cases would pay
        code that does nothing but raise."""
        declared = {case for part in self.parts for case in part.cases}
        if self.parts and declared != set(reference):
            raise ValueError(f"{self.name}: its parts name the cases {sorted(declared)}, but the judge compares "
                             f"{sorted(reference)}")
        for part in self.parts:
            if all(isinstance(reference[c], dict) and "raised" in reference[c] for c in part.cases):
                raise ValueError(f"{self.name}: part {part.label!r} is earned by raising an error; give it a case "
                                 "with a value too")

    @property
    def grade_id(self) -> str:
        return f"test_{self.name}"

    @property
    def cell_id(self) -> str:
        return f"ex_{self.name}"


@dataclass(frozen=True)
class LessonKey:
    lesson: str
    checks: LessonChecks
    exercises: tuple[Exercise, ...]
    module: ModuleType

    def exercise(self, grade_id: str) -> Exercise | None:
        return next((e for e in self.exercises if e.grade_id == grade_id), None)

    @property
    def probe_module(self) -> str:
        """The student-side module whose `checks` object has this lesson's probes (plain `utils.checks`: the default)."""
        return self.module.CHECKS or "utils.checks"


def key_path(source: nbformat.NotebookNode, course_root: Path) -> Path | None:
    name = source.metadata.get("grader", {}).get("key")
    return (course_root / name).resolve() if name else None


@lru_cache(maxsize=32)
def _load(path: str) -> LessonKey:
    spec = importlib.util.spec_from_file_location(f"grader_key_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    from utils.checks import LessonChecks
    checks = importlib.import_module(module.CHECKS).checks if module.CHECKS else LessonChecks(module.LESSON)
    return LessonKey(module.LESSON, checks, tuple(module.EXERCISES), module)


def load(source: nbformat.NotebookNode, course_root: Path) -> LessonKey | None:
    """The key of a lesson's source notebook, or None when the lesson declares none."""
    path = key_path(source, course_root)
    return _load(str(path)) if path else None


# --- expectations --------------------------------------------------------------------------------

_EXPECTATIONS: dict[tuple[str, ...], Any] = {}  # recent results: a regrade or a test asks again


def expectation(key: LessonKey, exercise: Exercise, inputs: Plain, wrong: bool = True) -> Plain:
    """The reference's judged data on `inputs` and that of every known wrong answer that it tells apart.

    wrong=False leaves the known wrong answers out: enough to tell whether a result is right, and much
    cheaper where the wrong answers train models (lesson 02's MyToyModel trains one per known mistake).
    Both parts are cached by the inputs' content (some references train a model too).
    """
    from utils.checks import encode_plain, observe
    probe, features = key.checks.probe(exercise.name), key.checks.features.get(exercise.name)
    digest = hashlib.sha256(encode_plain(inputs).encode()).hexdigest()
    reference = _cached((key.lesson, exercise.name, digest, "reference"),
                        lambda: observe(probe, features, exercise.reference, inputs))

    def wrong_outputs() -> list[Plain]:
        outputs = ({"id": known.id, "message": known.message, "output": observe(probe, features, known.answer, inputs)}
                   for known in exercise.wrong)
        return [w for w in outputs if encode_plain(w["output"]) != encode_plain(reference)]
    return {"name": exercise.name, "reference": reference,
            "wrong": _cached((key.lesson, exercise.name, digest, "wrong"), wrong_outputs) if wrong else [],
            "hints": exercise.hints, "spec": exercise.spec, "passed": exercise.passed, "atol": exercise.atol,
            "rtol": exercise.rtol}


def _cached(cache_key: tuple[str, ...], compute: Callable[[], Any]) -> Any:
    """compute(), remembered under cache_key (the oldest of 512 forgotten first)."""
    if cache_key not in _EXPECTATIONS:
        if len(_EXPECTATIONS) > 512:
            _EXPECTATIONS.pop(next(iter(_EXPECTATIONS)))
        _EXPECTATIONS[cache_key] = compute()
    return _EXPECTATIONS[cache_key]


def uniform(g: torch.Generator, low: float, high: float) -> float:
    """A float drawn uniformly from [low, high) with `g`: for input builders, whose every choice comes from g."""
    import torch
    return low + (high - low) * float(torch.rand((), generator=g))


def integer(g: torch.Generator, low: int, high: int) -> int:
    """An int drawn uniformly from low..high (both included) with `g`."""
    import torch
    return int(torch.randint(low, high + 1, (), generator=g))


def _generator(seed: int) -> torch.Generator:
    import torch
    return torch.Generator().manual_seed(seed)


def visible_seed(lesson: str, exercise: str) -> int:
    """The seed of the generator that builds an exercise's visible inputs (public by design)."""
    return _seed(b"visible", lesson, exercise, 0)


def visible_inputs(key: LessonKey, exercise: Exercise) -> Plain:
    """The inputs of the visible check: public, fixed, recorded beside the student copy."""
    return exercise.inputs(_generator(visible_seed(key.lesson, exercise.name)))


def recorded_expectations(key: LessonKey) -> dict:
    """What `grader release` writes to notebooks/<lesson>/<lesson>.checks.json."""
    exercises = {}
    for exercise in key.exercises:
        inputs = visible_inputs(key, exercise)
        exercises[exercise.name] = {"inputs": inputs, "expectation": expectation(key, exercise, inputs)}
        exercise.check_parts(exercises[exercise.name]["expectation"]["reference"])
    return {"lesson": key.lesson, "exercises": exercises}


# --- secret, per-student graded inputs -----------------------------------------------------------

def secret_path() -> Path:
    """The instructor's secret: $GRADER_SECRET_FILE, or ~/.config/superposition-course/grader-secret (outside the repo)."""
    default = Path.home() / ".config" / "superposition-course" / "grader-secret"
    return Path(os.environ.get("GRADER_SECRET_FILE", default)).expanduser()


@lru_cache(maxsize=4)
def _secret(path: str) -> bytes:
    target = Path(path)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    value = target.read_text().strip()
    if len(value) < 32:
        raise SystemExit(f"the grader secret {target} is too short: delete it to create a new one (regrades change)")
    return value.encode()


def secret() -> bytes:
    return _secret(str(secret_path()))


def secret_id() -> str:
    """A public fingerprint of the secret (changes the resume key, reveals nothing)."""
    return hashlib.sha256(b"id:" + secret()).hexdigest()[:16]


def _seed(kind: bytes, *parts: object, key: bytes = b"public") -> int:
    message = kind + b"\0" + "\0".join(str(p) for p in parts).encode()
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:8], "big") >> 1


def submission_key(student: str, lesson: str, submission: str = "") -> bytes:
    """The key of one submission's secret inputs, derived from the instructor's secret (which it does not reveal).

    A grading worker builds that submission's inputs from it alone, so the secret itself never leaves this process.
    """
    return hmac.new(secret(), b"submission\0" + f"{student}\0{lesson}\0{submission}".encode(), hashlib.sha256).digest()


def graded_inputs(key: LessonKey, exercise: Exercise, student: str, sets: int = GRADED_SETS,
                  submission: str = "", inputs_key: bytes | None = None) -> list[Plain]:
    """Secret inputs for (student, lesson, exercise, submission): reproducible from the secret, never the visible ones.

    `submission` (the notebook's sha256) makes every new version of a notebook meet new inputs: a submission
    that printed its inputs cannot come back with a table of answers for them. A regrade of the same file
    meets the same inputs. `inputs_key`: the submission's `submission_key`, when already made.
    """
    from utils.checks import encode_plain
    visible = _visible_encodings(key, exercise)
    if inputs_key is None:
        inputs_key = submission_key(student, key.lesson, submission)
    chosen, attempt = [], 0
    while len(chosen) < sets:
        seed = _seed(b"graded", exercise.name, attempt, key=inputs_key)
        inputs = exercise.inputs(_generator(seed))
        attempt += 1
        if not any(encode_plain(v) in visible for case, v in inputs.items() if case not in exercise.fixed_cases):
            chosen.append(inputs)
        if attempt > 100 * sets:
            raise RuntimeError(f"{exercise.name}: the input builder keeps producing the visible inputs")
    return chosen


_VISIBLE: dict[tuple[str, str], frozenset[str]] = {}  # (key file, exercise) -> its visible inputs, encoded


def _visible_encodings(key: LessonKey, exercise: Exercise) -> frozenset[str]:
    """The encoded visible inputs of an exercise (its fixed cases aside), which graded inputs must differ from; built
    once per process and exercise, as some input builders train models (lesson 04's: about 0.5 core-s a call)."""
    from utils.checks import encode_plain
    cache_key = (str(key.module.__file__), exercise.name)
    if cache_key not in _VISIBLE:
        _VISIBLE[cache_key] = frozenset(encode_plain(v) for case, v in visible_inputs(key, exercise).items()
                                        if case not in exercise.fixed_cases)
    return _VISIBLE[cache_key]


def part_expectation(expected: Plain, cases: tuple[str, ...]) -> Plain:
    """An expectation narrowed to some cases: the reference's results on them, and each known wrong answer's."""
    def narrow(output: Plain) -> Plain:
        return {case: output[case] for case in cases if case in output}
    return {**expected, "reference": narrow(expected["reference"]),
            "wrong": [{**w, "output": narrow(w["output"])} for w in expected["wrong"]]}


# --- the notebook's test cell --------------------------------------------------------------------

def test_cell_source(exercise: Exercise) -> str:
    return (f'checks.check("{exercise.name}", {exercise.name})\n'
            "# The grader runs the same check on other inputs, different for every student: they decide the grade.")
