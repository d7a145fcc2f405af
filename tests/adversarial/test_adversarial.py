"""A class of hostile and broken submissions graded in one batch: the batch finishes, no attack scores
more than the exercise it honestly solved, nothing outside the sandbox changes, and the feedback runs no
script. The honest control, which prints warnings to stderr, gets full marks."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from attacks import CODE, FILES, HONEST, HONEST_POINTS, HUGE_BYTES, LESSON, NOTEBOOK, XSS_PATTERNS, lookup_attack

from grader import synthetic
from grader.lessons import REPO
from grader.release import expectations_file

pytestmark = pytest.mark.slow


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("adversarial")
    subs, out = root / "subs", root / "out"
    code_attacks = {**CODE, "lookup_visible_inputs": lookup_attack(expectations_file(LESSON).read_text())}
    for name, code in code_attacks.items():
        nb = synthetic.make_submission(LESSON, HONEST)
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex_measure_interference").source = code
        synthetic.write_submission(nb, subs, name, LESSON)
    for name, attack in NOTEBOOK.items():
        synthetic.write_submission(attack(synthetic.make_submission(LESSON, HONEST)), subs, name, LESSON)
    for name, content in FILES.items():
        (subs / name / LESSON).mkdir(parents=True)
        (subs / name / LESSON / f"{LESSON}.ipynb").write_bytes(content)
    (subs / "huge_file" / LESSON).mkdir(parents=True)
    with (subs / "huge_file" / LESSON / f"{LESSON}.ipynb").open("wb") as f:
        f.truncate(HUGE_BYTES)
    bom = synthetic.make_submission(LESSON, HONEST)
    (subs / "byte_order_mark" / LESSON).mkdir(parents=True)
    (subs / "byte_order_mark" / LESSON / f"{LESSON}.ipynb").write_bytes(b"\xef\xbb\xbf" + nbformat.writes(bom).encode())
    noisy = "import sys, warnings\nwarnings.warn('this API is deprecated')\nprint('debugging...', file=sys.stderr)"
    synthetic.write_submission(synthetic.make_submission(LESSON, "all", prelude=noisy), subs, "honest_control", LESSON)

    canary = root / "canary"
    canary.mkdir()
    (canary / "secret.txt").write_text("do not touch")
    before = {"subs": tree_digest(subs), "canary": tree_digest(canary), "solutions": tree_digest(REPO / "solutions")}
    result = subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out), "--workers", "2",
                             "--timeout", "20", "--cell-timeout", "6", "--memory-mb", "3072"],
                            capture_output=True, text=True, timeout=1200)
    after = {"subs": tree_digest(subs), "canary": tree_digest(canary), "solutions": tree_digest(REPO / "solutions")}
    with (out / "grades.csv").open() as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    return result, rows, out, before, after


def test_the_batch_finishes_with_a_row_for_every_submission(batch):
    result, rows, *_ = batch
    assert result.returncode == 0, result.stderr[-3000:]
    expected = set(CODE) | set(NOTEBOOK) | set(FILES) | {"huge_file", "byte_order_mark", "honest_control",
                                                          "lookup_visible_inputs"}
    assert set(rows) == expected


@pytest.mark.parametrize("attack", sorted(set(CODE) | set(NOTEBOOK) | {"lookup_visible_inputs"}))
def test_no_attack_scores_more_than_what_it_honestly_solved(batch, attack):
    _, rows, *_ = batch
    assert float(rows[attack]["score"]) <= HONEST_POINTS, rows[attack]
    assert float(rows[attack]["max_score"]) == float(rows["honest_control"]["max_score"]), "points cannot be inflated"


@pytest.mark.parametrize("attack", ["rewrite_test_cells", "inflate_points", "javascript_in_outputs",
                                    "monkeypatch_comparisons", "replace_the_probes", "fake_passed_output"])
def test_attacks_that_leave_the_honest_exercise_alone_keep_its_point(batch, attack):
    _, rows, *_ = batch
    assert float(rows[attack]["score"]) == HONEST_POINTS, rows[attack]


@pytest.mark.parametrize("attack", ["alias_the_library", "module_attribute_alias", "getsource_and_exec",
                                    "read_the_library_files", "read_the_job", "call_the_visible_check_in_the_sandbox",
                                    "lookup_visible_inputs"])
def test_answer_key_routes_keep_only_the_honest_point(batch, attack):
    """Each route of issue 11 earns nothing; the exercise it leaves alone (welch_bound) keeps its point."""
    _, rows, out, *_ = batch
    assert float(rows[attack]["score"]) == HONEST_POINTS, rows[attack]


@pytest.mark.parametrize("attack", ["alias_the_library", "module_attribute_alias", "getsource_and_exec"])
def test_reaching_for_the_library_answer_is_reported(batch, attack):
    _, rows, *_ = batch
    assert "library answer" in rows[attack]["reason"], rows[attack]


@pytest.mark.parametrize("attack", ["alias_the_library", "module_attribute_alias"])
def test_calling_the_withheld_answer_is_named_in_the_feedback(batch, attack):
    _, rows, out, *_ = batch
    assert "called the withheld library answer utils.metrics.interference" in rows[attack]["reason"]
    page = (out / "feedback" / attack / LESSON / f"{LESSON}.html").read_text()
    assert "course library&#x27;s own answer" in page or "course library's own answer" in page


def test_forged_records_are_refused(batch):
    _, rows, out, *_ = batch
    assert float(rows["forge_records"]["score"]) == 0.0, rows["forge_records"]
    record = (out / "results" / "forge_records" / f"{LESSON}.json").read_text()
    assert "forged_results" in record


@pytest.mark.parametrize("attack, words", [
    ("rewrite_test_cells", "locked but was edited"), ("delete_test_cells", "missing cells"),
    ("inflate_points", "points"), ("duplicate_cell_ids", "duplicated cells"),
    ("infinite_loop", ""), ("exit_midway", "stopped the grader"), ("fork_bomb", "processes"),
    ("helper_in_demo_cell", "`welch_helper` is defined in a demonstration cell, which grading does not run"),
    ("fill_the_disk", "disk"),
])
def test_tampering_and_broken_runs_are_reported(batch, attack, words):
    _, rows, *_ = batch
    assert words in rows[attack]["reason"], rows[attack]


@pytest.mark.parametrize("name, words", [("not_json", "not valid JSON"), ("json_list", "no list of cells"),
                                         ("nested_deep", "not"), ("unknown_nbformat", "version 5"),
                                         ("huge_file", "over the 20 MB limit")])
def test_files_that_are_not_notebooks_get_a_row_with_the_reason(batch, name, words):
    _, rows, *_ = batch
    assert rows[name]["status"] == "invalid" and words in rows[name]["reason"], rows[name]


def test_a_byte_order_mark_is_just_a_notebook(batch):
    _, rows, *_ = batch
    assert rows["byte_order_mark"]["status"] == "graded" and float(rows["byte_order_mark"]["score"]) == HONEST_POINTS


def test_the_honest_control_with_stderr_warnings_gets_full_marks(batch):
    _, rows, *_ = batch
    assert float(rows["honest_control"]["score"]) == float(rows["honest_control"]["max_score"]) > 0


def test_nothing_outside_the_sandbox_changed(batch):
    *_, before, after = batch
    assert before == after
    assert not Path("/tmp/pwned").exists()


def test_secrets_are_not_readable_and_feedback_runs_no_script(batch):
    _, _, out, *_ = batch
    secrets = (out / "feedback" / "read_secrets" / LESSON / f"{LESSON}.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in secrets and "gradebook.db'" not in secrets
    for student in ("javascript_in_outputs", "honest_control"):
        page = (out / "feedback" / student / LESSON / f"{LESSON}.html").read_text()
        body = page[page.index("<body"):]
        assert not any(re.search(pattern, body) for pattern in XSS_PATTERNS), student
