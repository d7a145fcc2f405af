"""Every solution notebook runs headless, and the reference site built from them works in a browser.

The site test opens each page in headless Chromium (Debian's `chromium` package; `make test` installs
it when it can): no console errors, a screenshot that is not blank, and no student page that leaks a
solution. Every plotly figure is drawn and screenshotted on its own (kept under the test's tmp_path, in
`figures/`): each is at least MIN_FIGURE_PX, not cut off by the page, not blank, its labels do not print over each other, and a
geometry panel (arrows on axes tied by `scaleanchor`) is square, at least MIN_PANEL_PX, with one scale on
both axes, so that a regular pentagon looks regular.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, describe_figures, offline_visit

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


#: (width, height) in CSS pixels that every figure reaches at least, and the side of a geometry panel.
MIN_FIGURE_PX, MIN_PANEL_PX = (400, 250), 250


def overlapping_labels(labels: list[dict], slack: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of text labels whose boxes overlap by more than `slack` pixels both ways."""
    pairs = []
    for k, a in enumerate(labels):
        for b in labels[k + 1:]:
            dx = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            if dx > slack and dy > slack:
                pairs.append((a["text"], b["text"]))
    return pairs


def figure_problems(figure: dict) -> list[str]:
    """What reads badly in one described figure (see chromium.describe_figures); empty when nothing does."""
    problems, box = [], figure["box"]
    if box["width"] < MIN_FIGURE_PX[0] or box["height"] < MIN_FIGURE_PX[1]:
        problems.append(f"{box['width']:.0f} x {box['height']:.0f} px, under {MIN_FIGURE_PX}")
    if figure["cut_px"] > 1:
        problems.append(f"{figure['cut_px']:.0f} px cut off on the right by the page")
    if png_is_blank(figure["png"]):
        problems.append("blank")
    for axes in figure["anchored"]:
        if abs(axes["x_scale"] * axes["ratio"] - axes["y_scale"]) > 0.01 * axes["y_scale"]:
            problems.append(f"{axes['axis']}: {axes['x_scale']:.1f} px per unit across, {axes['y_scale']:.1f} up")
        if axes["geometry"] and (min(axes["x_px"], axes["y_px"]) < MIN_PANEL_PX or abs(axes["x_px"] - axes["y_px"]) > 2):
            problems.append(f"{axes['axis']}: a {axes['x_px']:.0f} x {axes['y_px']:.0f} px panel, not a square of "
                            f"at least {MIN_PANEL_PX}")
    problems += [f"labels {a!r} and {b!r} overlap" for a, b in overlapping_labels(figure["labels"])]
    return problems


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (make test installs it)")
@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_pages_load_without_errors_and_every_figure_reads(site: Path, tmp_path: Path, lesson: str):
    page = site / f"{lesson}.html"
    n_figures = page.read_text().count('class="plotly-graph-div"')
    assert n_figures > 0, "every lesson has interactive figures"
    figures, errors, first_screen, dom = describe_figures(page, tmp_path / "profile")
    assert not errors, errors[:5]
    assert len(figures) == n_figures and len(re.findall(r'<svg class="main-svg"', dom)) >= n_figures
    assert not png_is_blank(first_screen)
    assert "Exercise (<code>ex_" in dom
    shots = tmp_path / "figures"
    shots.mkdir()
    problems = {}
    for n, figure in enumerate(figures):
        (shots / f"{lesson}-{n:02d}.png").write_bytes(figure["png"])
        if found := figure_problems(figure):
            problems[f"figure {n} ({figure['title'][:60]!r})"] = found
    assert not problems, f"screenshots in {shots}: {problems}"


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
