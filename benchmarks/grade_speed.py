"""Grading cost against its floor, the fixed cost of a run, and scaling on a local Dask cluster, in one run.

    python benchmarks/grade_speed.py [--lesson NAME] [--repeats 2] [--class-size 40]

1. Per lesson, side by side: the core-seconds of grading one honest (fully solved) submission, all told
   (building its job and judging it, rendering its feedback and recording it in this process, plus the
   sandboxed runner's own CPU time, interpreter start and imports included), and the floor: an empty
   sandboxed job that starts the same interpreter (the runner) and imports what the lesson's setup cells
   import. "student" is the time the submission's own cells and the calls of its functions by the probes
   took inside the sandbox. Goal: honest / (floor + student) at most 1.5.
2. The fixed cost of a run in which nothing changed (no lesson source, no submission).
3. Scale: the same class of lesson-01 submissions (correct, half solved, blank, a syntax error, not JSON)
   graded by the CLI on a local Dask cluster with 1 single-threaded worker and with 2, alternated, best of
   --repeats each. Goal: 2 workers at least 1.8x as fast as 1. From when each result was recorded it also splits
   a run into its steady state (seconds per submission after each worker's first result) and the rest (start-up,
   the first submissions' imports, shutting down), which the run pays once whatever the workers.
4. A projection for a class of 300 students x every lesson, from the measured per-submission costs.

Core-seconds are CPU time, so other work on the machine slows the wall-clock figures (3) more than the
others; bubblewrap's own CPU time (milliseconds) is not counted.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from grader import autograde, sandbox, synthetic, timing, trusted, workspace
from grader.lessons import lessons, source_notebook, student_notebook

CLASS_LESSON = "01_superposition_basics"


@dataclass
class Cost:
    """Core-seconds of one sandboxed job: in the sandbox (the runner's CPU time) and in this process."""

    sandbox: float
    grader: float
    student: float = 0.0  # the submission's own cells and probe calls (wall time inside the sandbox)

    @property
    def total(self) -> float:
        return self.sandbox + self.grader


def setup_imports(source: nbformat.NotebookNode) -> str:
    """The import statements of the lesson's setup cells (the instructor's cells the grader runs)."""
    lines = []
    for cell in source.cells:
        meta = trusted.nbgrader_meta(cell)
        if cell.cell_type == "code" and meta and not meta.get("solution") and not meta.get("grade"):
            lines += [ast.unparse(node) for node in ast.parse(cell.source).body
                      if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def _cpu(run: sandbox.Run) -> float:
    cpu = trusted.parse_events(run.events)[2].get("cpu_seconds")
    if run.status != "finished" or not isinstance(cpu, (int, float)):
        raise SystemExit(f"a benchmark job did not finish: {run.status} {run.detail}")
    return float(cpu)


def floor_cost(source: nbformat.NotebookNode, limits: sandbox.Limits, view: str | None) -> Cost:
    job = {"cells": [{"index": 0, "grade_id": None, "source": setup_imports(source)}], "cell_timeout": 120}
    start = time.process_time()
    run = sandbox.run(json.dumps(job), limits, True, view)
    return Cost(_cpu(run), time.process_time() - start)


def honest_cost(lesson: str, student: str, root: Path, context: dict) -> tuple[Cost, float]:
    """(cost of grading one fully solved submission exactly as the CLI does, seconds of its recording step)."""
    source, options = context["source"], context["options"]
    synthetic.write_submission(synthetic.make_submission(lesson, "all"), root / "subs", student, lesson)
    row = autograde.Result(student, lesson, 0.0, *autograde._max_points(source), status="graded")
    start = time.process_time()
    task = autograde.prepare(root / "subs", row, source, context["student_copy"], context["fingerprint"], root / "out",
                             options, context["limits"])
    outcome = autograde.grade(task, True)
    recording = time.process_time()
    result = autograde.finish(task, outcome, root / "out" / "workspace", root / "out", context["gradebook"])
    end = time.process_time()
    if result.status != "graded" or result.score != result.max_score:
        raise SystemExit(f"{lesson}: the reference solution got {result.score} of {result.max_score}: {result.reason}")
    cells, probes, _ = trusted.parse_events(outcome.run.events)
    own = set(synthetic.exercises(lesson))
    seconds = [e.get("seconds") for e in cells.values() if e.get("grade_id") in own or e.get("grade_id") is None]
    seconds += [e.get("seconds") for sets in probes.values() for events in sets.values() for e in events]
    return Cost(_cpu(outcome.run), end - start, sum(s for s in seconds if isinstance(s, (int, float)))), end - recording


def lesson_context(lesson: str, out: Path, code: str) -> dict:
    source = nbformat.read(source_notebook(lesson), as_version=4)
    options = autograde.Options(workers=1)
    limits = replace(options.limits, wall_seconds=timing.default_timeout(lesson, source))
    fingerprint = {"lesson": trusted.fingerprint(source, options.sets), "code": code,
                   "limits": {k: v for k, v in asdict(limits).items() if k != "threads"}}
    return {"source": source, "student_copy": nbformat.read(student_notebook(lesson), as_version=4),
            "options": options, "limits": limits, "fingerprint": fingerprint,
            "view": autograde.lesson_view(source, out / "views")}


def per_lesson(names: list[str], repeats: int, root: Path) -> dict[str, dict]:
    """Floor and honest submissions, alternated so that load on the machine affects both alike."""
    code = autograde.grading_code_digest()
    workspace.prepare(root / "out" / "workspace", names, code)
    found = {}
    # One gradebook session for every submission, as a CLI batch has (opening one is not per submission).
    gradebook = Gradebook(f"sqlite:///{root / 'out' / 'workspace' / 'gradebook.db'}")
    for lesson in names:
        context = {**lesson_context(lesson, root / "out", code), "gradebook": gradebook}
        floors, honest, recording = [], [], []
        for k in range(repeats):
            floors.append(floor_cost(context["source"], context["limits"], context["view"]))
            cost, seconds = honest_cost(lesson, f"honest{k}", root, context)
            honest.append(cost)
            recording.append(seconds)
        found[lesson] = {"floor": min(floors, key=lambda c: c.total), "honest": min(honest, key=lambda c: c.total),
                         "recording": statistics.median(recording)}
    gradebook.close()
    return found


def make_class(root: Path, lesson: str, count: int) -> None:
    """`count` submissions cycling through: all solved, half solved, blank, a syntax error, not JSON."""
    exercises = synthetic.exercises(lesson)
    for k in range(count):
        student, kind = f"student{k:02d}", k % 5
        if kind == 4:
            path = root / student / lesson / f"{lesson}.ipynb"
            path.parent.mkdir(parents=True)
            path.write_text("{ not a notebook")
            continue
        nb = synthetic.make_submission(lesson, {0: "all", 1: exercises[: len(exercises) // 2], 2: [], 3: "all"}[kind])
        if kind == 3:
            next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")).source += "\n  oops("
        synthetic.write_submission(nb, root, student, lesson)


@dataclass
class Batch:
    """One CLI run over the class: its wall-clock seconds, and when each graded submission was recorded."""

    seconds: float
    recorded: list[float]  # seconds after the command started, in order
    workers: int = 1

    @property
    def interval(self) -> float:
        """Steady-state seconds per submission. The workers start together, so their first results come close
        together: from the last of those to the last result, n - workers submissions were graded."""
        if len(self.recorded) <= self.workers:
            raise SystemExit(f"{len(self.recorded)} graded submissions are too few for a steady state: "
                             "raise --class-size")
        return (self.recorded[-1] - self.recorded[self.workers - 1]) / (len(self.recorded) - self.workers)

    @property
    def rest(self) -> float:
        """What the run costs beyond its submissions at the steady rate: the CLI's start, inspecting the files,
        the cluster's start, the first submission's imports in a fresh worker, closing the cluster, the report."""
        return self.seconds - len(self.recorded) * self.interval


def cli(subs: Path, out: Path, workers: int | None = None) -> Batch:
    """Run `python -m grader autograde` on CLASS_LESSON, on a local Dask cluster of `workers` (default: local
    threads); the recordings are the modification times of the result records it wrote."""
    cluster = ["--scheduler", "local", "--workers", str(workers)] if workers else []
    started, start = time.time(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out), "--lesson", CLASS_LESSON,
                    *cluster], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - start
    modified = (p.stat().st_mtime - started for p in (out / "results").glob("*/*.json"))
    return Batch(took, sorted(t for t in modified if t >= 0), workers or 1)


def scale(root: Path, size: int, repeats: int) -> dict[str, Batch]:
    """The same class on a local Dask cluster with 1 worker and with 2, from the same prepared workspace, alternated
    `repeats` times (best of each: two busy workers on two cores feel any other load on the machine at once)."""
    make_class(root / "class", CLASS_LESSON, size)
    prepared = root / "prepared"
    workspace.prepare(prepared, [CLASS_LESSON], autograde.grading_code_digest())
    best: dict[str, Batch] = {}
    for k in range(repeats):
        for workers in (1, 2):
            out = root / f"class-{workers}-{k}"
            shutil.copytree(prepared, out / "workspace")
            run, label = cli(root / "class", out, workers), f"{workers} worker"
            if label not in best or run.seconds < best[label].seconds:
                best[label] = run
    unchanged = root / "class-2-0"  # graded already: nothing changed since
    best["unchanged"] = min((cli(root / "class", unchanged) for _ in range(repeats)), key=lambda run: run.seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesson", help="only this lesson in part 1 (default: every lesson)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="honest submissions and floor jobs per lesson, and runs of each cluster size")
    parser.add_argument("--class-size", type=int, default=40)
    args = parser.parse_args()
    names = [args.lesson] if args.lesson else lessons()
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        found = per_lesson(names, args.repeats, root / "lessons")
        batches = scale(root / "scale", args.class_size, args.repeats)
    print("\ncore-seconds per submission (best of", args.repeats, "each); goal: ratio <= 1.5")
    print(f"{'lesson':28} {'floor':>6} {'student':>8} {'honest':>7} {'in sandbox':>11} {'in grader':>10} {'ratio':>6}")
    for lesson, f in found.items():
        floor, honest = f["floor"], f["honest"]
        print(f"{lesson:28} {floor.total:6.2f} {honest.student:8.2f} {honest.total:7.2f} {honest.sandbox:11.2f} "
              f"{honest.grader:10.2f} {honest.total / (floor.total + honest.student):5.2f}x")
    one, two = batches["1 worker"], batches["2 worker"]
    print(f"\nfixed cost of a run with nothing changed: {batches['unchanged'].seconds:.1f} s")
    print(f"{args.class_size} submissions of {CLASS_LESSON} on a local Dask cluster: 1 worker {one.seconds:.1f} s, "
          f"2 workers {two.seconds:.1f} s, speed-up {one.seconds / two.seconds:.2f}x "
          f"(goal 1.8x; best of {args.repeats} each)")
    n = len(one.recorded)
    steady = one.interval / two.interval
    # (rest + n * one.interval) / (rest + n * two.interval) >= 1.8 bounds a rest common to both runs.
    bound = n * (one.interval - 1.8 * two.interval) / 0.8
    needed = (f"1.8x overall needs that rest under {bound:.1f} s" if steady > 1.8
              else "under 1.8x in the steady state already, no rest is short enough for 1.8x overall")
    print(f"  steady state ({n} graded): 1 worker {one.interval:.2f} s a submission, 2 workers {two.interval:.2f} s, "
          f"{steady:.2f}x; the rest of a run (start, cluster, first imports, close): {one.rest:.1f} s and "
          f"{two.rest:.1f} s; {needed}")
    per_student = sum(f["honest"].total for f in found.values())
    serial = max(f["recording"] for f in found.values())  # this process records one submission at a time
    for cores, efficiency in ((2, one.seconds / two.seconds / 2), (16, 1.0)):
        hours = max(300 * per_student / cores / min(1.0, efficiency), 300 * len(found) * serial) / 3600
        print(f"300 students x {len(found)} lessons on {cores} cores: {hours:.1f} h "
              f"({per_student:.1f} core-s per student, {'measured' if cores == 2 else 'ideal'} scaling)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
