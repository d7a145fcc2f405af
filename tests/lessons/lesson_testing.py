"""Helpers of the lesson tests: judge a learner's object the way the grader does, and run a solution notebook."""

from __future__ import annotations

from typing import Any

import nbformat

from grader import key as answer_key
from grader.lessons import source_notebook
from utils.checks import Plain, Verdict, judge


def verdict_on(key: answer_key.LessonKey, exercise: answer_key.Exercise, learner: Any, inputs: Plain) -> Verdict:
    """The judge's verdict on `learner` (the student's function or class) on `inputs`, against the full expectation."""
    return judge(key.checks.observe(exercise.name, learner, inputs), answer_key.expectation(key, exercise, inputs))


def solution_namespace(lesson: str, preamble: str = "import torch\n") -> dict:
    """The solution notebook's exercise cells, run after `preamble`: a student's answers, not the library's."""
    namespace: dict = {}
    exec(preamble, namespace)
    for cell in nbformat.read(source_notebook(lesson), as_version=4).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)
    return namespace
