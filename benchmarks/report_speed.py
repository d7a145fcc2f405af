"""Class report speed: `grader report` for a generated class against just reading what it reads, one run.

    python benchmarks/report_speed.py [--students 300]

Generates the records autograde would leave for every lesson of the course (tests/test_report.py's
generate_class: grades.csv, one record and one graded notebook per submission, with failures, missing
and invalid submissions and copied cells), then times (1) a baseline: reading every record and graded
notebook as JSON, the I/O the report cannot avoid, and (2) building and writing the report. Prints
both in seconds and their ratio. Goal: under 30 s for 300 students x 6 lessons on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_report import generate_class  # noqa: E402 - the tests' generator, so both measure the same class

from grader import report  # noqa: E402
from grader.lessons import lessons  # noqa: E402


def read_everything(out: Path) -> int:
    """The baseline: parse every record and every graded notebook; returns how many files."""
    files = [*out.glob("results/*/*.json"), *out.glob("workspace/autograded/*/*/*.ipynb")]
    for path in files:
        json.loads(path.read_text())
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    args = parser.parse_args()
    names = lessons()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        start = time.perf_counter()
        truth = generate_class(out, args.students, names)
        print(f"generated {args.students} students x {len(names)} lessons in {time.perf_counter() - start:.1f} s "
              f"({len(truth['copies'])} copied cells)")
        start, cpu = time.perf_counter(), time.process_time()
        files = read_everything(out)
        baseline, baseline_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        page = report.write(out)
        seconds, seconds_cpu = time.perf_counter() - start, time.process_time() - cpu
        flags = sum(1 for line in (out / "report" / "flags.csv").open()) - 1
        # CPU time beside wall time: on a shared machine the wall clock also counts other people's work.
        print(f"baseline, reading the {files} records and graded notebooks: {baseline:.1f} s "
              f"({baseline_cpu:.1f} s CPU)")
        print(f"report: {seconds:.1f} s ({seconds_cpu:.1f} s CPU; {page.stat().st_size / 2**20:.1f} MB page, "
              f"{flags} flags); {seconds / baseline:.1f} x the baseline; goal < 30 s")


if __name__ == "__main__":
    main()
