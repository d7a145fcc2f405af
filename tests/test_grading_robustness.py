"""A submission can only cost its own row (issue 12): broken metadata, odd bytes, links and stale grades."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader import feedback, synthetic, trusted
from grader.submission import InvalidSubmission, inspect

FIXTURE = Path(__file__).parent / "fixtures" / "course"
LESSON = "01_tiny"


@pytest.fixture(autouse=True, scope="module")
def fixture_course(tmp_path_factory: pytest.TempPathFactory):
    """The fixture course and one instructor secret for the whole module (a new secret would regrade everything)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_ROOT", str(FIXTURE))
        patch.setenv("GRADER_SECRET_FILE", str(tmp_path_factory.mktemp("secret") / "secret"))
        yield


def source() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)


def test_a_huge_integer_or_garbage_on_the_results_channel_is_skipped():
    events = "\n".join(["9" * 5000, '{"event": "probe", "set": ' + "9" * 5000 + "}", "[" * 100_000, "\udcff\x00",
                        json.dumps({"event": "probe", "grade_id": ["x"], "set": 0}), '{"event": "done"}'])
    cells, probes, done = trusted.parse_events(events)
    assert cells == {} and probes == {} and done == {"event": "done"}


def test_a_grade_id_of_the_wrong_type_is_ignored_and_reported(tmp_path: Path):
    nb = synthetic.make_submission(LESSON, "all")
    nb.cells[2].metadata["nbgrader"]["grade_id"] = ["ex_double"]
    nb.cells[4].metadata["nbgrader"]["points"] = "50"
    path = tmp_path / "sub.ipynb"
    nbformat.write(nb, path)
    problems = inspect(path, source()).problems
    assert any("wrong type" in p for p in problems), problems


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
CELL = st.fixed_dictionaries({
    "cell_type": st.sampled_from(["code", "markdown", "raw"]),
    "source": st.text(max_size=200) | st.lists(st.text(max_size=40), max_size=5),
    "metadata": st.fixed_dictionaries({}, optional={"nbgrader": JSON | st.fixed_dictionaries({}, optional={
        "grade_id": JSON | st.sampled_from(["ex_double", "test_double", "setup", "written_why"]),
        "grade": JSON, "solution": JSON, "locked": JSON, "points": JSON})}),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cells=st.lists(CELL, max_size=8), events=st.lists(st.text(max_size=80) | JSON.map(json.dumps), max_size=10))
def test_any_notebook_and_any_events_become_a_row_never_a_crash(cells, events, tmp_path_factory):
    """Generated notebooks (wrong types everywhere, odd unicode) and arbitrary lines from the sandbox."""
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "sub.ipynb"
    for cell in cells:
        if cell["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}), errors="replace")
    lesson_source = source()
    try:
        inspection = inspect(path, lesson_source)
    except InvalidSubmission:
        return  # an invalid row with its reason: what the grader writes for such a file
    trusted.tampering(inspection.notebook, lesson_source)
    trusted.reached_for_answers(inspection.notebook, lesson_source)
    job, inputs = trusted.build_job(inspection.notebook, lesson_source, "student", 10.0)
    json.dumps(job)
    judgement = trusted.judge("\n".join(events), lesson_source, inputs, "finished")
    assert len(judgement.grades) == 2 and all(g.points == 0 for g in judgement.grades)
    trusted.demonstration_helpers(inspection.notebook, lesson_source, judgement)
    graded = feedback.graded_notebook(inspection.notebook, lesson_source, judgement.cell_events)
    feedback.render(feedback.feedback_notebook(graded, {}, "# Feedback"))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=600)


def rows(out: Path) -> dict[tuple[str, str], dict]:
    with (out / "grades.csv").open(newline="") as f:
        return {(r["student_id"], r["lesson"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory):
    """One batch with links, odd names, odd output and tampering; graded once, then re-run in the tests."""
    root = tmp_path_factory.mktemp("robust")
    subs, out = root / "subs", root / "out"
    honest = synthetic.make_submission(LESSON, "all")
    synthetic.write_submission(honest, subs, "alice", LESSON)
    synthetic.write_submission(honest, subs, "copycat", LESSON)  # byte for byte alice's
    (subs / "linker" / LESSON).mkdir(parents=True)
    os.link(subs / "alice" / LESSON / f"{LESSON}.ipynb", subs / "linker" / LESSON / f"{LESSON}.ipynb")
    os.symlink(subs / "alice", subs / "folder_link")
    (subs / "lesson_link").mkdir()
    os.symlink(subs / "alice" / LESSON, subs / "lesson_link" / LESSON)
    (subs / "shadow" / LESSON).mkdir(parents=True)
    os.symlink("/etc/shadow", subs / "shadow" / LESSON / f"{LESSON}.ipynb")
    (subs / "newline\n").mkdir()
    synthetic.write_submission(honest, subs, "newline\n", LESSON)
    loud = synthetic.make_submission(LESSON, "all", prelude="print('\\ud800 lone surrogate')")
    synthetic.write_submission(loud, subs, "surrogate", LESSON)
    claims = synthetic.make_submission(LESSON, ["ex_double"])
    claims.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
        "grade": True, "points": 50, "grade_id": "bonus", "solution": False, "locked": False, "schema_version": 3}}))
    synthetic.write_submission(claims, subs, "claimer", LESSON)
    result = cli("autograde", str(subs), "--out", str(out), "--workers", "2")
    return subs, out, result


def test_the_batch_finishes_with_a_row_each(batch):
    subs, out, result = batch
    assert result.returncode == 0, result.stderr[-2000:]
    assert {s for s, _ in rows(out)} == {"alice", "copycat", "linker", "folder_link", "lesson_link", "shadow",
                                         "newline\n", "surrogate", "claimer"}


def test_symlinks_are_refused_at_every_level_and_the_reason_names_the_link(batch):
    _, out, _ = batch
    table = rows(out)
    for student, link in (("folder_link", "folder_link"), ("lesson_link", f"lesson_link/{LESSON}"),
                          ("shadow", f"shadow/{LESSON}/{LESSON}.ipynb")):
        row = table[(student, LESSON)]
        assert row["status"] == "invalid" and f"{link} is a symbolic link" in row["reason"], row
        assert float(row["score"]) == 0


def test_hard_links_and_identical_notebooks_are_graded_but_flagged(batch):
    _, out, _ = batch
    table = rows(out)
    assert float(table[("linker", LESSON)]["score"]) == 3 and "hard-linked" in table[("linker", LESSON)]["flags"]
    assert "identical notebook to" in table[("copycat", LESSON)]["flags"]
    assert "copycat" in table[("alice", LESSON)]["flags"]


def test_a_student_id_ending_in_a_newline_is_refused(batch):
    _, out, _ = batch
    row = rows(out)[("newline\n", LESSON)]
    assert row["status"] == "invalid" and "student folder name" in row["reason"]


def test_a_lone_surrogate_in_the_output_still_gets_graded_and_feedback(batch):
    _, out, _ = batch
    assert float(rows(out)[("surrogate", LESSON)]["score"]) == 3
    assert "lone surrogate" in (out / "feedback" / "surrogate" / LESSON / f"{LESSON}.html").read_text()


def test_an_added_cell_claiming_points_is_reported_as_tampering(batch):
    _, out, _ = batch
    row = rows(out)[("claimer", LESSON)]
    assert float(row["score"]) == 2 and float(row["max_score"]) == 3 and "claims to be graded for 50 points" in row["reason"]


def test_a_job_that_cannot_be_built_costs_only_its_row(tmp_path: Path, monkeypatch):
    """The grading worker builds each job (issue 17: the grading process no longer does); a failure there becomes
    that submission's reason, and the others are graded."""
    from grader import autograde
    subs = tmp_path / "subs"
    for student in ("ann", "bob"):
        synthetic.write_submission(synthetic.make_submission(LESSON, "all"), subs, student, LESSON)
    build_job = trusted.build_job

    def breaks_for_bob(submission, lesson_source, student, *args, **kwargs):
        if student == "bob":
            raise ValueError("an input builder broke")
        return build_job(submission, lesson_source, student, *args, **kwargs)

    monkeypatch.setattr(trusted, "build_job", breaks_for_bob)
    graded = {r.student_id: r for r in autograde.autograde(subs, tmp_path / "out", progress=False)}
    assert graded["ann"].status == "graded" and graded["ann"].score == graded["ann"].max_score == 3, graded["ann"]
    assert graded["bob"].status == "error" and graded["bob"].score == 0, graded["bob"]
    assert graded["bob"].reason == "grading failed before the run: ValueError: an input builder broke"


def test_a_worker_lost_twice_is_an_error_left_for_the_next_run(tmp_path: Path, monkeypatch):
    """A grading worker that fails on both tries says nothing about the submission: its row is an error, and no
    result is recorded, so the next run grades it again."""
    from grader import autograde
    subs, out = tmp_path / "subs", tmp_path / "out"
    for student in ("ann", "bob"):
        synthetic.write_submission(synthetic.make_submission(LESSON, "all"), subs, student, LESSON)
    tries = []

    def fails_for_bob(task, sandboxed):
        if task.row.student_id == "bob":
            tries.append(task.retried)
            raise RuntimeError("the worker's process died")
        return grade(task, sandboxed)

    grade = autograde.grade
    monkeypatch.setattr(autograde, "grade", fails_for_bob)
    graded = {r.student_id: r for r in autograde.autograde(subs, out, progress=False)}
    assert tries == [False, True] and graded["ann"].score == 3, graded["ann"]
    assert graded["bob"].status == "error", graded["bob"]
    assert graded["bob"].reason == ("the grading worker failed: RuntimeError: the worker's process died "
                                    "(also on a second try; the next run tries again)")
    assert not (out / "results" / "bob").exists()
    monkeypatch.undo()
    again = {r.student_id: r for r in autograde.autograde(subs, out, progress=False)}
    assert again["bob"].status == "graded" and again["bob"].score == 3, again["bob"]


def test_the_default_time_limit_comes_from_the_reference_grading_time(tmp_path: Path):
    """A submission sleeping under the cell limit is stopped at the lesson's own limit, not after ten minutes."""
    from grader import timing
    subs, out = tmp_path / "subs", tmp_path / "out"
    sleeper = synthetic.make_submission(LESSON, "all", prelude="import time\ntime.sleep(100)")
    synthetic.write_submission(sleeper, subs, "sleeper", LESSON)
    assert cli("autograde", str(subs), "--out", str(out)).returncode == 0
    limit = timing.default_timeout(LESSON, source())
    recorded = json.loads((FIXTURE / "key" / "limits.json").read_text())[LESSON]["reference_seconds"]
    assert limit == round(max(timing.MULTIPLE * recorded, timing.MINIMUM)) < 100
    row = rows(out)[("sleeper", LESSON)]
    assert f"ran past its {limit:.0f} s limit" in row["reason"] and "second try" in row["reason"], row


def test_resume_regrades_when_limits_change_and_force_regrades_what_it_names(batch):
    subs, out, _ = batch
    again = cli("autograde", str(subs), "--out", str(out))
    assert "5 unchanged since the last run" in again.stdout, again.stdout  # the 5 graded ones
    longer = cli("autograde", str(subs), "--out", str(out), "--timeout", "700")
    assert "unchanged" not in longer.stdout, longer.stdout
    forced = cli("autograde", str(subs), "--out", str(out), "--timeout", "700", "--force", "alice")
    assert "4 unchanged since the last run" in forced.stdout, forced.stdout


def test_grading_one_lesson_keeps_the_other_lessons_rows(batch):
    subs, out, _ = batch
    with (out / "grades.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["alice", "02_other", 4.0, 5.0, 0.0, "graded", "", ""])
    result = cli("autograde", str(subs), "--out", str(out), "--lesson", LESSON)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("alice", "02_other") in rows(out) and ("alice", LESSON) in rows(out)


def test_graded_feedback_never_states_an_expected_value():
    """Red team: "got -1, expected 18" on secret inputs let 17 resubmissions build a lookup table of answers."""
    from grader import key as answer_key
    from utils.checks import judge
    lesson = answer_key.load(nbformat.read(Path(trusted.__file__).parents[1] / "solutions" / "01_superposition_basics"
                                           / "01_superposition_basics.ipynb", as_version=4), Path(trusted.__file__).parents[1])
    exercise = next(e for e in lesson.exercises if e.name == "max_vectors_welch")
    inputs = answer_key.graded_inputs(lesson, exercise, "mallory")[0]
    expectation = answer_key.expectation(lesson, exercise, inputs)
    verdict = judge(lesson.checks.observe(exercise.name, lambda dim, eps: -1, inputs), expectation, reveal=False)
    assert not verdict.ok and "got -1" in verdict.message
    values = [str(v) for v in expectation["reference"].values() if len(str(v)) > 1]
    assert values and not any(re.search(rf"(?<![\w.]){re.escape(v)}(?![\w.])", verdict.message) for v in values)


def test_hostile_markdown_is_shown_as_text_and_the_lesson_text_is_the_released_one():
    """Red team: a 256 KB Markdown cell took 100 s to render in the grader's main thread."""
    lesson_source = source()
    nb = synthetic.make_submission(LESSON, "all")
    nb.cells[0].source = "[a](#" * 20_000  # the lesson's intro, edited
    nb.cells.append(nbformat.v4.new_markdown_cell("[b](#" * 20_000, metadata={feedback.COURSE_TEXT: True}))
    graded = feedback.feedback_notebook(feedback.graded_notebook(nb, lesson_source, {}), {}, "# Feedback")
    assert graded.cells[1].source.startswith("# A tiny lesson") and "[a](#" not in graded.cells[1].source
    assert graded.cells[-1].cell_type == "raw"


def test_the_workspace_is_registered_again_only_when_a_lesson_changed(tmp_path: Path, monkeypatch):
    """generate_assignment runs once; an unchanged run reuses it; a changed source or a lost gradebook redoes it."""
    import shutil

    from grader import workspace
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    monkeypatch.setenv("COURSE_ROOT", str(course))
    ws, log = tmp_path / "ws", tmp_path / "ws" / "logs" / f"generate-{LESSON}.log"
    released = ws / "release" / LESSON / f"{LESSON}.ipynb"
    workspace.prepare(ws, [LESSON], "code")
    first = log.stat().st_mtime_ns
    workspace.prepare(ws, [LESSON], "code")
    assert log.stat().st_mtime_ns == first, "nothing changed, so nothing is generated again"
    path = course / "solutions" / LESSON / f"{LESSON}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A new closing remark."))
    nbformat.write(nb, path)
    workspace.prepare(ws, [LESSON], "code")
    assert "A new closing remark." in released.read_text()
    again = log.stat().st_mtime_ns
    workspace.prepare(ws, [LESSON], "other code")
    assert log.stat().st_mtime_ns > again, "new grading code registers the lesson again"
    (ws / "gradebook.db").unlink()
    workspace.prepare(ws, [LESSON], "other code")
    assert workspace.registered(ws, LESSON)
    done, error = workspace.generate(ws, [LESSON, "99_unknown"], timeout=120)  # one process for both
    assert done == [LESSON] and "failed for 99_unknown" in error, error
