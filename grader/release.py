"""Generate the student copies in notebooks/ from the nbgrader sources in solutions/.

The same nbgrader preprocessors as `nbgrader generate_assignment` run in-process (without its
gradebook), so the student copy is exactly what nbgrader would release: solutions replaced by
`raise NotImplementedError()`, hidden tests and mark schemes removed, outputs cleared, graded
cells locked and checksummed.
"""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)

from grader.lessons import course, resolve, source_notebook, student_notebook

_PIPELINE = (LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums,
             ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata)


def student_version(source: nbformat.NotebookNode) -> str:
    """The student copy of a source notebook, as the exact text written to notebooks/."""
    nb = nbformat.from_dict(source)
    resources: dict = {}
    for preprocessor in _PIPELINE:
        nb, resources = preprocessor().preprocess(nb, resources)
    return nbformat.writes(nb) + "\n"


def release(lesson: str | None = None) -> list[str]:
    """Write notebooks/<lesson>/<lesson>.ipynb for each lesson; returns the paths written."""
    written = []
    for name in resolve(lesson):
        target = student_notebook(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(student_version(nbformat.read(source_notebook(name), as_version=4)))
        written.append(str(target.relative_to(course())))
    return written
