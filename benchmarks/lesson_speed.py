"""How long a student waits: every lesson top to bottom in one kernel, and every visible check, one run.

    python benchmarks/lesson_speed.py [--lesson 02_toy_model]

Runs each reference solution the way a student's JupyterLab does: one fresh kernel per lesson, its
cells one after another (not the parallel `grader solutions` runner). The baseline, measured in the
same run, is the floor every lesson pays before its own work: starting a kernel and running an
import cell (torch, plotly, utils). Prints, per lesson, the total seconds, its ratio to the floor,
and the slowest visible check (a test cell calling `checks.check`); then the course total.
Goals (issue 13): every check under 3 s, every lesson under 60 s, the course under 5 minutes.
"""

from __future__ import annotations

import argparse
import time

import nbformat
from nbclient import NotebookClient

from grader.lessons import resolve, source_notebook

CHECK_GOAL_S, LESSON_GOAL_S, COURSE_GOAL_S = 3.0, 60.0, 300.0
FLOOR_IMPORTS = "import plotly.graph_objects, torch, utils, utils.checks"


def run_cells(nb: nbformat.NotebookNode, folder: str) -> list[tuple[float, nbformat.NotebookNode]]:
    """(seconds, cell) for every code cell, run in order in one fresh kernel; the total includes kernel start."""
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}})
    timings = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                start = time.perf_counter()
                client.execute_cell(cell, index)
                timings.append((time.perf_counter() - start, cell))
    return timings


def floor_seconds() -> float:
    """A fresh kernel that only imports what every lesson's setup imports."""
    start = time.perf_counter()
    run_cells(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FLOOR_IMPORTS)]), ".")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", help="one lesson (default: all)")
    args = parser.parse_args()
    floor = floor_seconds()
    print(f"floor (fresh kernel + '{FLOOR_IMPORTS}'): {floor:.1f} s\n")
    print(f"{'lesson':28} {'total s':>8} {'x floor':>8} {'checks':>7} {'slowest check s':>16}  slowest check")
    course = 0.0
    for lesson in resolve(args.lesson):
        path = source_notebook(lesson)
        start = time.perf_counter()
        timings = run_cells(nbformat.read(path, as_version=4), str(path.parent))
        total = time.perf_counter() - start
        course += total
        checks = [(t, cell.source.split("\n")[0]) for t, cell in timings if "checks.check(" in cell.source]
        slowest, name = max(checks, default=(0.0, ""))
        flag = "" if total < LESSON_GOAL_S and slowest < CHECK_GOAL_S else "  <-- over a goal"
        print(f"{lesson:28} {total:8.1f} {total / floor:8.1f} {len(checks):7d} {slowest:16.2f}  {name}{flag}")
    print(f"\ncourse: {course:.1f} s (goals: each check < {CHECK_GOAL_S:.0f} s, each lesson < {LESSON_GOAL_S:.0f} s, "
          f"the course < {COURSE_GOAL_S:.0f} s)")


if __name__ == "__main__":
    main()
