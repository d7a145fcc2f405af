"""`python -m grader solutions [--html SITE]`: run every solution notebook headless, optionally as a site.

The site is one HTML page per lesson (outputs and interactive plotly figures included, plotly.js
inlined so pages work offline), the student copy of each lesson as a page, and an index. In the
solution pages, cells the student writes or that grade them carry a banner, so a reader sees where
the exercises are.
"""

from __future__ import annotations

import html
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

from grader import offline
from grader.lessons import resolve, source_notebook, student_notebook

BANNERS = {
    "solution": "**✏️ Exercise (`{grade_id}`)**: students write this cell; what follows is the reference solution.",
    "test": "**✅ Check (`{grade_id}`, {points:g} points)**: the visible check students see; the grader runs it on "
            "secret inputs, different for every student.",
    "written": "**📝 Written answer (`{grade_id}`, {points:g} points)**: the reference answer and the rubric.",
}


def execute(lesson: str, timeout: float = 600) -> nbformat.NotebookNode:
    """Run a lesson's solution notebook top to bottom in a fresh kernel; raises CellExecutionError."""
    path = source_notebook(lesson)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def banner(cell: nbformat.NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    grade_id, points = meta.get("grade_id", ""), float(meta.get("points", 0) or 0)
    if meta.get("solution") and meta.get("grade"):
        kind = "written"
    elif meta.get("solution"):
        kind = "solution"
    elif meta.get("grade"):
        kind = "test"
    else:
        return None
    return BANNERS[kind].format(grade_id=grade_id, points=points)


def with_banners(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cells = []
    for cell in nb.cells:
        note = banner(cell)
        if note:
            cells.append(nbformat.v4.new_markdown_cell(note))
        cells.append(cell)
    nb.cells = cells
    return nb


def offline_html(nb: nbformat.NotebookNode, lesson: str) -> str:
    """A page that works without a network: formulas as MathML, no CDN script; the figures' inline plotly.js stays."""
    nb = nbformat.from_dict(nb)
    nb.metadata.pop("widgets", None)  # live progress bars: their state would make nbconvert load a widget CDN script
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = offline.typeset_math(cell.source)
        for output in cell.get("outputs", []):
            output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)  # the text form stays
    body, _ = HTMLExporter().from_notebook_node(nb, resources={"metadata": {"name": lesson}})
    return offline.without_remote_loads(body, scripts="'unsafe-inline' 'unsafe-eval'")


def write_page(nb: nbformat.NotebookNode, lesson: str, site: Path) -> Path:
    page = site / f"{lesson}.html"
    page.write_text(offline_html(with_banners(nb), lesson))
    return page


def write_student_page(lesson: str, site: Path) -> Path:
    """The student copy as a page (no outputs, no solutions), to preview what students get."""
    page = site / "student" / f"{lesson}.html"
    page.parent.mkdir(exist_ok=True)
    page.write_text(offline_html(nbformat.read(student_notebook(lesson), as_version=4), lesson))
    return page


def write_index(site: Path, pages: dict[str, str]) -> Path:
    items = "\n".join(f'<li><a href="{html.escape(name)}.html">{html.escape(title)}</a> '
                      f'(<a href="student/{html.escape(name)}.html">student copy</a>)</li>'
                      for name, title in pages.items())
    index = site / "index.html"
    index.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Superposition course: reference solutions</title></head>
<body><h1>Superposition in neural networks: reference solutions</h1>
<p>Each page is a lesson's solution notebook, run top to bottom. Banners mark the exercises students
write, the checks that grade them and the written answers with their rubrics.</p>
<ol>
{items}
</ol></body></html>
""")
    return index


def lesson_title(nb: nbformat.NotebookNode, lesson: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return f"{lesson[:2]}. {line[2:].strip()}"
    return lesson


def _run_one(lesson: str) -> tuple[str, nbformat.NotebookNode | None, str, float]:
    """(lesson, executed notebook or None, error text, seconds): picklable, for a worker process."""
    start = time.perf_counter()
    try:
        return lesson, execute(lesson), "", time.perf_counter() - start
    except CellExecutionError as error:
        return lesson, None, str(error), time.perf_counter() - start


def _share_cores(workers: int) -> None:
    """Runs in each worker before its kernels start: kernels inherit these, so workers do not oversubscribe."""
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = threads


def run_solutions(lesson: str | None = None, site: Path | None = None, workers: int | None = None) -> list[str]:
    """Run the solution notebooks, `workers` at once (default: one per core); with `site`, also write the
    HTML pages. Returns the lessons that failed."""
    names = resolve(lesson)
    workers = max(1, min(workers or os.cpu_count() or 1, len(names)))
    failures, pages = [], {}
    if site is not None:
        site.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers, initializer=_share_cores, initargs=(workers,)) as pool:
        for name, nb, error, seconds in pool.map(_run_one, names):
            if nb is None:
                failures.append(name)
                print(f"✘ {name}: failed after {seconds:.1f} s\n{error}")
                continue
            print(f"✔ {name}: ran in {seconds:.1f} s", flush=True)
            if site is not None:
                pages[name] = lesson_title(nb, name)
                write_page(nb, name, site)
                write_student_page(name, site)
    if site is not None and pages:
        print(f"site: {write_index(site, pages)}")
    return failures
