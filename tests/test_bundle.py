"""The student bundle: installs in a fresh venv, its visible checks work, and it holds no part of the answer key."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from grader import key as answer_key
from grader import synthetic
from grader.bundle import bundle
from grader.lessons import REPO, lessons, source_notebook

CHECK = """
import importlib.util, os, sys
os.chdir(sys.argv[1])
assert importlib.util.find_spec("grader") is None, "the grader package must not be importable"
import torch
from utils.checks import CheckFailed, lesson01 as checks
import utils
assert os.path.commonpath([utils.__file__, sys.prefix]) == sys.prefix, utils.__file__  # installed, not the repo
def cosine_similarities(W):
    W = W / W.norm(dim=0, keepdim=True)
    return W.T @ W
checks.check("cosine_similarities", cosine_similarities)
try:
    checks.check("cosine_similarities", lambda W: cosine_similarities(W).abs())
except CheckFailed as failure:
    print("WRONG:", failure)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("bundle") / "class"
    bundle(target)
    return target


def test_the_bundle_has_the_student_side_only(built: Path):
    names = {p.relative_to(built).parts[0] for p in built.rglob("*")}
    assert names == {"notebooks", "utils", "requirements.txt", "pyproject.toml", "Makefile", "README.md"}
    for lesson in lessons():
        assert (built / "notebooks" / lesson / f"{lesson}.ipynb").is_file()
        assert (built / "notebooks" / lesson / f"{lesson}.checks.json").is_file()
    assert "nbgrader" not in (built / "requirements.txt").read_text()
    assert "torch==2.13.0" in (built / "requirements.txt").read_text()


def defined_names(paths) -> set[str]:
    return {node.name for path in paths for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_no_key_no_secret_no_solution_inside(built: Path):
    texts = {p: p.read_text(errors="replace") for p in built.rglob("*") if p.is_file()}
    # Nothing the answer keys define (input builders, references, wrong answers) is defined in the bundle.
    key_only = defined_names((REPO / "grader" / "key").glob("lesson*.py")) - defined_names((REPO / "utils").rglob("*.py"))
    assert key_only and not [name for name in key_only for text in texts.values()
                             if re.search(rf"\b(def|class)\s+{re.escape(name)}\b", text)]
    secret = answer_key.secret().decode()
    library = "\n".join(p.read_text() for p in (REPO / "utils").rglob("*.py"))
    for path, text in texts.items():
        assert secret not in text, path
        assert not re.search(r"\bfrom grader\b|\bimport grader\b|\bWrong\(|graded_inputs|GRADER_SECRET", text), path
    for lesson in lessons():
        for cell in nbformat.read(source_notebook(lesson), as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if not (meta.get("solution") and cell.cell_type == "code"):
                continue
            body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in (line.strip() for line in body.splitlines()):
                if len(line) > 20 and line not in library:
                    assert not any(line in text for text in texts.values()), (lesson, line)


@pytest.mark.slow
def test_the_bundle_installs_in_a_fresh_venv_and_its_checks_work(built: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The pinned dependencies come from this project's environment (a real install downloads them, minutes).
    (site / "course-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-build-isolation", str(built)], check=True, timeout=300)
    lesson = built / "notebooks" / "01_superposition_basics"  # where a student opens the lesson
    result = subprocess.run([str(venv / "bin" / "python"), "-c", CHECK, str(lesson)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "✔ cosine_similarities" in result.stdout
    assert "WRONG: all your similarities are >= 0: you used |cos|" in result.stdout
    work = shutil.copytree(lesson, tmp_path / "work")  # a student's copy of the lesson, finished
    nbformat.write(synthetic.make_submission("01_superposition_basics", "all"), work / "01_superposition_basics.ipynb")
    checked = subprocess.run([str(venv / "bin" / "python"), "-m", "utils.validate", "01_superposition_basics.ipynb"],
                             capture_output=True, text=True, timeout=300, cwd=work)
    assert checked.returncode == 0 and checked.stdout.count("✔") == 5, checked.stdout + checked.stderr
