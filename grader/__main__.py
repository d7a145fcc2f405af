"""The grader CLI: python -m grader {release,check,autograde,solutions}."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate notebooks/<lesson>/ from solutions/<lesson>/")
    release.add_argument("--lesson")
    commands.add_parser("check", help="fail when notebooks/ is stale or a committed notebook has outputs")
    grade = commands.add_parser("autograde", help="grade SUBMISSIONS/<student_id>/<lesson>/<lesson>.ipynb")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--out", type=Path, required=True, help="where grades.csv, feedback/ and workspace/ go")
    grade.add_argument("--lesson", help="grade only this lesson")
    grade.add_argument("--timeout", type=float, default=900, help="seconds allowed per submission (default 900)")
    solutions = commands.add_parser("solutions", help="run every solution notebook headless")
    solutions.add_argument("--html", type=Path, help="also export readable HTML with the interactive figures here")
    solutions.add_argument("--lesson")
    args = parser.parse_args(argv)

    if args.command == "release":
        from grader.release import release as run_release
        for path in run_release(args.lesson):
            print(f"wrote {path}")
    elif args.command == "check":
        from grader.check import problems
        found = problems()
        if found:
            print("notebooks are not clean or not up to date:\n  " + "\n  ".join(found)
                  + "\nrun `python -m grader release` and clear outputs, then commit.", file=sys.stderr)
            return 1
        print("notebooks are clean and up to date")
    elif args.command == "autograde":
        from grader.autograde import autograde
        autograde(args.submissions, args.out, args.lesson, args.timeout)
        print(f"grades: {args.out / 'grades.csv'}\nfeedback: {args.out / 'feedback'}")
    elif args.command == "solutions":
        from grader.solutions import run_solutions
        failures = run_solutions(args.lesson, args.html)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
