"""Every exercise, in every lesson, carries a label line and, where it has a hint, one that is collapsed and
gives no solution line away."""

import re

import nbformat
import pytest

from grader.lessons import lessons, source_notebook, student_notebook

LABEL = re.compile(r"^\*Difficulty [1-3]/3 · importance [1-3]/3 · about \d+ minutes\*$", re.M)
HINT = re.compile(r"<details><summary>Hint</summary>\n\n(.+?)\n\n</details>", re.S)


def exercises(nb: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    """(grade_id, the markdown that introduces the exercise, its solution code) for every exercise cell."""
    found, markdown = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            markdown = cell.source
        grade_id = str(cell.metadata.get("nbgrader", {}).get("grade_id", ""))
        if cell.cell_type == "code" and grade_id.startswith("ex_"):
            found.append((grade_id, markdown, cell.source))
    return found


def solution_lines(code: str) -> list[str]:
    body = code.split("### BEGIN SOLUTION")[-1].split("### END SOLUTION")[0]
    return [line.strip() for line in body.splitlines() if len(line.strip()) > 15 and not line.strip().startswith("#")]


@pytest.mark.parametrize("lesson", lessons())
def test_every_exercise_has_a_label_line_and_a_collapsed_hint_that_gives_nothing_away(lesson):
    source = nbformat.read(source_notebook(lesson), as_version=4)
    student = nbformat.read(student_notebook(lesson), as_version=4)
    found = exercises(source)
    assert found, f"{lesson} has no exercise cells"
    for grade_id, markdown, code in found:
        assert LABEL.search(markdown), f"{lesson} {grade_id}: no label line (*Difficulty d/3 · importance i/3 · about t minutes*)"
        assert markdown.count("<details>") == markdown.count("</details>") == len(HINT.findall(markdown)), \
            f"{lesson} {grade_id}: a hint must be <details><summary>Hint</summary>, a blank line, the text, a blank line, </details>"
        for hint in HINT.findall(markdown):
            leaked = [line for line in solution_lines(code) if line in hint]
            assert not leaked, f"{lesson} {grade_id}: the hint quotes the solution: {leaked}"
    assert [(g, m) for g, m, _ in exercises(student)] == [(g, m) for g, m, _ in found], \
        f"{lesson}: the student copy's labels and hints differ from the source's (run `python -m grader release`)"
