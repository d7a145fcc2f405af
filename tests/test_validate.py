"""`python -m utils.validate`: what the grader would run, checked before submitting, with reasons a student can act on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import synthetic
from grader.release import expectations_file

LESSON = "01_superposition_basics"


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utils.validate", str(path)], capture_output=True, text=True,
                          timeout=300, cwd="/")


def written(nb, folder: Path, name: str = LESSON) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = synthetic.write_submission(nb, folder.parent, folder.name, LESSON)
    shutil.copy(expectations_file(LESSON), path.parent)
    if name != LESSON:
        path = path.rename(path.with_name(f"{name}.ipynb"))
    return path


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_a_correct_notebook_passes(tmp_path: Path):
    result = validate(written(synthetic.make_submission(LESSON, "all"), tmp_path / "ok" / LESSON))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("✔") == 5


@pytest.mark.parametrize("mistake, words", [
    ("demo_helper", "`welch_helper` is defined in a demonstration cell, which grading does not run"),
    ("renamed", "`cosine_similarities` is not defined: the grader looks for exactly this name"),
    ("wrong_answer", "you used |cos|"),
])
def test_what_the_grader_would_fail_is_named(tmp_path: Path, mistake: str, words: str):
    nb = synthetic.make_submission(LESSON, "all")
    if mistake == "demo_helper":
        demo = next(c for c in nb.cells if c.cell_type == "code" and "nbgrader" not in c.metadata)
        demo.source += "\n\ndef welch_helper(N, n):\n    return 0.0 if N <= n else ((N - n) / (n * (N - 1))) ** 0.5\n"
        cell(nb, "ex_welch_bound").source = "def welch_bound(n_vectors, dim):\n    return welch_helper(n_vectors, dim)\n"
    elif mistake == "renamed":
        cell(nb, "ex_cosine_similarities").source = "def cosine_sim(W):\n    return W\n"
    else:
        cell(nb, "ex_cosine_similarities").source = (
            "def cosine_similarities(W):\n    W = W / W.norm(dim=0, keepdim=True)\n    return (W.T @ W).abs()\n")
    result = validate(written(nb, tmp_path / mistake / LESSON))
    assert result.returncode == 1 and words in result.stdout, result.stdout + result.stderr


def test_a_notebook_saved_under_another_name_is_told_so(tmp_path: Path):
    result = validate(written(synthetic.make_submission(LESSON, "all"), tmp_path / "renamed" / LESSON, "my copy"))
    assert result.returncode == 1 and f"save the notebook as {LESSON}.ipynb" in result.stdout
