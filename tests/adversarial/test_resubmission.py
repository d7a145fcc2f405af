"""Red team: print the secret inputs, read them in the feedback, come back with a table of answers for them.

The inputs live in the sandbox's memory, so a submission can print them; they are derived from the
notebook's own hash too, so the next version of the notebook (the one with the table) meets new ones.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import key as answer_key
from grader import synthetic, trusted
from grader.lessons import source_notebook
from utils import metrics
from utils.checks import decode_plain, encode_plain, judge

pytestmark = pytest.mark.slow
LESSON = "01_superposition_basics"
PRINT_INPUTS = """
import gc
for job in [o for o in gc.get_objects() if isinstance(o, dict) and "cells" in o and "cell_timeout" in o]:
    for cell in job["cells"]:
        if cell.get("probe", {}).get("exercise") == "cosine_similarities":
            for text in cell["probe"]["inputs"]:
                print("INPUTS", text)
"""
TABLE = """
import torch
from utils.checks import decode_plain
TABLE = decode_plain({table!r})
def cosine_similarities(W):
    for known, answer in TABLE:
        if known.shape == W.shape and torch.equal(known, W):
            return answer
    return torch.zeros(W.shape[1], W.shape[1])
"""


def grade(nb: nbformat.NotebookNode, root: Path, student: str = "mallory") -> tuple[float, Path]:
    subs, out = root / "subs", root / "out"
    synthetic.write_submission(nb, subs, student, LESSON)
    subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out)], check=True,
                   capture_output=True, timeout=600)
    with (out / "grades.csv").open() as f:
        return float(next(csv.DictReader(f))["score"]), out


def test_a_table_of_answers_for_printed_inputs_earns_nothing(tmp_path: Path):
    spy = synthetic.make_submission(LESSON, ["ex_welch_bound"])
    spy.cells.append(nbformat.v4.new_code_cell(PRINT_INPUTS))
    _, out = grade(spy, tmp_path / "first")
    graded = nbformat.read(out / "workspace" / "autograded" / "mallory" / LESSON / f"{LESSON}.ipynb", as_version=4)
    printed = [line.removeprefix("INPUTS ") for c in graded.cells if c.cell_type == "code" for o in c.outputs
               if o.get("name") == "stdout" for line in o.text.splitlines() if line.startswith("INPUTS ")]
    assert printed, "the spy could not print its inputs (then there is nothing to test)"
    table = [(case["args"][0], metrics.cosine_similarities(case["args"][0]))
             for text in printed for case in decode_plain(text).values()]
    cheat = synthetic.make_submission(LESSON, ["ex_welch_bound"])
    next(c for c in cheat.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex_cosine_similarities").source = \
        TABLE.format(table=encode_plain(table))
    score, _ = grade(cheat, tmp_path / "second")
    assert score == 1.0  # welch_bound only: the table missed the inputs this notebook met
    # Control: had the inputs not depended on the notebook, the same table would have passed.
    spy_digest = hashlib.sha256((tmp_path / "first" / "subs" / "mallory" / LESSON / f"{LESSON}.ipynb").read_bytes())
    source = nbformat.read(source_notebook(LESSON), as_version=4)
    _, inputs = trusted.build_job(cheat, source, "mallory", 10.0, digest=spy_digest.hexdigest())
    namespace: dict = {}
    exec(TABLE.format(table=encode_plain(table)), namespace)
    key = trusted.lesson_key(source)
    exercise = key.exercise("test_cosine_similarities")
    verdicts = [judge(key.checks.observe("cosine_similarities", namespace["cosine_similarities"], given),
                      answer_key.expectation(key, exercise, given)) for given in inputs["test_cosine_similarities"]]
    assert all(v.ok for v in verdicts)
