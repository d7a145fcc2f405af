"""Where lessons live: solutions/NN_name/NN_name.ipynb is the source, notebooks/NN_name/ the student copy."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LESSON_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


def course() -> Path:
    """The course root: this repo, or COURSE_ROOT (another course laid out the same way; the tests use a tiny one)."""
    return Path(os.environ.get("COURSE_ROOT", REPO)).resolve()


def solutions_dir() -> Path:
    return course() / "solutions"


def notebooks_dir() -> Path:
    return course() / "notebooks"


def lessons() -> list[str]:
    """Every lesson folder under solutions/, in course order."""
    return sorted(p.name for p in solutions_dir().iterdir() if p.is_dir() and LESSON_NAME.match(p.name))


def resolve(lesson: str | None) -> list[str]:
    """The lessons a command works on: all of them, or the one named (checked)."""
    available = lessons()
    if lesson is None:
        return available
    if lesson not in available:
        raise SystemExit(f"unknown lesson {lesson!r}; the lessons are: {', '.join(available)}")
    return [lesson]


def source_notebook(lesson: str) -> Path:
    return solutions_dir() / lesson / f"{lesson}.ipynb"


def student_notebook(lesson: str) -> Path:
    return notebooks_dir() / lesson / f"{lesson}.ipynb"
