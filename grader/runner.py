"""Runs one submission inside the sandbox. Standalone: the sandbox sees this file, never the grader package.

Reads a job (JSON) on stdin before any student code runs, then executes its cells in order in an
IPython shell and writes one JSON line per event to the file descriptor named by its first argument:
  {"event": "cell", "index", "grade_id", "error", "stdout", "stderr", "seconds"}
  {"event": "probe", "grade_id", "seed", "data" (utils.checks.encode_plain JSON) or "error"}
Nothing here decides a grade: the trusted grader judges the probes' plain data outside the sandbox.
A cell that runs past its time limit is interrupted and the next one runs; the grader kills the
whole sandbox when the submission's total time runs out.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import sys
import time

# Imported before any student code runs (see main), so that shadowing modules cannot replace them.
from utils.checks import CheckFailed, encode_plain

OUTPUT_LIMIT = 20_000  # characters of stdout/stderr kept per cell


class CappedText(io.TextIOBase):
    """A text stream that keeps the first OUTPUT_LIMIT characters and drops the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.size < OUTPUT_LIMIT:
            kept = str(text)[: OUTPUT_LIMIT - self.size]
            self.parts.append(kept)
            self.size += len(kept)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


class CellTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise CellTimeout("the cell ran past its time limit and was interrupted")


def describe(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"[:1000]


def run_cell(shell, source: str, timeout: float) -> tuple[str | None, str, str]:
    """Execute one cell with a time limit; returns (error or None, stdout, stderr)."""
    out, err = CappedText(), CappedText()
    sys.stdout, sys.stderr = out, err
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = shell.run_cell(source, store_history=False)
        error = describe(result.error_before_exec or result.error_in_exec)
    except BaseException as caught:  # noqa: BLE001 - a student's cell may raise anything, even at shutdown
        error = describe(caught)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return error, out.getvalue(), err.getvalue()


def run_probe(shell, probe: dict, function, seed: int, timeout: float) -> dict:
    """Call the lesson's probe on the learner's object; only its plain data leaves this process."""
    record = {"event": "probe", "grade_id": probe["grade_id"], "seed": seed}
    if probe["object"] not in shell.user_ns:
        record["error"] = f"`{probe['object']}` is not defined: run or restore the exercise cell that defines it"
        return record
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    sys.stdout, sys.stderr = CappedText(), CappedText()
    try:
        record["data"] = encode_plain(function(shell.user_ns[probe["object"]], seed))
    except CheckFailed as failed:
        record["error"] = str(failed)[:2000]
    except BaseException as caught:  # noqa: BLE001
        record["error"] = f"calling `{probe['object']}` raised {describe(caught)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    return record


def main() -> None:
    job = json.loads(sys.stdin.read())
    events = os.fdopen(int(sys.argv[1]), "w", buffering=1)  # the descriptor the grader passed us
    import plotly.basedatatypes
    from IPython.core.interactiveshell import InteractiveShell

    plotly.basedatatypes.BaseFigure.show = lambda self, *args, **kwargs: None  # no browser, no display here
    # Look the probes up before any student code runs, so shadowing or reloading modules cannot swap them.
    # (A submission can still tamper with them in memory; the judge, outside, re-derives every answer.)
    probes = {cell["probe"]["grade_id"]: getattr(importlib.import_module(cell["probe"]["module"]), cell["probe"]["probe"])
              for cell in job["cells"] if cell.get("probe")}
    shell = InteractiveShell.instance(colors="nocolor", ast_node_interactivity="none")
    # Errors are reported as one line per cell; a printed traceback would quote the instructor's test code.
    shell.showtraceback = shell.showsyntaxerror = lambda *args, **kwargs: None
    for cell in job["cells"]:
        if cell.get("source"):
            start = time.perf_counter()
            error, out, err = run_cell(shell, cell["source"], job["cell_timeout"])
            events.write(json.dumps({"event": "cell", "index": cell["index"], "grade_id": cell.get("grade_id"),
                                     "error": error, "stdout": out, "stderr": err,
                                     "seconds": round(time.perf_counter() - start, 3)}) + "\n")
        for seed in (cell.get("probe") or {}).get("seeds", []):
            probe = cell["probe"]
            events.write(json.dumps(run_probe(shell, probe, probes[probe["grade_id"]], seed, job["cell_timeout"])) + "\n")
    events.write(json.dumps({"event": "done"}) + "\n")
    events.flush()
    os._exit(0)  # skip interpreter teardown: atexit hooks a submission registered must not run


if __name__ == "__main__":
    main()
