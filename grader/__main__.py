"""The grader CLI: python -m grader {release,check,bundle,autograde,report,export,solutions}."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grader import skip_collection_at_exit


def main(argv: list[str] | None = None) -> int:
    skip_collection_at_exit()
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate notebooks/<lesson>/ from solutions/<lesson>/")
    release.add_argument("--lesson")
    release.add_argument("--no-timing", action="store_true",
                         help="do not re-measure the reference's grading time (the lesson's default time limit)")
    commands.add_parser("check", help="fail when notebooks/ is stale or a committed notebook has outputs")
    bundle = commands.add_parser("bundle", help="write the student bundle (notebooks, utils, no answer key) to DIR")
    bundle.add_argument("dir", type=Path)
    grade = commands.add_parser("autograde", help="grade SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--out", type=Path, required=True, help="where grades.csv, feedback/ and workspace/ go")
    grade.add_argument("--lesson", help="grade only this lesson")
    grade.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="submissions graded at once (default: the number of cores)")
    grade.add_argument("--scheduler", help="run on Dask: 'local' for a local cluster, or a scheduler address "
                                           "(tcp://host:8786) whose workers share this repo and its .venv")
    grade.add_argument("--timeout", type=float,
                       help="seconds allowed per submission (default: the lesson's recorded reference grading time "
                            "x 8, at least 30 s: grader/timing.py; 600 when never measured)")
    grade.add_argument("--cell-timeout", type=float, default=120, help="seconds allowed per cell (default 120)")
    grade.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per submission (default 4096)")
    grade.add_argument("--sets", type=int, default=2,
                       help="secret input sets per exercise and student, derived from the instructor's secret "
                            "(default 2; every set must pass)")
    grade.add_argument("--force", nargs="*", metavar="STUDENT",
                       help="regrade even what has not changed: everyone, or the students named")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run submissions without bubblewrap (limits still apply); only for code you trust")
    report = commands.add_parser("report", help="write OUT/report.html and OUT/report/*.csv from a graded OUT")
    report.add_argument("out", type=Path, help="the folder autograde wrote (grades.csv, results/, workspace/)")
    export = commands.add_parser("export", help="write final grades (automatic + manual) for a gradebook import")
    export.add_argument("out", type=Path, help="the folder autograde wrote")
    export.add_argument("--format", choices=["canvas", "wide"], default="canvas",
                        help="canvas: Canvas's gradebook CSV; wide: student_id, one column per lesson, total")
    export.add_argument("--output", type=Path, help="where to write it (default OUT/export-FORMAT.csv)")
    export.add_argument("--canvas-id", default="SIS User ID", choices=["SIS User ID", "SIS Login ID", "ID"],
                        help="the Canvas column that holds the student folder names (default SIS User ID)")
    solutions = commands.add_parser("solutions", help="run every solution notebook headless")
    solutions.add_argument("--html", type=Path, help="also export readable HTML with the interactive figures here")
    solutions.add_argument("--lesson")
    solutions.add_argument("--workers", type=int, help="notebooks run at once (default: one per core)")
    args = parser.parse_args(argv)

    if args.command == "release":
        from grader.release import release as run_release
        for path in run_release(args.lesson, timing=not args.no_timing):
            print(f"wrote {path}")
    elif args.command == "check":
        from grader.check import problems
        found = problems()
        if found:
            print("notebooks are not clean or not up to date:\n  " + "\n  ".join(found)
                  + "\nrun `python -m grader release` and clear outputs, then commit.", file=sys.stderr)
            return 1
        print("notebooks are clean and up to date")
    elif args.command == "bundle":
        from grader.bundle import bundle as write_bundle
        files = write_bundle(args.dir)
        print(f"wrote the student bundle to {args.dir} ({len(files)} files): hand it to the class")
    elif args.command == "autograde":
        from grader.autograde import Options, autograde
        from grader.sandbox import Limits
        limits = Limits(wall_seconds=args.timeout or 0.0, cell_seconds=args.cell_timeout, memory_bytes=args.memory_mb * 2**20,
                        threads=max(1, (os.cpu_count() or 1) // max(1, args.workers)))
        autograde(args.submissions, args.out, args.lesson,
                  Options(limits, not args.unsafe_no_sandbox, max(1, args.sets), max(1, args.workers), args.scheduler,
                          None if args.force is None else tuple(args.force)))
        print(f"grades: {args.out / 'grades.csv'}\nfeedback: {args.out / 'feedback'}")
    elif args.command == "report":
        from grader.report import write as write_report
        print(f"report: {write_report(args.out)}")
    elif args.command == "export":
        from grader.export import export as write_export
        print(f"wrote {write_export(args.out, args.format, args.output, args.canvas_id)}")
    elif args.command == "solutions":
        from grader.solutions import run_solutions
        failures = run_solutions(args.lesson, args.html, args.workers)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
