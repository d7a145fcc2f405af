"""`python -m grader bundle DIR`: what an instructor hands to a class, without the answer key.

DIR gets the student notebooks with their recorded visible expectations, the `utils` package (the
course library and the key-free visible checks), the pinned requirements a student needs, a Makefile
whose `make lab` sets everything up and opens JupyterLab, and a short README. No solutions/, no
grader/ (references, judges, input builders, the secret), no tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.lessons import course, lessons, student_notebook
from grader.release import expectations_file

# What a student's environment needs: the library, JupyterLab, and nbformat/nbclient to validate a notebook.
STUDENT_PACKAGES = ("torch", "numpy", "plotly", "pandas", "tqdm", "ipywidgets", "jupyterlab", "notebook", "ipykernel",
                    "nbformat", "nbclient", "scikit-learn")

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "superposition-course-student"
version = "0.1.0"
description = "A course on superposition in neural networks: the student's bundle."
requires-python = ">=3.11"
dependencies = ["torch", "numpy", "plotly", "pandas", "tqdm"]

[tool.setuptools.packages.find]
include = ["utils*"]
"""

MAKEFILE = """# `make lab`: creates .venv from requirements.txt (about 2-3 minutes the first time), then opens JupyterLab.
PYTHON ?= python3
BIN := .venv/bin

.PHONY: lab install validate
install: .venv/.installed

.venv/.installed: requirements.txt pyproject.toml
\ttest -x $(BIN)/python || $(PYTHON) -m venv .venv
\t$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
\t$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
\ttouch .venv/.installed

# Jupyter refuses to start as root unless told; containers and cloud notebooks often run as root.
lab: install
\t$(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Before submitting: run the notebook the way the grader will, e.g. make validate NOTEBOOK=notebooks/01_x/01_x.ipynb
validate: install
\t$(BIN)/python -m utils.validate "$(NOTEBOOK)"
"""

README = """# Superposition in neural networks: your course folder

```bash
make lab      # the first time: creates .venv and installs everything (about 2-3 minutes), then opens JupyterLab
```

You need Python 3.11 and `make`. Open `notebooks/01_superposition_basics/01_superposition_basics.ipynb`
and work from top to bottom. In each exercise cell, replace `raise NotImplementedError()` with your code,
then run the check cell below it:

- `✔ ...` means your code is right on the check's inputs;
- otherwise the check stops with a message that names the likely mistake (for example "you used |cos|:
  the question asks for the signed cosine"). Fix it and run both cells again.

The checks compare your results with recorded results for a few fixed inputs. Your instructor grades
the same exercises on other inputs, different for every student, so code that only fits the check's
inputs will not get the points. Written answers are graded by your instructor.

Before you submit, run `make validate NOTEBOOK=notebooks/<lesson>/<lesson>.ipynb` (save the notebook
first). It runs your notebook the way the grader will (only the setup cells, your exercise cells and
cells you added, in a fresh process) and then every check, and says what would fail and why: for
example a helper you defined in a demonstration cell, which the grader does not run.

Submit each `notebooks/<lesson>/<lesson>.ipynb` the way your instructor asks, under its own name; do
not delete or reorder the cells. Keep the `.checks.json` file beside each notebook: the checks read it.
The `utils` package is the course library the lessons import; reading it is fine, copying an exercise's
answer from it is plagiarism, and the grader withholds those parts while it grades.
"""


def requirements() -> str:
    """The repository's pins, limited to what a student's environment needs."""
    lines = (course() / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if line.split("==")[0].strip() in STUDENT_PACKAGES]
    return "# Pinned, so every student gets the numbers the checks were recorded with.\n" + "\n".join(kept) + "\n"


def bundle(target: Path) -> list[Path]:
    """Write the student bundle into `target` (which must not exist or be empty); returns the files written."""
    target = target.resolve()
    if target.exists() and any(target.iterdir()):
        raise SystemExit(f"{target} is not empty: choose a new folder for the bundle")
    target.mkdir(parents=True, exist_ok=True)
    for lesson in lessons():
        folder = target / "notebooks" / lesson
        folder.mkdir(parents=True)
        shutil.copy2(student_notebook(lesson), folder)
        if expectations_file(lesson).exists():
            shutil.copy2(expectations_file(lesson), folder)
    shutil.copytree(course() / "utils", target / "utils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / "requirements.txt").write_text(requirements())
    (target / "pyproject.toml").write_text(PYPROJECT)
    (target / "Makefile").write_text(MAKEFILE)
    (target / "README.md").write_text(README)
    return sorted(p for p in target.rglob("*") if p.is_file())
