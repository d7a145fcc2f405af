"""The grader CLI on a tiny fixture course: release, check, inspection of submissions, autograde, feedback."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from chromium import CHROMIUM, offline_visit

from grader import feedback, report, synthetic
from grader.__main__ import main
from grader.release import student_version
from grader.submission import InvalidSubmission, inspect

FIXTURE = Path(__file__).parent / "fixtures" / "course"
LESSON = "01_tiny"


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the fixture course, selected with COURSE_ROOT (in-process and for subprocesses)."""
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    monkeypatch.setenv("COURSE_ROOT", str(root))
    return root


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=600)


def source(course: Path) -> nbformat.NotebookNode:
    return nbformat.read(course / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)


def test_student_copy_has_no_solutions_and_no_hidden_tests(course: Path):
    text = student_version(source(course))
    assert "return 2 * x" not in text and "HIDDEN" not in text and "double(-7)" not in text
    assert "Rubric" not in text and "raise NotImplementedError()" in text
    assert 'checks.check(\\"double\\", double)' in text  # the visible check stays, written from the declaration


def test_check_names_stale_notebooks_and_outputs(course: Path):
    assert cli("check").returncode == 0
    nb = source(course)
    nb.cells[2].source = nb.cells[2].source.replace("Return 2 * x.", "Return twice x.")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nbformat.write(nb, course / "solutions" / LESSON / f"{LESSON}.ipynb")
    result = cli("check")
    assert result.returncode == 1
    assert "notebooks/01_tiny/01_tiny.ipynb is stale" in result.stderr
    assert "solutions/01_tiny/01_tiny.ipynb (has outputs" in result.stderr
    assert cli("release").returncode == 0
    result = cli("check")
    assert result.returncode == 1 and "stale" not in result.stderr  # only the outputs are left to clear


def test_check_names_a_lesson_without_a_recorded_reference_time(course: Path):
    (course / "key" / "limits.json").write_text("{}")
    result = cli("check")
    assert result.returncode == 1 and "01_tiny has no recorded reference time" in result.stderr, result.stderr


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2, 3]", "no list of cells"),
    (b"[" * 50_000 + b"]" * 50_000, "not valid JSON"),
    (json.dumps({"cells": [], "nbformat": 3, "nbformat_minor": 0, "metadata": {}}).encode(), "version 3"),
    (json.dumps({"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(),
     "not a valid notebook"),
])
def test_inspect_rejects_what_is_not_a_notebook(course: Path, tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "sub.ipynb"
    path.write_bytes(content)
    with pytest.raises(InvalidSubmission, match=message):
        inspect(path, source(course))


def test_inspect_accepts_a_bom_and_lists_missing_and_duplicated_cells(course: Path, tmp_path: Path):
    nb = synthetic.make_submission(LESSON, "all")
    test_double = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_double")
    nb.cells.remove(test_double)
    duplicate = copy.deepcopy(nb.cells[2])
    duplicate.id = "copy"
    nb.cells.append(duplicate)
    path = tmp_path / "sub.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + nbformat.writes(nb).encode())
    problems = inspect(path, source(course)).problems
    assert any("missing cells: test_double" in p for p in problems)
    assert any("duplicated cells" in p for p in problems)


def test_inspect_rejects_huge_files(course: Path, tmp_path: Path):
    path = tmp_path / "sub.ipynb"
    with path.open("wb") as f:
        f.truncate(100 * 2**20)
    with pytest.raises(InvalidSubmission, match="over the 20 MB limit"):
        inspect(path, source(course))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict], Path]:
    """One autograde batch over a class of fixture students; returns ({student: grades row}, OUT)."""
    tmp_path = tmp_path_factory.mktemp("graded")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("COURSE_ROOT", str(FIXTURE))
        return grade_a_class(tmp_path / "subs", tmp_path / "out")


def grade_a_class(subs: Path, out: Path) -> tuple[dict[str, dict], Path]:
    warn = "import sys, warnings\nwarnings.warn('a deprecation warning')\nprint('noise', file=sys.stderr)"
    synthetic.write_submission(synthetic.make_submission(LESSON, "all", prelude=warn), subs, "alice", LESSON)
    synthetic.write_submission(synthetic.make_submission(LESSON), subs, "bob", LESSON)
    synthetic.write_submission(synthetic.make_submission(LESSON, ["ex_double"]), subs, "dave", LESSON)
    (subs / "carol" / LESSON).mkdir(parents=True)
    (subs / "carol" / LESSON / f"{LESSON}.ipynb").write_text("{broken")
    (subs / "eve" / LESSON).mkdir(parents=True)
    result = cli("autograde", str(subs), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "5 submissions: 3 graded, 1 missing, 1 invalid" in result.stdout
    with (out / "grades.csv").open() as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    return rows, out


def test_autograde_scores_every_student_and_goes_on_after_broken_ones(graded):
    rows, out = graded
    assert {k: (float(r["score"]), float(r["max_score"]), r["status"]) for k, r in rows.items()} == {
        "alice": (3.0, 3.0, "graded"),   # full marks, although it wrote to stderr
        "bob": (0.0, 3.0, "graded"),     # the untouched student copy
        "dave": (2.0, 3.0, "graded"),    # exactly the points of the exercise solved
        "carol": (0.0, 3.0, "invalid"),
        "eve": (0.0, 3.0, "missing"),
    }
    assert "not valid JSON" in rows["carol"]["reason"]
    assert float(rows["alice"]["manual_max"]) == 2.0
    assert (out / "workspace" / "gradebook.db").exists()


def test_feedback_shows_scores_and_visible_checks_but_never_hidden_tests(graded):
    _, out = graded
    html = (out / "feedback" / "dave" / LESSON / f"{LESSON}.html").read_text()
    assert "2 / 3" in html and "0 / 1 points" in html
    assert "double: right on every case" in html and "not implemented yet" in html  # the judge's messages
    assert "HIDDEN" not in html
    assert not (out / "feedback" / "carol").exists()


def test_feedback_html_cannot_run_script_from_a_submission():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell('answer <script>alert("md")</script><img src=x onerror="alert(1)"> '
                                      "[link](javascript:alert(2))"),
        nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/html": "<script>alert('out')</script>", "application/javascript": "alert(3)",
                                  "text/plain": "plain"})]),
    ]
    html = feedback.render(feedback.feedback_notebook(nb, {}, "# Feedback"))
    body = html[html.index("<body"):]
    for payload in ("<script>alert", "onerror", "javascript:", "alert('out')", "alert(3)"):
        assert payload not in body
    assert '<h1 id="Feedback">' in body and "plain" in body


def test_a_run_with_nothing_changed_does_not_import_torch(graded, tmp_path: Path):
    """Importing torch would be most of such a run's cost (issue 17: a run with nothing changed under 3 s)."""
    _, graded_out = graded
    out = tmp_path / "out"
    shutil.copytree(graded_out, out)
    again = ("import sys\nfrom grader.__main__ import main\n"
             f"main(['autograde', {str(graded_out.parent / 'subs')!r}, '--out', {str(out)!r}])\n"
             "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    run = subprocess.run([sys.executable, "-c", again], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COURSE_ROOT": str(FIXTURE)})
    assert "(3 unchanged since the last run, not re-run)" in run.stdout, run.stdout + run.stderr[-2000:]
    assert "class report: " in run.stdout and run.stdout.strip().endswith("no torch"), run.stdout


@pytest.mark.parametrize("process", ["main(['--help'])", "print(grade(None, True).error)"], ids=["cli", "worker"])
def test_grading_processes_exit_without_the_last_garbage_collection(process: str):
    """The CLI and a grading worker (from its first submission on, even one that fails to build) skip the
    interpreter's final collection of every object: 0.2-0.3 s of each exit once torch is imported (issue 17)."""
    code = ("import atexit, gc\n"
            "atexit.register(lambda: print('frozen' if gc.get_freeze_count() else 'collected'))\n"
            "from grader.__main__ import main\nfrom grader.autograde import grade\n" + process)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip().endswith("frozen"), run.stdout + run.stderr[-2000:]
    assert "collected" in subprocess.run([sys.executable, "-c", code.split("from grader")[0]], capture_output=True,
                                         text=True, timeout=60).stdout  # the probe itself tells the two apart


def test_feedback_pages_are_nbconvert_pages_without_its_second_parse():
    """FeedbackExporter skips HTMLExporter's BeautifulSoup pass and adds its tabindex and alt attributes itself:
    parsed, its page is HTMLExporter's, for a lesson's cells and every kind of output a page keeps."""
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    nb = nbformat.read(FIXTURE / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    nb.cells += [
        nbformat.v4.new_code_cell("print(1)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="one\n"),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
            nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"])]),
        nbformat.v4.new_markdown_cell('<img src="data:image/png;base64,AAAA"> <img alt="kept" src="data:image/png;'
                                      'base64,AAAA"> <div class="jp-OutputArea-output">from markdown</div>')]
    page = feedback.feedback_notebook(nb, {}, "# Feedback")
    nbconvert_page = HTMLExporter(sanitize_html=True, filters={"clean_html": feedback.clean_html}).from_notebook_node(page)[0]
    ours = feedback.render(page)
    for attribute in ('tabindex="0"', 'alt="No description has been provided for this image"'):
        assert ours.count(attribute) == nbconvert_page.count(attribute) > 0, attribute
    assert str(BeautifulSoup(ours, "html.parser")) == str(BeautifulSoup(
        feedback.offline.without_remote_loads(nbconvert_page), "html.parser"))


def test_a_grading_process_makes_the_lessons_view_again_when_its_folder_went(tmp_path: Path):
    """A Dask worker keeps the views it made, and can outlive a run whose OUT was deleted: it must never hand a
    sandbox a folder that is gone (bwrap would fail, or without a sandbox the answers would not be withheld)."""
    from types import SimpleNamespace

    from grader import autograde
    from grader.lessons import source_notebook

    lesson = "01_superposition_basics"
    task = SimpleNamespace(source=nbformat.read(source_notebook(lesson), as_version=4), views=tmp_path / "views",
                           key={"lesson": "its fingerprint", "code": "the code digest"})
    view = autograde.utils_view(task)
    assert view is not None and (Path(view) / "metrics.py").is_file()
    assert autograde.utils_view(task) == view  # made once
    shutil.rmtree(tmp_path / "views")
    assert autograde.utils_view(task) == view and (Path(view) / "metrics.py").is_file()


def test_a_withheld_class_withholds_its_static_methods_too(tmp_path: Path):
    """TopKSparseAutoencoder.top_k answers lesson 08's topk_activation: in the view it raises WithheldAnswer, as the
    class itself does, instead of being missing (an AttributeError would be judged as just another mistake)."""
    from grader.view import withheld_view

    view = withheld_view({"utils.sae.TopKSparseAutoencoder": "topk_activation"}, tmp_path)
    probe = ("import sys, torch\n"
             f"sys.path.insert(0, {str(view.parent)!r})\n"
             "from utils.sae import TopKSparseAutoencoder, SparseAutoencoder\n"
             "from utils.withheld import WithheldAnswer\n"
             "for call in (lambda: TopKSparseAutoencoder.top_k(torch.ones(2, 3), 1),\n"
             "             lambda: TopKSparseAutoencoder(3, 4, k=1)):\n"
             "    try:\n"
             "        call()\n"
             "    except WithheldAnswer:\n"
             "        print('withheld')\n"
             "print(type(SparseAutoencoder(3, 4)).__name__)\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.stdout.split() == ["withheld", "withheld", "SparseAutoencoder"], run.stderr[-2000:]


def test_solutions_command_runs_every_solution_and_builds_pages(course: Path, tmp_path: Path):
    result = cli("solutions", "--html", str(tmp_path / "site"))
    assert result.returncode == 0, result.stdout + result.stderr
    page = (tmp_path / "site" / f"{LESSON}.html").read_text()
    assert "Exercise (<code>ex_double</code>)" in page and "✔ double: right on every case" in page
    assert f'href="{LESSON}.html"' in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (make test installs it)")
def test_feedback_opens_offline_sends_no_request_and_typesets_maths(graded, tmp_path: Path):
    """Opened in Chromium with the network shut, a feedback page requests nothing and shows its formulas as MathML."""
    _, out = graded
    page = out / "feedback" / "dave" / LESSON / f"{LESSON}.html"
    requests, dom = offline_visit(page, tmp_path)
    assert requests == set()
    assert "<math" in dom and "$d(x)" not in dom and "Content-Security-Policy" in page.read_text()
    control = tmp_path / "control.html"  # the measurement can fail: a page with a remote image is caught
    control.write_text('<html><body><img src="http://tracker.example/p.png"></body></html>')
    assert offline_visit(control, tmp_path)[0] == {"http://tracker.example/p.png"}


def test_feedback_keeps_no_remote_image_link_or_script():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell('<img src="http://tracker.example/p.png"> [me](https://x.example) '
                                              '<link rel="stylesheet" href="//cdn.example/s.css">')]
    page = feedback.render(feedback.feedback_notebook(nb, {}, "# Feedback"))
    assert not re.search(r"tracker\.example|x\.example|cdn\.example", page) and "<script" not in page


def test_formgrader_shows_each_checks_message_and_lists_missing_and_invalid_submissions(graded):
    """The autograded notebooks carry the judge's verdicts as outputs; the unreadable and absent ones are zeros."""
    _, out = graded
    ws = out / "workspace"
    graded_nb = nbformat.read(ws / "autograded" / "dave" / LESSON / f"{LESSON}.ipynb", as_version=4)
    outputs = {c.metadata["nbgrader"]["grade_id"]: c.outputs for c in graded_nb.cells
               if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}
    assert outputs["test_double"][0]["text"].startswith("✔ 2 / 2 points: double: right on every case")
    assert outputs["test_sign"][0]["output_type"] == "error" and "0 / 1 points" in outputs["test_sign"][0]["evalue"]
    assert "not implemented yet" in outputs["test_sign"][0]["evalue"]
    with Gradebook(f"sqlite:///{ws / 'gradebook.db'}") as gradebook:
        for student, reason in (("carol", "not valid JSON"), ("eve", "no submission")):
            notebook = gradebook.find_submission_notebook(LESSON, LESSON, student)
            assert notebook.score == 0 and not notebook.needs_manual_grade
            assert all(reason in c.comment for c in notebook.comments) and notebook.comments
        assert gradebook.find_submission(LESSON, "alice").score == 3.0
    placeholder = (ws / "autograded" / "eve" / LESSON / f"{LESSON}.ipynb").read_text()
    assert "Not graded (missing): no submission" in placeholder
    api = NbGraderAPI(CourseDirectory(root=str(ws), course_id="superposition"))  # behind formgrader's pages
    assert api.get_assignment(LESSON)["num_submissions"] == 3  # the graded ones; carol's file was unreadable


def test_manual_grades_reach_grades_csv_and_the_exports_without_regrading(graded, tmp_path: Path, monkeypatch, capsys):
    _, graded_out = graded
    monkeypatch.setenv("COURSE_ROOT", str(FIXTURE))
    out = tmp_path / "out"
    shutil.copytree(graded_out, out)
    records = {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}
    with Gradebook(f"sqlite:///{out / 'workspace' / 'gradebook.db'}") as gradebook:  # what formgrader stores
        written = gradebook.find_grade("written_why", LESSON, LESSON, "alice")
        written.manual_score, written.needs_manual_grade = 1.5, False
        override = gradebook.find_grade("test_sign", LESSON, LESSON, "dave")
        override.manual_score = 0.5  # half a point for dave's sign, given by hand
        # eve's written answer was graded by hand before her notebook went missing: it no longer counts
        gradebook.find_grade("written_why", LESSON, LESSON, "eve").manual_score = 2.0
        gradebook.db.commit()
    report.write(out)  # what `python -m grader report OUT` runs
    with (out / "grades.csv").open() as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    final = {s: tuple(float(rows[s][k]) for k in ("score", "manual_score", "manual_pending", "adjustment", "total"))
             for s in rows}
    assert final == {"alice": (3.0, 1.5, 0.0, 0.0, 4.5), "bob": (0.0, 0.0, 2.0, 0.0, 0.0),
                     "dave": (2.0, 0.0, 2.0, 0.5, 2.5), "carol": (0.0, 0.0, 0.0, 0.0, 0.0),
                     "eve": (0.0, 0.0, 0.0, 0.0, 0.0)}
    assert {float(r["total_max"]) for r in rows.values()} == {5.0}
    assert records == {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}  # nothing regraded

    assert main(["export", str(out), "--format", "canvas"]) == 0
    assert "2 submissions still have written answers to grade" in capsys.readouterr().err
    with (out / "export-canvas.csv").open() as f:
        canvas = list(csv.reader(f))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", LESSON]
    assert canvas[1] == ["    Points Possible", "", "", "", "", "5"]
    assert canvas[2:] == [[s, "", s, "", "", t] for s, t in
                          (("alice", "4.5"), ("bob", "0"), ("carol", "0"), ("dave", "2.5"), ("eve", "0"))]
    assert main(["export", str(out), "--format", "wide", "--output", str(tmp_path / "wide.csv")]) == 0
    with (tmp_path / "wide.csv").open() as f:
        wide = list(csv.reader(f))
    assert wide[:3] == [["student_id", LESSON, "total"], ["points_possible", "5", "5"], ["alice", "4.5", "4.5"]]
