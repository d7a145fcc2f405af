"""Every solution notebook runs headless, and the reference site built from them works in a browser.

The site test opens each page in headless Chromium (Debian's `chromium` package; `make test` installs
it when it can): no console errors, every plotly figure drawn, a screenshot that is not blank, and no
student page that leaks a solution.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, offline_visit

from grader.lessons import lessons, source_notebook

pytestmark = pytest.mark.slow
LESSONS = lessons()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "grader", "solutions", "--html", str(folder)],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("✔") == len(LESSONS), result.stdout
    return folder


def browse(page: Path, tmp_path: Path) -> tuple[str, str, bytes]:
    """(DOM after scripts ran, browser log, screenshot PNG) of a page in headless Chromium."""
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=15000", "--window-size=1200,1600"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    shot = tmp_path / f"{page.stem}.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180)
    return dom.stdout, dom.stderr, shot.read_bytes()


def png_is_blank(png: bytes) -> bool:
    """True when the decoded image data is (nearly) a single value; good enough to catch a blank page."""
    chunks, pos = [], 8
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        if png[pos + 4:pos + 8] == b"IDAT":
            chunks.append(png[pos + 8:pos + 8 + length])
        pos += 12 + length
    pixels = zlib.decompress(b"".join(chunks))
    return len(set(pixels[::7])) < 4


def test_index_lists_every_lesson(site: Path):
    index = (site / "index.html").read_text()
    for lesson in LESSONS:
        assert f'href="{lesson}.html"' in index and f'href="student/{lesson}.html"' in index


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (make test installs it)")
@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_pages_load_without_errors_and_draw_every_figure(site: Path, tmp_path: Path, lesson: str):
    page = site / f"{lesson}.html"
    figures = page.read_text().count('class="plotly-graph-div"')
    assert figures > 0, "every lesson has interactive figures"
    dom, log, png = browse(page, tmp_path)
    errors = [line for line in log.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert not errors, errors[:5]
    drawn = len(re.findall(r'<svg class="main-svg"', dom))
    assert drawn >= figures, f"{drawn} plotly SVGs drawn for {figures} figures"
    assert not png_is_blank(png)
    assert "Exercise (<code>ex_" in dom


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (make test installs it)")
@pytest.mark.parametrize("kind", ["solution", "student"])
def test_pages_work_offline_and_typeset_their_formulas(site: Path, tmp_path: Path, kind: str):
    """With the network shut, a lesson page requests nothing from outside and shows its formulas as MathML."""
    page = site / (f"{LESSONS[0]}.html" if kind == "solution" else f"student/{LESSONS[0]}.html")
    requests, dom = offline_visit(page, tmp_path)
    assert requests == set()
    assert dom.count("<math") > 20 and "\\mathrm{ReLU}" not in dom


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_pages_leak_no_solution(site: Path, lesson: str):
    text = (site / "student" / f"{lesson}.html").read_text()
    source = nbformat.read(source_notebook(lesson), as_version=4)
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            body = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in (line.strip() for line in body.splitlines()):
                if len(line) > 25:
                    assert line not in text and re.sub(r"\W+", "", line) not in re.sub(r"<[^>]+>|\W+", "", text)
    assert "Rubric" not in text
