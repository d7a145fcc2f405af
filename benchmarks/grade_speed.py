"""Grading throughput: plain `nbgrader autograde` (serial) against `python -m grader autograde`, one run.

    python benchmarks/grade_speed.py [--lesson 01_superposition_basics] [--count 20] [--workers 2]

Both grade the same generated class: correct, partially solved and broken submissions (a syntax
error, a notebook that is not JSON). nbgrader runs every cell of every notebook in one kernel per
submission, one submission after another; our CLI runs each submission in its own bubblewrap sandbox,
skips the lesson's demonstration cells, judges the probes' results outside, and grades `--workers`
submissions at once. Prints submissions per minute for both and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader import synthetic, workspace


def make_class(root: Path, lesson: str, count: int) -> list[str]:
    """`count` submissions cycling through: all solved, half solved, blank, a syntax error, not JSON."""
    exercises = synthetic.exercises(lesson)
    students = []
    for k in range(count):
        student = f"student{k:02d}"
        kind = k % 5
        if kind == 4:
            path = root / student / lesson / f"{lesson}.ipynb"
            path.parent.mkdir(parents=True)
            path.write_text("{ not a notebook")
        else:
            solved = {0: "all", 1: exercises[: len(exercises) // 2], 2: [], 3: "all"}[kind]
            nb = synthetic.make_submission(lesson, solved)
            if kind == 3:
                next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")).source += "\n  oops("
            synthetic.write_submission(nb, root, student, lesson)
        students.append(student)
    return students


def plain_nbgrader(subs: Path, lesson: str, course: Path) -> float:
    """Seconds for `nbgrader autograde LESSON` over the whole class, in an nbgrader course folder."""
    workspace.prepare(course, [lesson])
    shutil.copytree(subs, course / "submitted")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", lesson, "--force"], cwd=course,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=workspace.nbgrader_env())
    return time.perf_counter() - start


def our_cli(subs: Path, lesson: str, out: Path, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out), "--lesson", lesson,
                    "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", default="01_superposition_basics")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_class(root / "subs", args.lesson, args.count)
        ours = our_cli(root / "subs", args.lesson, root / "out", args.workers)
        plain = plain_nbgrader(root / "subs", args.lesson, root / "course")
    rate = lambda seconds: 60 * args.count / seconds  # noqa: E731
    print(f"{args.count} submissions of {args.lesson} (correct, partial, blank, syntax error, not JSON)")
    print(f"plain nbgrader autograde, serial: {plain:7.1f} s  {rate(plain):6.1f} submissions/min")
    print(f"python -m grader autograde, {args.workers} workers, sandboxed: {ours:7.1f} s  {rate(ours):6.1f} submissions/min")
    print(f"ratio: {plain / ours:.1f}x")


if __name__ == "__main__":
    main()
