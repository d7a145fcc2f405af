"""The class report (grader.report): counts equal to the records', near-copied code flagged, offline page.

Records are generated here (no sandboxed grading): `generate_class` writes what autograde leaves in OUT
(grades.csv, results/, the graded notebooks in workspace/autograded/, feedback pages) for a class whose
every outcome it chose, so the report's counts can be checked against the truth.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, DevTools

from grader import autograde, report, similarity, trusted
from grader.autograde import Result, write_grades

FIXTURE = Path(__file__).parent / "fixtures" / "course"
STUB_BODY = "    # YOUR CODE HERE\n    raise NotImplementedError()"
APIS = ["sum", "mean", "norm", "abs", "clamp", "exp", "log", "sqrt", "flatten", "amax", "amin", "sort", "cumsum",
        "diagonal", "transpose", "unsqueeze", "squeeze", "softmax", "tanh", "sigmoid", "relu", "argmax", "std"]
OPS = ["+", "-", "*", "/", "@"]


def own_code(stub: str, rng: random.Random, lines: int = 8) -> str:
    """An exercise cell a student wrote independently: the stub's signature, then lines of their own."""
    body = [f"    a{k} = torch.{rng.choice(APIS)}(x, dim={rng.randint(0, 2)}) {rng.choice(OPS)} "
            f"x.{rng.choice(APIS)}().{rng.choice(APIS)}()" for k in range(lines)]
    return stub.replace(STUB_BODY, "\n".join(body) + f"\n    return a{lines - 1}")


def renamed_copy(code: str) -> str:
    """Someone else's cell with its variables renamed, a comment added and the layout changed."""
    return "# my solution\n" + re.sub(r"\ba(\d)\b", r"value_\1", code).replace(" = ", "  =  ")


def generate_class(out: Path, students: int, lessons: list[str], seed: int = 0) -> dict:
    """Write a graded class to OUT; returns the truth: outcomes, misconceptions, not graded, copies."""
    rng = random.Random(seed)
    infos = {lesson: report.exercise_infos(lesson, {}) for lesson in lessons}
    rows, truth = [], {"outcome": {}, "misconception": Counter(), "not_graded": set(), "copies": set()}
    for lesson in lessons:
        student_copy = nbformat.reads(nbformat.writes(nbformat.read(
            report.student_notebook(lesson), as_version=4)), as_version=4)
        written = {}
        for k in range(students):
            student = f"s{k:03d}"
            row = Result(student, lesson, 0.0, sum(i.points for i in infos[lesson]), 2.0, "graded")
            if k % 13 == 5:
                rows.append(autograde._with(row, "missing", "no submission"))
                truth["not_graded"].add((student, lesson, "missing"))
                continue
            if k % 17 == 7:
                rows.append(autograde._with(row, "invalid", "not a notebook: the file is not valid JSON"))
                truth["not_graded"].add((student, lesson, "invalid"))
                continue
            grades, code = [], {}
            for info in infos[lesson]:
                partly = ["partly passed"] if info.points >= 2 else []  # an exercise in parts: some points
                outcome = rng.choice(["passed", "passed", "failed", "not attempted", *partly])
                if outcome == "not attempted":
                    code[info.cell_id] = info.stub
                elif k % 11 == 3 and written:  # copies a classmate's cell, renaming its variables
                    source = rng.choice(sorted(written))
                    code[info.cell_id] = renamed_copy(written[source][info.cell_id])
                    truth["copies"].add((student, lesson, info.cell_id, source))
                else:
                    code[info.cell_id] = own_code(info.stub, rng)
                if outcome in ("failed", "partly passed"):
                    misconception = rng.choice([*info.declared, "other", "did_not_run"])
                    message = info.declared.get(misconception, f"{info.grade_id}: got {rng.random():.3f}")
                    truth["misconception"][(lesson, info.grade_id, misconception)] += 1
                elif outcome == "not attempted":
                    misconception, message = "not_implemented", "not implemented yet"
                else:
                    misconception, message = None, "right on every case"
                points = {"passed": info.points, "partly passed": info.points / 2}.get(outcome, 0.0)
                grades.append(trusted.CellGrade(info.grade_id, points, info.points, message, misconception))
                truth["outcome"][(student, lesson, info.grade_id)] = outcome
            row.score = sum(g.points for g in grades)
            if code and all(c != info.stub for c, info in zip(code.values(), infos[lesson])):
                written[student] = code
            rows.append(row)
            record = out / "results" / student / f"{lesson}.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"key": {}, "result": asdict(row), "grades": [asdict(g) for g in grades]}))
            for cell in student_copy.cells:
                if trusted.grade_id_of(cell) in code:
                    cell.source = code[trusted.grade_id_of(cell)]
            graded = out / "workspace" / "autograded" / student / lesson / f"{lesson}.ipynb"
            graded.parent.mkdir(parents=True, exist_ok=True)
            graded.write_text(nbformat.writes(student_copy))
            page = out / "feedback" / student / lesson / f"{lesson}.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(f"<html><body>feedback of {student}</body></html>")
    write_grades(out / "grades.csv", rows)
    return truth


@pytest.fixture
def course(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COURSE_ROOT", str(FIXTURE))
    return FIXTURE


@pytest.fixture
def built(course: Path, tmp_path: Path) -> tuple[dict, Path]:
    out = tmp_path / "out"
    truth = generate_class(out, 40, ["01_tiny"])
    report.write(out)
    return truth, out


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_report_counts_equal_the_records(built):
    truth, out = built
    outcomes = Counter((lesson, grade_id, outcome) for (_, lesson, grade_id), outcome in truth["outcome"].items())
    rows = read_csv(out / "report" / "exercises.csv")
    assert len(rows) == 2
    for row in rows:
        key = (row["lesson"], row["exercise"])
        assert int(row["passed"]) == outcomes[(*key, "passed")]
        assert int(row["partly_passed"]) == outcomes[(*key, "partly passed")]
        assert int(row["failed"]) == outcomes[(*key, "failed")]
        assert int(row["not_attempted"]) == outcomes[(*key, "not attempted")]
        assert int(row["attempted"]) == int(row["passed"]) + int(row["partly_passed"]) + int(row["failed"])
    assert outcomes[("01_tiny", "test_double", "partly passed")] > 0  # the class has each kind of outcome
    found = {(r["lesson"], r["exercise"], r["misconception"]): int(r["students"])
             for r in read_csv(out / "report" / "misconceptions.csv")}
    assert found == dict(truth["misconception"])
    counts = [int(r["students"]) for r in read_csv(out / "report" / "misconceptions.csv")]
    assert counts == sorted(counts, reverse=True)  # most frequent first
    not_graded = {(r["student_id"], r["lesson"], r["status"]) for r in read_csv(out / "report" / "not_graded.csv")}
    assert not_graded == truth["not_graded"] and not_graded
    declared = next(r for r in read_csv(out / "report" / "misconceptions.csv") if r["misconception"] == "added_two")
    assert declared["message"] == "double(x) multiplies by two; you added two."
    grades = read_csv(out / "grades.csv")  # no gradebook yet: every written answer is still to grade
    assert all(float(r["total"]) == float(r["score"]) and float(r["manual_pending"]) == (
        float(r["manual_max"]) if r["status"] == "graded" else 0.0) for r in grades) and len(grades) == 40


def test_copied_cells_with_renamed_variables_are_flagged_and_independent_ones_are_not(built):
    truth, out = built
    flagged = {(r["student_id"], r["lesson"], r["evidence"].split()[0], r["matched"])
               for r in read_csv(out / "report" / "flags.csv") if r["kind"] == "similar code"}
    copies = truth["copies"]
    assert copies and {(s, lesson, cell, source) for s, lesson, cell, source in copies} <= flagged
    pairs = {frozenset((s, m)) for s, _, _, m in flagged}
    assert pairs == {frozenset((s, source)) for s, _, _, source in copies}  # no honest pair among them


HONEST = {  # independent solutions of lesson 01's measure_interference, similar in approach
    "measure_interference": [
        '''    if W.ndim != 2 or features.shape[-1] != W.shape[1]:
        raise ValueError(f"W is {tuple(W.shape)} but features are {tuple(features.shape)}")
    gram = W.T @ W
    return features @ gram - features * torch.diagonal(gram)''',
        '''    n_hidden, n_features = W.shape
    if features.shape[-1] != n_features:
        raise ValueError("W does not fit the features: is it transposed?")
    total = features @ W.T @ W
    own = (W ** 2).sum(dim=0) * features
    return total - own''',
        '''    if features.shape[-1] != W.shape[-1]:
        raise ValueError("shape mismatch")
    G = W.T @ W
    G = G - torch.diag(torch.diag(G))
    return features @ G''',
        '''    if W.shape[1] != features.shape[-1]:
        raise ValueError(f"expected {W.shape[1]} features, got {features.shape[-1]}")
    norms = torch.linalg.norm(W, dim=0) ** 2
    recon = torch.matmul(torch.matmul(features, W.T), W)
    return recon - norms * features''',
        '''    if W.dim() != 2 or W.size(1) != features.size(-1):
        raise ValueError("W must be (n_hidden, n_features)")
    off = W.T @ W
    off.fill_diagonal_(0)
    return torch.einsum("...j,ji->...i", features, off)''',
    ],
    "generate_batch": [
        '''    S = torch.as_tensor(sparsity, dtype=torch.float32)
    if S.ndim == 1:
        S = S[:, None]
    S = S.expand(n_instances, n_features)
    shape = (batch_size, n_instances, n_features)
    values = torch.rand(shape, generator=generator)
    active = torch.rand(shape, generator=generator) >= S
    return values * active''',
        '''    s = torch.tensor(sparsity, dtype=torch.float32)
    if s.dim() == 1:
        s = s.unsqueeze(1)
    s = s.expand(n_instances, n_features)
    x = torch.rand(batch_size, n_instances, n_features, generator=generator)
    mask = torch.rand(batch_size, n_instances, n_features, generator=generator) < 1 - s
    return torch.where(mask, x, torch.zeros_like(x))''',
        '''    size = (batch_size, n_instances, n_features)
    probability = 1 - torch.as_tensor(sparsity).float().reshape(-1, 1).expand(n_instances, n_features)
    feats = torch.rand(size, generator=generator)
    keep = (torch.rand(size, generator=generator) < probability).float()
    return feats * keep''',
        '''    S = torch.as_tensor(sparsity, dtype=torch.float32)
    S = S.view(-1, 1) if S.ndim == 1 else S
    out = torch.rand((batch_size, n_instances, n_features), generator=generator)
    zero = torch.rand((batch_size, n_instances, n_features), generator=generator) < S
    out[zero] = 0.0
    return out''',
    ],
}
COPIES = {  # the first honest one, its variables renamed, comments and layout changed, a line added or split
    "measure_interference": '''    # check shapes first
    if W.ndim != 2 or features.shape[-1] != W.shape[1]:
        raise ValueError(
            f"W is {tuple(W.shape)} but features are {tuple(features.shape)}")

    overlaps = W.T @ W   # dot products between feature directions
    result = features @ overlaps - features * torch.diagonal(overlaps)
    return result''',
    "generate_batch": '''    shp = (batch_size, n_instances, n_features)
    sp = torch.as_tensor(sparsity, dtype=torch.float32)
    if sp.ndim == 1:
        sp = sp[:, None]   # one sparsity per instance
    sp = sp.expand(n_instances, n_features)

    vals = torch.rand(shp, generator=generator)
    on = torch.rand(shp, generator=generator) >= sp
    return vals * on''',
}
STUBS = {
    "measure_interference": 'def measure_interference(W: torch.Tensor, features: torch.Tensor) -> torch.Tensor:\n'
                            '    """Interference on each feature from the others."""\n' + STUB_BODY,
    "generate_batch": "def generate_batch(batch_size: int, n_instances: int, n_features: int, sparsity, "
                      'generator=None) -> torch.Tensor:\n    """0 with probability S, else uniform in [0, 1)."""\n'
                      + STUB_BODY,
}


@pytest.mark.parametrize("exercise", sorted(HONEST))
def test_the_threshold_separates_renamed_copies_from_honest_solutions(exercise: str):
    """The measurement behind similarity.THRESHOLD: every honest pair below it, the renamed copy above."""
    stub = STUBS[exercise]
    cells = [stub.replace(STUB_BODY, body) for body in HONEST[exercise]]
    copy = stub.replace(STUB_BODY, COPIES[exercise])
    honest = similarity.pairs_score(itertools.combinations(cells, 2), stub)
    copied = similarity.pairs_score([(cells[0], copy)], stub)[0]
    assert max(honest) <= 0.4 < similarity.THRESHOLD < 0.7 <= copied
    codes = {f"honest{k}": c for k, c in enumerate(cells)} | {"copier": copy}
    matches = {(m.student, m.other) for m in similarity.near_copies(codes, stub)}
    assert matches == {("copier", "honest0"), ("honest0", "copier")}
    assert [m.other for m in similarity.near_copies({"x": copy}, stub, reference=cells[0])] == [similarity.REFERENCE]


def test_the_prefix_filter_misses_no_pair_above_the_threshold():
    rng = random.Random(1)
    sets = [frozenset(rng.sample(range(60), rng.randint(40, 50))) for _ in range(40)]
    close = {(i, j) for i, j in itertools.combinations(range(len(sets)), 2)
             if similarity.jaccard(sets[i], sets[j]) >= similarity.THRESHOLD}
    assert close and close <= similarity._candidates(sets, similarity.THRESHOLD)


def test_flags_name_the_evidence_grading_left(course: Path):
    """Tampering and library answers from grading's own messages, links and identical notebooks from grades.csv."""
    student_copy = nbformat.read(FIXTURE / "notebooks" / "01_tiny" / "01_tiny.ipynb", as_version=4)
    tampered = nbformat.reads(nbformat.writes(student_copy), as_version=4)
    tampered.cells[1].source += "\nx = 1"  # a locked setup cell edited
    tampered.cells[3].metadata["nbgrader"]["points"] = 99
    reason = "; ".join(trusted.tampering(tampered, student_copy) + [
        "missing cells: test_sign (restore them from notebooks/; their points are lost)",
        "ex_double names the library answer utils.metrics.double", "ran past its time limit"])
    rows = [Result("ann", "01_tiny", 0, 3, 2, "graded", reason, "hard-linked (2 names for the same file); "
                   "identical notebook to bea"),
            Result("bea", "01_tiny", 0, 3, 2, "invalid",
                   "bea is a symbolic link (to /etc/passwd): links are not graded")]
    found = {(f.student, f.kind, f.evidence) for f in report.flags([report.Submission(r) for r in rows], {})}
    assert found == {
        ("ann", "tampering", "cell setup is locked but was edited (the original ran instead)"),
        ("ann", "tampering", "cell test_double: its points metadata was changed (ignored)"),
        ("ann", "tampering", "missing cells: test_sign (restore them from notebooks/; their points are lost)"),
        ("ann", "library answer", "ex_double names the library answer utils.metrics.double"),
        ("ann", "hard link", "hard-linked (2 names for the same file)"),
        ("ann", "identical notebook", "identical notebook to bea"),
        ("bea", "symbolic link", "bea is a symbolic link (to /etc/passwd): links are not graded"),
    }


def test_a_failing_report_cannot_fail_grading_or_lose_grades(course: Path, tmp_path: Path, monkeypatch, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for student in ("ann", "bea"):
        (subs / student / "01_tiny").mkdir(parents=True)  # folders without a notebook: missing, nothing runs
    monkeypatch.setattr(report, "build", lambda out: 1 / 0)
    monkeypatch.setattr(autograde.workspace, "prepare", lambda folder, lessons, *rest: folder)  # nbgrader: slow, unused here
    rows = autograde.autograde(subs, out, options=autograde.Options(sandboxed=False), progress=False)
    assert [r.status for r in rows] == ["missing", "missing"]
    assert len(read_csv(out / "grades.csv")) == 2 and not (out / "report.html").exists()
    assert "class report could not be written (ZeroDivisionError" in capsys.readouterr().out
    monkeypatch.undo()
    monkeypatch.setenv("COURSE_ROOT", str(FIXTURE))
    assert autograde.class_report(out) == out / "report.html"  # and a report of a class with no graded one


def test_the_declared_exercises_are_kept_for_the_next_report_and_read_again_when_the_code_changes(
        built, monkeypatch, tmp_path: Path):
    _, out = built
    (out / "workspace" / "generated").mkdir(parents=True, exist_ok=True)
    first = report.build(out)
    monkeypatch.setattr(trusted, "lesson_key", lambda source: 1 / 0)
    assert report.build(out).lessons == first.lessons  # from OUT/workspace/generated: the key is not loaded
    edited = tmp_path / "edited_key.py"  # the course's key (outside grader/ here) with a message changed
    edited.write_text(report.answer_key.key_path(report.nbformat.read(report.source_notebook("01_tiny"), 4),
                                                 report.course()).read_text() + "\n# a message changed\n")
    with monkeypatch.context() as m:
        m.setattr(report.answer_key, "key_path", lambda source, root: edited)
        with pytest.raises(ZeroDivisionError):
            report.build(out)
    monkeypatch.setattr(report, "grading_code_digest", lambda: "other grading code")
    with pytest.raises(ZeroDivisionError):
        report.build(out)


def test_report_escapes_what_came_from_submissions(course: Path, tmp_path: Path):
    out = tmp_path / "out"
    evil = '<script>alert(1)</script>'
    write_grades(out / "grades.csv", [Result("ann", "01_tiny", 0, 3, 2, "invalid", f"bad {evil}", f"note {evil}")])
    page = report.write(out).read_text()
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (make test installs it)")
def test_report_opens_offline_draws_every_figure_and_shows_the_records_counts(built, tmp_path: Path):
    truth, out = built
    moved = tmp_path / "moved"  # links are relative: the folder can be moved
    shutil.copytree(out, moved)
    page = moved / "report.html"
    with DevTools(tmp_path / "profile") as browser:
        browser.page("Network.enable")  # the network shut: any request the page makes fails, and is recorded
        browser.page("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                     uploadThroughput=-1)
        browser.page("Page.navigate", url=page.as_uri())
        browser.wait_for("Page.loadEventFired", timeout=120)
        drawn = browser.evaluate("""(async () => { const f = [...document.querySelectorAll('.plotly-graph-div')];
            const drawn = d => d.querySelectorAll('svg.main-svg g.trace path').length > 0;
            for (let t = 0; t < 200 && !f.every(drawn); t++) await new Promise(r => setTimeout(r, 100));
            return [f.length, f.filter(drawn).length]; })()""")
        shown = browser.evaluate("""[...document.querySelectorAll('tr[data-exercise]:not([data-misconception])')]
            .map(r => [r.dataset.exercise, ...['passed', 'partly-passed', 'failed', 'not-attempted']
            .map(k => +r.querySelector('td.n-' + k).textContent)])""")
        links = browser.evaluate("[...document.querySelectorAll('td.who a')].map(a => a.href)")
    requests = {e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"}
    assert {u for u in requests if not u.startswith(("file:", "data:", "blob:"))} == set()
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors[:3]
    assert drawn == [2, 2]
    outcomes = Counter((grade_id, outcome) for (_, _, grade_id), outcome in truth["outcome"].items())
    assert shown == [[g, *(outcomes[(g, o)] for o in ("passed", "partly passed", "failed", "not attempted"))]
                     for g in ("test_double", "test_sign")]
    assert links and all(Path(re.sub("^file://", "", link)).is_file() for link in links)
