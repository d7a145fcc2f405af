"""`python -m grader report OUT`: what the class got right and wrong, for the instructor (also run by autograde).

Reads only what grading left in OUT: grades.csv (one row per student and lesson, whatever happened),
OUT/results/<student>/<lesson>.json (each test cell's points and the misconception its judge named)
and the graded notebooks in OUT/workspace/autograded/ (the exercise code, for "attempted" and the
similarity check); the lessons' answer keys give each misconception's declared message. Writes
OUT/report.html (one page, works offline: plotly.js inlined once, nothing loaded from outside) and
OUT/report/*.csv:
  - exercises.csv: per lesson and exercise, graded submissions, attempted, passed, partly passed, failed, not
    attempted;
  - outcomes.csv: one row per student, lesson and exercise (the item table the others are counted from);
  - misconceptions.csv: per exercise, each misconception its failures named, most frequent first;
  - scores.csv: per student and lesson, automatic points, manual ones from the gradebook, what is left to grade
    by hand, and the total (the same as grades.csv, which `write` also updates: see grader.gradebook);
  - flags.csv: evidence for a person to look at (flags never change a score);
  - not_graded.csv: missing, invalid and failed submissions, by student.

Definitions. A student *attempted* an exercise when the exercise cell's code differs from the student
copy's stub (comments and layout aside), or when the judge ran an answer that no longer raises the stub's
NotImplementedError (the function may be written in an added cell). Of the attempts, *passed* got the
test cell's full points, *partly passed* some of them (an exercise declared in parts), *failed* none; every
attempt short of full points is counted under the misconception its judge named (a declared id, or "other").
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat

from grader import gradebook, offline, similarity, trusted
from grader import key as answer_key
from grader.autograde import FINAL_COLUMNS, Result, _write_record, grading_code_digest, read_grades, write_grades
from grader.feedback import printable
from grader.lessons import course, lessons as course_lessons, source_notebook, student_notebook
from grader.synthetic import without_markers

# Misconception ids the grader itself gives (utils.checks.judge and grader.trusted), beside those declared.
BUILT_IN = {
    "not_implemented": "the function still raises NotImplementedError",
    "did_not_run": "the cell raised an error, or the notebook stopped before the check",
    "library_answer": "called the course library's own answer, which is withheld while the exercise is graded",
    "forged_results": "more than one result was reported: the submission wrote records of its own",
    "other": "no known misconception matched",
}
EXAMPLES = 3  # example messages shown for "other" and for the built-in ids
# Evidence in grades.csv's reason (grader.trusted.tampering, grader.submission.inspect, reached_for_answers).
REASON_FLAGS = [
    ("tampering", re.compile(r"an added cell \([^;]{0,100}?\) claims to be graded[^;]*?\(ignored\)"
                             r"|cell [^;]{1,100}?: its [a-z, ]+ metadata was changed \(ignored\)"
                             r"|cell [^;]{1,100}? is locked but was edited \(the original ran instead\)"
                             r"|cell [^;]{1,100}? changed from \w+ to \w+"
                             r"|missing cells: [^;]*?\(restore them from notebooks/; their points are lost\)"
                             r"|duplicated cells: [^;]*"
                             r"|cell [^;]{1,100}? had nbgrader (?:metadata|flags or points) of the wrong type"
                             r" \(ignored\)")),
    ("library answer", re.compile(r"(?:added cell \d+|[^;\s]{1,100}) names the library answer [\w.]+"
                                  r"|called the withheld library answer [\w.]+")),
    ("symbolic link", re.compile(r"[^;]{0,300}? is a symbolic link \(to [^;]{0,300}\): links are not graded")),
]
FLAG_PREFIXES = [("identical notebook", "identical notebook to "), ("hard link", "hard-linked")]
SCRIPTS = "'unsafe-inline'"  # the page's own inline plotly.js and figures; nothing from elsewhere
# (column, label, colour) of each outcome of an exercise, in the order the tables and the figure show them
OUTCOMES = (("passed", "passed", "#2e7d32"), ("partly_passed", "partly passed", "#f9a825"),
            ("failed", "failed", "#c62828"), ("not_attempted", "not attempted", "#9e9e9e"))
SHORT_OF_FULL_POINTS = ("partly passed", "failed")


@dataclass
class ExerciseInfo:
    """One autograded exercise as the lesson declares it (or as far as the records tell, without the lesson)."""

    grade_id: str  # the test cell, e.g. test_measure_interference
    cell_id: str  # the cell the student writes, e.g. ex_measure_interference
    points: float
    stub: str | None = None  # the student copy's cell
    reference: str | None = None  # the reference solution's cell, markers removed
    declared: dict[str, str] = field(default_factory=dict)  # misconception id -> its declared message


@dataclass
class Submission:
    """One student's lesson: the grades.csv row, the test cells' grades, the exercise code, the feedback page."""

    row: Result
    grades: dict[str, trusted.CellGrade] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)  # exercise cell grade_id -> source
    feedback: str | None = None  # link relative to OUT
    manual: gradebook.ManualGrade | None = None  # what formgrader holds (None: not in the gradebook)

    @property
    def final(self) -> dict[str, float]:
        """Manual points, what is left to grade by hand, and the total (grades.csv's last columns)."""
        return gradebook.final_columns(self.row, self.manual)


@dataclass
class Outcome:
    student: str
    lesson: str
    grade_id: str
    outcome: str  # a label of OUTCOMES
    points: float
    max_points: float
    misconception: str | None
    message: str


@dataclass
class Flag:
    student: str
    lesson: str
    kind: str
    evidence: str
    matched: str = ""  # for similar code: the other student, or similarity.REFERENCE
    similarity: float | None = None
    code: str = ""
    matched_code: str = ""


@dataclass
class Report:
    lessons: dict[str, list[ExerciseInfo]]
    submissions: list[Submission]
    outcomes: list[Outcome]
    flags: list[Flag]

    def of(self, lesson: str) -> list[Submission]:
        return [s for s in self.submissions if s.row.lesson == lesson]


# --- reading OUT ---------------------------------------------------------------------------------

def exercise_infos(lesson: str, seen: dict[str, float], out: Path | None = None) -> list[ExerciseInfo]:
    """The lesson's autograded exercises from its source, student copy and key; from the records (`seen`:
    grade_id -> max points) when the lesson is not in this course."""
    if lesson not in course_lessons():
        return [ExerciseInfo(g, "ex_" + g.removeprefix("test_"), p) for g, p in seen.items()]
    source = nbformat.read(source_notebook(lesson), as_version=4)
    stubs = {trusted.grade_id_of(c): c.source for c in nbformat.read(student_notebook(lesson), as_version=4).cells
             if c.cell_type == "code" and trusted.nbgrader_meta(c).get("solution")}
    references = {trusted.grade_id_of(c): without_markers(c.source) for c in source.cells
                  if c.cell_type == "code" and trusted.nbgrader_meta(c).get("solution")}
    declared = declared_exercises(lesson, source, out / "workspace" if out is not None else None)
    infos = []
    for cell in source.cells:
        meta = trusted.nbgrader_meta(cell)
        if not (meta.get("grade") and cell.cell_type == "code"):
            continue
        grade_id = trusted.grade_id_of(cell)
        cell_id, wrong = declared.get(grade_id, ("ex_" + grade_id.removeprefix("test_"), {}))
        infos.append(ExerciseInfo(grade_id, cell_id, float(meta.get("points", 0)), stubs.get(cell_id),
                                  references.get(cell_id), wrong))
    return infos


def declared_exercises(lesson: str, source: nbformat.NotebookNode, workspace: Path | None) -> dict[str, list]:
    """grade_id -> [its exercise cell's id, {misconception id: message}], as the lesson's answer key declares them.

    Kept in OUT/workspace/generated/<lesson>.exercises.json under the digest of the grading code, the lesson
    source and its key (registering a lesson writes it: grader.workspace): loading a key imports torch and the
    lesson's libraries, most of a run that graded nothing (1-1.5 s), and which the grading process of a run on
    Dask workers otherwise never needs.
    """
    path = answer_key.key_path(source, course())  # a course's key may live outside grader/ (COURSE_ROOT)
    digest = hashlib.sha256(f"{grading_code_digest()}\0{nbformat.writes(source)}".encode()
                            + (path.read_bytes() if path else b"")).hexdigest()
    saved = workspace / "generated" / f"{lesson}.exercises.json" if workspace is not None else None
    try:
        record = json.loads(saved.read_text()) if saved else {}
        if record.get("digest") == digest:
            return record["exercises"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass  # missing, unreadable or from other code: made again from the key
    key = trusted.lesson_key(source)
    declared = {e.grade_id: [e.cell_id, {w.id: w.message for w in e.wrong}] for e in (key.exercises if key else ())}
    if saved is not None and saved.parent.is_dir():
        try:
            _write_record(saved, {"digest": digest, "exercises": declared})
        except OSError:
            pass  # kept for the next report only; this one has what it needs
    return declared


def exercise_code(notebook: Path) -> dict[str, str]:
    """grade_id -> source of each solution code cell of a graded notebook (empty when there is none)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8", errors="replace")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return {}
    code = {}
    for cell in cells if isinstance(cells, list) else ():
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and meta.get("solution") and cell.get("cell_type") == "code":
            text = cell.get("source", "")
            code.setdefault(str(meta.get("grade_id")), "".join(text) if isinstance(text, list) else str(text))
    return code


def read_submissions(out: Path) -> list[Submission]:
    rows = read_grades(out / "grades.csv")
    if not rows and not (out / "grades.csv").is_file():
        raise SystemExit(f"{out} has no grades.csv: run `python -m grader autograde SUBMISSIONS --out {out}` first")
    manual = gradebook.read_manual(out / "workspace")
    found = []
    for row in rows:
        sub = Submission(row, manual=manual.get((row.student_id, row.lesson)))
        if row.status == "graded":
            try:
                record = json.loads((out / "results" / row.student_id / f"{row.lesson}.json").read_text())
                sub.grades = {g["grade_id"]: trusted.CellGrade(**g) for g in record.get("grades", [])}
            except (OSError, ValueError, TypeError, KeyError):
                pass  # a graded row without its record: counted as graded, with no exercise outcomes
            sub.code = exercise_code(out / "workspace" / "autograded" / row.student_id / row.lesson
                                     / f"{row.lesson}.ipynb")
            page = Path("feedback") / row.student_id / row.lesson / f"{row.lesson}.html"
            sub.feedback = page.as_posix() if (out / page).is_file() else None
        found.append(sub)
    return found


# --- counting ------------------------------------------------------------------------------------

def attempted(code: str | None, stub: str | None) -> bool | None:
    """Whether the exercise cell differs from the stub, comments and layout aside (None: cannot tell)."""
    if code is None or stub is None:
        return None
    return code != stub and similarity.tokens(code) != similarity.tokens(stub)


def outcomes(submissions: Iterable[Submission], infos: dict[str, list[ExerciseInfo]]) -> list[Outcome]:
    found = []
    for sub in submissions:
        if sub.row.status != "graded" or not sub.grades:
            continue
        for info in infos[sub.row.lesson]:
            grade = sub.grades.get(info.grade_id)
            if grade is None:
                continue
            passed = grade.points >= grade.max_points
            # a changed cell, or an answer the judge ran (it may live in a cell the student added)
            tried = bool(attempted(sub.code.get(info.cell_id), info.stub)) or grade.misconception != "not_implemented"
            outcome = ("passed" if passed else "partly passed" if grade.points > 0 else "failed" if tried
                       else "not attempted")
            found.append(Outcome(sub.row.student_id, sub.row.lesson, info.grade_id, outcome, grade.points,
                                 grade.max_points, None if passed else grade.misconception or "other", grade.message))
    return found


@dataclass
class Misconception:
    lesson: str
    grade_id: str
    id: str
    message: str
    students: list[str]
    examples: list[str]


def misconceptions(report: Report, lesson: str) -> list[Misconception]:
    """Every misconception the lesson's failures named, most frequent first."""
    infos = {i.grade_id: i for i in report.lessons[lesson]}
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in report.outcomes:
        if o.lesson == lesson and o.outcome in SHORT_OF_FULL_POINTS:
            groups.setdefault((o.grade_id, o.misconception), []).append(o)
    found = []
    for (grade_id, mid), hits in groups.items():
        declared = infos[grade_id].declared.get(mid) if grade_id in infos else None
        examples = [m for m, _ in Counter(o.message for o in hits).most_common(EXAMPLES)] if declared is None else []
        found.append(Misconception(lesson, grade_id, mid, declared or BUILT_IN.get(mid, "not declared in the key"),
                                   sorted(o.student for o in hits), examples))
    order = [i.grade_id for i in report.lessons[lesson]]
    return sorted(found, key=lambda m: (-len(m.students), order.index(m.grade_id) if m.grade_id in order else 0, m.id))


def exercise_counts(report: Report, lesson: str) -> list[dict]:
    rows = []
    for info in report.lessons[lesson]:
        mine = [o for o in report.outcomes if o.lesson == lesson and o.grade_id == info.grade_id]
        counts = Counter(o.outcome for o in mine)
        rows.append({"lesson": lesson, "exercise": info.grade_id, "max_points": info.points, "graded": len(mine),
                     "attempted": len(mine) - counts["not attempted"],
                     **{column: counts[label] for column, label, _ in OUTCOMES},
                     "mean_points": round(sum(o.points for o in mine) / len(mine), 3) if mine else ""})
    return rows


def flags(submissions: list[Submission], infos: dict[str, list[ExerciseInfo]]) -> list[Flag]:
    """What grading noticed (grades.csv's reason and flags, the judge's forged_results) and near-copied code."""
    found = []
    for sub in submissions:
        row = sub.row
        for kind, pattern in REASON_FLAGS:
            found += [Flag(row.student_id, row.lesson, kind, m.group(0)) for m in pattern.finditer(row.reason)]
        for part in filter(None, (p.strip() for p in row.flags.split("; "))):
            kind = next((k for k, prefix in FLAG_PREFIXES if part.startswith(prefix)), "other")
            found.append(Flag(row.student_id, row.lesson, kind, part))
        for grade in sub.grades.values():
            if grade.misconception == "forged_results":
                found.append(Flag(row.student_id, row.lesson, "tampering", f"{grade.grade_id}: {grade.message}"))
    for lesson, exercises in infos.items():
        subs = {s.row.student_id: s for s in submissions if s.row.lesson == lesson and s.code}
        for info in exercises:
            codes = {student: s.code[info.cell_id] for student, s in subs.items() if info.cell_id in s.code}
            for match in similarity.near_copies(codes, info.stub or "", info.reference):
                other = info.reference if match.other == similarity.REFERENCE else subs[match.other].code[info.cell_id]
                more = f" (and {match.also} more students)" if match.also else ""
                whose = "the reference solution" if match.other == similarity.REFERENCE else f"{match.other}'s"
                found.append(Flag(match.student, lesson, "similar code",
                                  f"{info.cell_id} is {100 * match.similarity:.0f}% similar to {whose}{more}",
                                  match.other, match.similarity,
                                  codes[match.student], other or ""))
    return sorted(found, key=lambda f: (f.student, f.lesson, f.kind, f.evidence))


def build(out: Path) -> Report:
    submissions = read_submissions(out)
    seen: dict[str, dict[str, float]] = {}
    for sub in submissions:
        lesson = seen.setdefault(sub.row.lesson, {})
        for g in sub.grades.values():
            lesson.setdefault(g.grade_id, g.max_points)
    order = {name: k for k, name in enumerate(course_lessons())}
    names = sorted(seen, key=lambda n: (order.get(n, len(order)), n))
    infos = {lesson: exercise_infos(lesson, seen[lesson], out) for lesson in names}
    return Report(infos, submissions, outcomes(submissions, infos), flags(submissions, infos))


# --- writing -------------------------------------------------------------------------------------

def safe_cell(value) -> object:
    """A CSV value that a spreadsheet shows as text: no formula from a submission's text runs when opened."""
    if isinstance(value, str):
        value = printable(value)
        if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
            return "'" + value
    return value


def _write_csv(path: Path, header: list[str], rows: Iterable[Iterable]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([safe_cell(v) for v in row] for row in rows)
    os.replace(tmp, path)


def write_csvs(report: Report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []

    def table(name: str, header: list[str], rows: Iterable[Iterable]) -> None:
        paths.append(folder / name)
        _write_csv(folder / name, header, rows)

    counts = [r for lesson in report.lessons for r in exercise_counts(report, lesson)]
    header = ["lesson", "exercise", "max_points", "graded", "attempted", *(column for column, _, _ in OUTCOMES),
              "mean_points"]
    table("exercises.csv", header, ([r[h] for h in header] for r in counts))
    table("outcomes.csv", ["student_id", "lesson", "exercise", "outcome", "points", "max_points", "misconception",
                           "message"],
          ([o.student, o.lesson, o.grade_id, o.outcome, o.points, o.max_points, o.misconception or "", o.message]
           for o in report.outcomes))
    table("misconceptions.csv", ["lesson", "exercise", "misconception", "message", "students", "student_ids",
                                 "examples"],
          ([m.lesson, m.grade_id, m.id, m.message, len(m.students), " ".join(m.students), " | ".join(m.examples)]
           for lesson in report.lessons for m in misconceptions(report, lesson)))
    table("scores.csv", ["student_id", "lesson", "status", "auto_score", "auto_max", "manual_max", *FINAL_COLUMNS],
          ([s.row.student_id, s.row.lesson, s.row.status, s.row.score, s.row.max_score, s.row.manual_max,
            *s.final.values()] for s in report.submissions))
    table("flags.csv", ["student_id", "lesson", "kind", "evidence", "matched", "similarity"],
          ([f.student, f.lesson, f.kind, f.evidence, f.matched, "" if f.similarity is None else round(f.similarity, 3)]
           for f in report.flags))
    table("not_graded.csv", ["student_id", "lesson", "status", "reason"],
          ([s.row.student_id, s.row.lesson, s.row.status, s.row.reason] for s in not_graded(report)))
    return paths


def not_graded(report: Report) -> list[Submission]:
    return sorted((s for s in report.submissions if s.row.status != "graded"),
                  key=lambda s: (s.row.student_id, s.row.lesson))


def esc(value: object) -> str:
    return html.escape(printable(str(value)), quote=True)


def _link(student: str, target: str | None) -> str:
    """A student's name, linked (relative to OUT) to their feedback page when there is one."""
    if target is None:
        return esc(student)
    return f'<a href="{esc(quote(target))}">{esc(student)}</a>'


def _figures(report: Report, lesson: str) -> list[str]:
    """The lesson's score histogram and its outcomes per exercise, as plotly divs (plotly.js comes once, in <head>)."""
    import plotly.graph_objects as go

    graded = [s for s in report.of(lesson) if s.row.status == "graded"]
    scores = [s.row.score for s in graded]
    top = max([s.row.max_score for s in graded] + [1.0])
    step = 1.0 if all(float(x).is_integer() for x in scores) else 0.5
    histogram = go.Figure(go.Histogram(x=scores, xbins={"start": -step / 2, "end": top + step / 2, "size": step},
                                       marker_color="#1565c0",
                                       hovertemplate="%{x} points: %{y} students<extra></extra>"))
    histogram.update_layout(title=f"{lesson}: automatic score of the {len(graded)} graded submissions",
                            xaxis={"title": f"automatic score (points, of {top:g})",
                                   "range": [-step / 2, top + step / 2]},
                            yaxis={"title": "students"}, height=320, margin={"t": 50, "b": 50}, bargap=0.05)
    counts = exercise_counts(report, lesson)
    names = [c["exercise"].removeprefix("test_") for c in counts][::-1]
    bars = go.Figure([go.Bar(y=names, x=[c[column] for c in counts][::-1], name=label, orientation="h",
                             marker_color=colour, hovertemplate=f"%{{y}}: %{{x}} {label}<extra></extra>")
                      for column, label, colour in OUTCOMES])
    bars.update_layout(title=f"{lesson}: outcome per exercise (students)", barmode="stack",
                       xaxis={"title": "students"}, height=120 + 40 * len(names), margin={"t": 50, "b": 50, "l": 200},
                       legend={"title": "colour: outcome", "orientation": "h", "traceorder": "normal",
                               "y": -0.25 if len(names) > 2 else -0.6})
    config = {"displaylogo": False, "responsive": True}
    return [f.to_html(full_html=False, include_plotlyjs=False, config=config) for f in (histogram, bars)]


def _lesson_section(report: Report, lesson: str) -> str:
    subs = report.of(lesson)
    graded = [s for s in subs if s.row.status == "graded"]
    mean = sum(s.row.score / s.row.max_score for s in graded if s.row.max_score) / max(1, len(graded))
    links = {s.row.student_id: s.feedback for s in subs}
    rows = "".join(
        f'<tr data-lesson="{esc(lesson)}" data-exercise="{esc(c["exercise"])}">'
        f'<td><code>{esc(c["exercise"])}</code></td><td>{c["max_points"]:g}</td>'
        f'<td class="n-graded">{c["graded"]}</td><td class="n-attempted">{c["attempted"]}</td>'
        + "".join(f'<td class="n-{column.replace("_", "-")}">{c[column]}</td>' for column, _, _ in OUTCOMES)
        + f'<td>{c["mean_points"]}</td></tr>'
        for c in exercise_counts(report, lesson))
    found = misconceptions(report, lesson)
    most = max([len(m.students) for m in found] + [1])
    mis = "".join(
        f'<tr data-lesson="{esc(lesson)}" data-exercise="{esc(m.grade_id)}" data-misconception="{esc(m.id)}">'
        f'<td><code>{esc(m.grade_id.removeprefix("test_"))}</code></td><td><code>{esc(m.id)}</code></td>'
        f'<td>{esc(m.message)}' + ("".join(f'<div class="example">e.g. {esc(x[:300])}</div>' for x in m.examples))
        + f'</td><td class="n-students">{len(m.students)}</td>'
        f'<td class="bar"><span style="width:{100 * len(m.students) / most:.0f}%"></span></td>'
        f'<td class="who">{", ".join(_link(s, links.get(s)) for s in m.students)}</td></tr>'
        for m in found)
    counts = Counter(s.row.status for s in subs)
    status = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return (f'<section id="{esc(lesson)}"><h2>{esc(lesson)}</h2>'
            f"<p>{len(subs)} students: {esc(status)}; mean automatic score of the graded ones {100 * mean:.0f}%.</p>"
            "<table><thead><tr><th>exercise</th><th>points</th><th>graded</th><th>attempted</th>"
            + "".join(f"<th>{label}</th>" for _, label, _ in OUTCOMES)
            + f"<th>mean points</th></tr></thead><tbody>{rows}</tbody></table>"
            + "".join(f'<div class="figure">{f}</div>' for f in _figures(report, lesson))
            + "<h3>What the failures were</h3>"
            + ("<table class=\"mis\"><thead><tr><th>exercise</th><th>misconception</th><th>message</th>"
               "<th>students</th>"
               f"<th></th><th>who (feedback pages)</th></tr></thead><tbody>{mis}</tbody></table>" if found
               else "<p>No failed attempt.</p>")
            + "</section>")


def _flags_section(report: Report) -> str:
    if not report.flags:
        return '<section id="flags"><h2>Flags</h2><p>Nothing was flagged.</p></section>'
    items = []
    for f in report.flags:
        detail = ""
        if f.kind == "similar code":
            detail = (f'<details><summary>side by side</summary><div class="pair">'
                      f"<figure><figcaption>{esc(f.student)}</figcaption><pre>{esc(f.code)}</pre></figure>"
                      f"<figure><figcaption>{esc(f.matched)}</figcaption><pre>{esc(f.matched_code)}</pre></figure>"
                      "</div></details>")
        items.append(f'<tr data-kind="{esc(f.kind)}"><td>{esc(f.student)}</td><td>{esc(f.lesson)}</td>'
                     f"<td>{esc(f.kind)}</td><td>{esc(f.evidence)}{detail}</td></tr>")
    kinds = Counter(f.kind for f in report.flags)
    return ('<section id="flags"><h2>Flags</h2>'
            f"<p>{len(report.flags)} flags ({esc(', '.join(f'{n} {k}' for k, n in sorted(kinds.items())))}). "
            "Flags are evidence for a person to look at: they never change a score. <em>Similar code</em> compares "
            "each exercise cell with every other student's and with the reference solution: Jaccard similarity of "
            f"{similarity.K}-token sequences of the code with names and literals abstracted and comments dropped, "
            f"less the stub's; flagged at {100 * similarity.THRESHOLD:.0f}% or more, for cells with at least "
            f"{similarity.MIN_KGRAMS} sequences of their own (shorter exercises have too few ways to be written).</p>"
            "<table><thead><tr><th>student</th><th>lesson</th><th>kind</th><th>evidence</th></tr></thead>"
            f"<tbody>{''.join(items)}</tbody></table></section>")


def _not_graded_section(report: Report) -> str:
    rows = "".join(f'<tr data-status="{esc(s.row.status)}"><td>{esc(s.row.student_id)}</td><td>{esc(s.row.lesson)}</td>'
                   f"<td>{esc(s.row.status)}</td><td>{esc(s.row.reason)}</td></tr>" for s in not_graded(report))
    body = ("<table><thead><tr><th>student</th><th>lesson</th><th>status</th><th>reason</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>" if rows else "<p>Every submission was graded.</p>")
    return ('<section id="not-graded"><h2>Missing, invalid and failed submissions</h2>'
            "<p>A student folder without the lesson's notebook is <em>missing</em>; a file that cannot be graded is "
            f"<em>invalid</em>; <em>error</em> means grading itself failed (rerun it).</p>{body}</section>")


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;
vertical-align:top}td.n-graded,td.n-attempted,td.n-passed,td.n-partly-passed,td.n-failed,td.n-not-attempted,td.n-students{text-align:right}
td.bar{width:120px}td.bar span{display:block;height:.9em;background:#c62828}.example{color:#555;font-size:.9em}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;
font-size:.85em}figure{margin:0}nav a{margin-right:1em}"""


def _manual_summary(report: Report) -> str:
    waiting = [s for s in report.submissions if s.final["manual_pending"]]
    if not waiting:
        return "Every written answer has been graded; grades.csv holds the totals."
    return (f"{len(waiting)} submissions still have written answers to grade by hand "
            f"({sum(s.final['manual_pending'] for s in waiting):g} points); run `python -m grader report` again "
            "afterwards to add them to grades.csv.")


def render(report: Report) -> str:
    from plotly.offline import get_plotlyjs

    students = sorted({s.row.student_id for s in report.submissions})
    nav = "".join(f'<a href="#{esc(n)}">{esc(n)}</a>' for n in report.lessons)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{offline.policy(SCRIPTS)}'
            f"<title>Class report</title><style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
            f"<h1>Class report</h1><p>{len(students)} students, {len(report.lessons)} "
            f"lesson{'' if len(report.lessons) == 1 else 's'}. The scores here are "
            f"automatic points; written answers are graded by hand in formgrader. {esc(_manual_summary(report))} "
            "Each student name links to that student's feedback page.</p>"
            f'<nav>{nav}<a href="#flags">flags</a><a href="#not-graded">missing and invalid</a></nav>'
            + "".join(_lesson_section(report, n) for n in report.lessons)
            + _flags_section(report) + _not_graded_section(report)
            + "<p>Machine-readable tables: <code>report/*.csv</code> beside this page.</p></body></html>\n")


def save_grades(out: Path, submissions: list[Submission]) -> None:
    """grades.csv again, with the manual points the gradebook holds now: written again, nothing graded again."""
    write_grades(out / "grades.csv", [s.row for s in submissions],
                 {(s.row.student_id, s.row.lesson): s.final for s in submissions})


def write(out: Path) -> Path:
    """Build the report of OUT and write OUT/report.html and OUT/report/*.csv; returns the page."""
    out = Path(out)
    report = build(out)
    save_grades(out, report.submissions)
    write_csvs(report, out / "report")
    page = out / "report.html"
    tmp = page.with_suffix(".html.tmp")
    tmp.write_text(render(report), encoding="utf-8")
    os.replace(tmp, page)
    return page

