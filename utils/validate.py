"""`python -m utils.validate NOTEBOOK`: check a lesson notebook the way the grader will run it, before submitting.

The grader runs only the lesson's setup cells, your exercise cells and the cells you added, in a fresh
process, then checks each exercise (on secret inputs). This runs the same cells in a fresh process and
then each exercise's visible check, and says what would fail and why: an exercise that uses something
a demonstration cell defines (those cells are not run when grading), a function that is not defined
under the name the exercise asks for, a notebook saved under another name. It needs no grader and no
answer key: only the notebook and its `<lesson>.checks.json` beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from utils.checks import recorded


def plan(notebook: dict, lesson_cells: list[str]) -> list[dict]:
    """The cells the grader runs, in order: setup, exercise and added cells, and each test cell (the visible check)."""
    steps = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = "".join(cell["source"]) if isinstance(cell.get("source"), list) else str(cell.get("source", ""))
        if not isinstance(meta, dict):
            meta = {}
        if meta.get("grade_id") == "setup" or meta.get("solution"):
            steps.append({"kind": "exercise" if meta.get("solution") else "setup", "id": meta["grade_id"],
                          "source": source})
        elif meta.get("grade"):
            steps.append({"kind": "check", "id": meta.get("grade_id"), "source": source})
        elif not meta and cell.get("id") not in lesson_cells:
            steps.append({"kind": "added", "id": cell.get("id"), "source": source})
    return steps


def run_steps(steps: list[dict]) -> list[dict]:
    """Run the steps in this process (a fresh one: see main) and return each step's error, if any."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    shell.showtraceback = shell.showsyntaxerror = lambda *args, **kwargs: None
    results = []
    for step in steps:
        result = shell.run_cell(step["source"], store_history=False)
        error = result.error_before_exec or result.error_in_exec
        results.append({**step, "error": None if error is None else f"{type(error).__name__}: {error}"})
    return results


def defined_in_demonstrations(notebook: dict, lesson_cells: list[str], name: str) -> bool:
    """Whether one of the lesson's demonstration cells (not run when grading) defines or imports `name`."""
    pattern = rf"^\s*(def|class)\s+{name}\b|^\s*{name}\s*=|^\s*(from\s+\S+\s+)?import\b[^\n]*\b{name}\b"
    for cell in notebook.get("cells", []):
        source = "".join(cell["source"]) if isinstance(cell.get("source"), list) else str(cell.get("source", ""))
        if cell.get("cell_type") == "code" and not cell.get("metadata", {}).get("nbgrader") \
                and cell.get("id") in lesson_cells and re.search(pattern, source, re.MULTILINE):
            return True
    return False


def report(path: Path) -> tuple[bool, list[str]]:
    """(would every check pass?, the lines to show) for the notebook at `path`."""
    lesson = path.stem
    try:
        expected = recorded(lesson, near=path.parent)
    except FileNotFoundError:
        others = sorted(p.name.removesuffix(".checks.json") for p in path.parent.glob("*.checks.json"))
        hint = f" (this folder holds lesson {others[0]}: save the notebook as {others[0]}.ipynb)" if others else ""
        return False, [f"✘ {path.name}: the grader only grades a lesson notebook under its own name, "
                       f"<lesson>.ipynb{hint}."]
    notebook = json.loads(path.read_text(encoding="utf-8-sig"))
    cells = list(expected.get("cells", []))
    steps = plan(notebook, cells)
    done = subprocess.run([sys.executable, "-m", "utils.validate", "--run-steps"], input=json.dumps(steps),
                          capture_output=True, text=True, cwd=path.parent, timeout=900)
    try:
        results = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return False, [f"✘ the notebook stopped the run: {done.stderr.strip()[-500:]}"]
    lines, ok = [], True
    for step in results:
        error = step["error"]
        names = re.findall(r"name '(\w+)' is not defined", error or "")
        if step["kind"] == "check":
            name = str(step["id"]).removeprefix("test_")
            if error is None:
                lines.append(f"✔ {name}")
                continue
            ok = False
            why = error.removeprefix("CheckFailed: ")
            if names and names[0] == name:
                why = f"`{name}` is not defined: the grader looks for exactly this name (was it renamed?)"
            lines.append(f"✘ {name}: {why}")
        elif error is not None:
            lines.append(f"✘ cell {step['id']} ({step['kind']}) raised {error}")
        for missing in names:
            if defined_in_demonstrations(notebook, cells, missing):
                ok = False
                lines.append(f"  `{missing}` is defined in a demonstration cell, which grading does not run: move it "
                             "into the exercise cell that uses it (or into a new cell of your own).")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.validate", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path)
    parser.add_argument("--run-steps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_steps:
        results = run_steps(json.loads(sys.stdin.read()))
        print("\n" + json.dumps(results))
        return 0
    if args.notebook is None:
        parser.error("give the notebook to validate, e.g. notebooks/01_superposition_basics/01_superposition_basics.ipynb")
    ok, lines = report(args.notebook.resolve())
    print("\n".join(lines))
    print("Every check passes on its visible inputs; the grader runs the same checks on other inputs." if ok
          else "Fix what is marked ✘ before you submit.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
