"""Per-student feedback: the graded notebook as HTML, with scores and each check's message.

The page shows the student's own cells and outputs, the instructor's cells as released, and above
each test cell the judge's verdict (which names the misconception). Tracebacks are cut to their last
line, rich outputs are reduced
to text and images, and the HTML is sanitised so that script a student put in a cell cannot run
in the browser of whoever opens the feedback.
"""

from __future__ import annotations

import html
import json
import re
import threading
from functools import lru_cache
from pathlib import Path

import bleach
import nbformat
from nbconvert import HTMLExporter, TemplateExporter
from nbconvert.filters import Highlight2HTML

from grader import offline

SAFE_MIME = ("text/plain", "image/png")
# What rendered Markdown may keep: text structure, never script, style, forms, frames or event handlers.
SAFE_TAGS = [*bleach.ALLOWED_TAGS, "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "code", "span",
             "div", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub", "img", *offline.MATHML_TAGS]


def _allowed(tag: str, name: str, value: str) -> bool:
    """Attributes rendered Markdown may keep: no event handlers, and nothing that makes the browser fetch or leave."""
    if name in ("class", "id", "title", "alt"):
        return True
    if tag == "img" and name == "src":
        return value.startswith("data:image/")  # embedded images only: a remote one would call out when opened
    if tag == "a" and name == "href":
        return value.startswith("#")
    return tag in offline.MATHML_TAGS and name in offline.MATHML_ATTRIBUTES


def clean_html(html: str) -> str:
    """nbconvert's sanitiser escapes headings and paragraphs; this one keeps them and still drops script."""
    html = str(html)
    return _clean_cached(html) if len(html) <= CACHED_HTML_CHARS else _clean(html)


# The lesson's own text is the same on every page of a lesson, and sanitising it took about half of a page's
# rendering time, so short inputs are cached (course text: 290 pieces, 0.8 MB in all, the longest 23 thousand
# characters). Students' code passes through here too: the bounds keep the cache under about 32 MB.
CACHED_HTML_CHARS = 32_000


@lru_cache(maxsize=1024)
def _clean_cached(html: str) -> str:
    return _clean(html)


def _clean(html: str) -> str:
    return bleach.clean(html, tags=SAFE_TAGS, attributes=_allowed, strip=True)


def safe_outputs(outputs: list) -> list:
    """Outputs reduced to what is safe to open: text, PNG images and one-line errors."""
    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            kept.append(out)
        elif kind == "error":
            kept.append(nbformat.v4.new_output("error", ename=out.get("ename", "Error"), evalue=out.get("evalue", ""),
                                               traceback=[f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]))
        elif kind in ("display_data", "execute_result"):
            data = {k: v for k, v in out.get("data", {}).items() if k in SAFE_MIME}
            if data:
                kept.append(nbformat.v4.new_output("display_data", data=data))
    return kept


def printable(text: str) -> str:
    """Text that can be written as UTF-8: a lone surrogate a submission printed becomes U+FFFD."""
    return str(text).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def score_note(grade_id: str, scores: dict) -> str | None:
    """The line shown above a graded cell: points, and the judge's message (which names the misconception)."""
    if grade_id not in scores:
        return None
    score, max_score, cell_type, message = scores[grade_id]
    if cell_type == "markdown":
        return f"**Written answer ({max_score:g} points): graded by your instructor.**"
    mark = "✔" if score == max_score else "✘"
    note = f"**{mark} {score:g} / {max_score:g} points** for the cell below"
    return f"{note}: {html.escape(printable(message))}" if message else f"{note}."


# Past these, Markdown a student wrote is shown as plain text: parsing and typesetting hostile Markdown can
# take seconds per kilobyte, and feedback is written for one submission at a time. The lesson's own text
# (restored from the source, marked COURSE_TEXT by graded_notebook) is not counted.
MARKDOWN_CELL_CHARS, MARKDOWN_CHARS = 5_000, 30_000
COURSE_TEXT = "course_text"


def as_text(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A Markdown cell too long to render safely (Markdown parsing can be slow on hostile input), as plain text."""
    return nbformat.v4.new_raw_cell(cell.source, metadata=cell.get("metadata", {}))


def feedback_notebook(nb: nbformat.NotebookNode, scores: dict, title: str) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell(title)]
    budget = MARKDOWN_CHARS
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not cell.get("metadata", {}).pop(COURSE_TEXT, False):
            budget -= len(cell.source)
            if len(cell.source) > MARKDOWN_CELL_CHARS or budget < 0:
                cell = as_text(cell)
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        note = score_note(grade_id, scores)
        if note:
            cells.append(nbformat.v4.new_markdown_cell(note))
        if cell.cell_type == "code":
            cell.outputs = safe_outputs(cell.get("outputs", []))
        elif cell.cell_type == "markdown":
            cell.source = offline.typeset_math(cell.source)
        cell.pop("attachments", None)
        cells.append(cell)
    nb.cells = cells
    return nb


def graded_notebook(submission: nbformat.NotebookNode, source: nbformat.NotebookNode,
                    cell_events: dict[int, dict]) -> nbformat.NotebookNode:
    """The submission as graded: locked cells restored from the source, outputs from the sandboxed run."""
    originals = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in source.cells
                 if isinstance(c.metadata.get("nbgrader"), dict) and "grade_id" in c.metadata["nbgrader"]}
    lesson_text = {c.get("id"): c for c in source.cells if c.cell_type == "markdown" and "nbgrader" not in c.metadata}
    nb = nbformat.from_dict(json.loads(json.dumps(submission)))
    for index, cell in enumerate(nb.cells):
        cell.get("metadata", {}).pop(COURSE_TEXT, None)
        original = originals.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if original is not None and not original.metadata["nbgrader"].get("solution"):
            cell.source, cell.metadata = original.source, json.loads(json.dumps(original.metadata))
        if cell.cell_type == "markdown" and cell.get("id") in lesson_text and "nbgrader" not in cell.metadata:
            cell.source = lesson_text[cell["id"]].source  # the lesson's own text, as released
            cell.metadata[COURSE_TEXT] = True
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        event = cell_events.get(index)
        if event:
            for name in ("stdout", "stderr"):
                if event.get(name):
                    cell.outputs.append(nbformat.v4.new_output("stream", name=name, text=printable(event[name])))
            if event.get("error"):
                error = printable(event["error"])
                ename, _, evalue = error.partition(": ")
                cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[error]))
    return nb


def with_verdicts(nb: nbformat.NotebookNode, grades: list) -> nbformat.NotebookNode:
    """A copy of the graded notebook whose test cells show their grade and the judge's message as their output.

    For formgrader, which shows a notebook's outputs: a failed check is an error output (red, as nbgrader's
    own failed tests are), a passed one a line of text. `grades`: grader.trusted.CellGrade objects.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    by_id = {g.grade_id: g for g in grades}
    for cell in nb.cells:
        grade = by_id.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if grade is None or cell.cell_type != "code":
            continue
        text = printable(f"{grade.points:g} / {grade.max_points:g} points: {grade.message}")
        cell.outputs = ([nbformat.v4.new_output("stream", name="stdout", text=f"✔ {text}\n")]
                        if grade.points >= grade.max_points else
                        [nbformat.v4.new_output("error", ename="CheckFailed", evalue=text,
                                                traceback=[f"CheckFailed: {text}"])])
    return nb


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter without its last step, which parses the finished page again (BeautifulSoup: two
    thirds of a feedback page's rendering, 0.2 core-s) only to make cells and outputs focusable and give images alt
    text; `accessible` adds those attributes to the page as written. The outputs are text and PNG only
    (safe_outputs), so HTMLExporter's widget-aware output filter is not needed either."""

    def from_notebook_node(self, nb: nbformat.NotebookNode, resources: dict | None = None, **kw) -> tuple[str, dict]:
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name"))
        self.register_filter("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        return accessible(page), resources


FOCUSABLE = re.compile(r'<div class="((?:[^"]* )?(?:jp-Cell-inputWrapper|jp-OutputArea-output)(?: [^"]*)?)"')
IMAGE_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\balt=)")


def accessible(page: str) -> str:
    """What nbconvert's HTMLExporter adds for screen readers and keyboards: tabindex on cell inputs and outputs,
    alt text on images."""
    page = FOCUSABLE.sub(lambda m: f'<div class="{m.group(1)}" tabindex="0"', page)
    return IMAGE_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', page)


_EXPORTERS = threading.local()  # one per grading thread: a new exporter compiles its templates again (~0.1 s)


def render(nb: nbformat.NotebookNode) -> str:
    """The notebook as sanitised HTML that runs no script and loads nothing from outside (maths is MathML)."""
    if not hasattr(_EXPORTERS, "html"):
        _EXPORTERS.html = FeedbackExporter(sanitize_html=True, filters={"clean_html": clean_html})
    html, _ = _EXPORTERS.html.from_notebook_node(nb)
    return offline.without_remote_loads(html)


def save(html_page: str, row, folder: Path) -> Path:
    """Write one graded submission's page (made by `page`) as folder/<lesson>.html; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{row.lesson}.html"
    path.write_text(html_page)
    return path


def page(nb: nbformat.NotebookNode, scores: dict, row) -> str:
    """The feedback page of one graded submission (rendered where it was judged, written by the grader)."""
    title = (f"# Feedback: {row.lesson}, {row.student_id}\n\nAutomatic score: **{row.score:g} / {row.max_score:g}**"
             + (f"; written answers ({row.manual_max:g} points) are graded by your instructor." if row.manual_max else ".")
             + (f"\n\nNote: {html.escape(printable(row.reason))}" if row.reason else "")
             + "\n\nEach check below ran your code on inputs you have not seen, different for every student, and "
               "compared the results with the reference's.")
    return render(feedback_notebook(nbformat.from_dict(json.loads(json.dumps(nb))), scores, title))
