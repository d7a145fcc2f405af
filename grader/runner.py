"""Runs one submission inside the sandbox. Standalone: the sandbox sees this file, never the grader package.

Reads a job (JSON) from a pipe on stdin before any student code runs, and closes it, then executes
its cells in order in an IPython shell and writes one JSON line per event to the file descriptor
named by its first argument:
  {"event": "cell", "index", "grade_id", "error", "stdout", "stderr", "seconds"}
  {"event": "probe", "grade_id", "set", "data" (utils.checks.encode_plain JSON) or "error", "seconds"}
  {"event": "done", "withheld": [library answers the submission called], "cpu_seconds": this process's, all told}
Nothing here decides a grade: the job holds the inputs, never the expected results, and the trusted
grader judges the learner's results against a reference it computes itself. (Student code shares this
process, so it can read the inputs or replace a probe; what it sends back is still only data.)
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

if len(sys.argv) > 2:  # unsandboxed runs: the withheld view of utils comes first on the path
    sys.path.insert(0, sys.argv[2])

# Imported before any student code runs (see main), so that shadowing modules cannot replace them.
from utils.checks import encode_plain  # noqa: E402

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


def run_probe(shell, grade_id: str, probe: dict, function, inputs, k: int, timeout: float) -> dict:
    """Call the lesson's probe on the learner's object; only its plain data leaves this process."""
    record = {"event": "probe", "grade_id": grade_id, "set": k}
    start = time.perf_counter()
    if probe["object"] not in shell.user_ns:
        record["error"] = f"`{probe['object']}` is not defined: run or restore the exercise cell that defines it"
        return record
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    sys.stdout, sys.stderr = CappedText(), CappedText()
    try:
        record["data"] = encode_plain(function(shell.user_ns[probe["object"]], inputs))
    except BaseException as caught:  # noqa: BLE001
        record["error"] = f"calling `{probe['object']}` raised {describe(caught)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def lesson_probe(probe: dict):
    """The probe of one exercise: from the lesson's checks module, or the default `utils.checks.calls`."""
    module = importlib.import_module(probe["module"])
    return module.checks.probe(probe["exercise"]) if hasattr(module, "checks") else module.calls


def read_job() -> dict:
    """The job from stdin, which is then closed: student code cannot read it back."""
    job = json.loads(sys.stdin.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return job


def main() -> None:
    job = read_job()
    events = os.fdopen(int(sys.argv[1]), "w", buffering=1)  # the descriptor the grader passed us
    import plotly.basedatatypes
    from IPython.core.interactiveshell import InteractiveShell

    from utils.checks import decode_plain
    from utils.withheld import REACHED

    plotly.basedatatypes.BaseFigure.show = lambda self, *args, **kwargs: None  # no browser, no display here
    # Look the probes up before any student code runs, so shadowing or reloading modules cannot swap them.
    # (A submission can still tamper with them in memory: what they return is only the learner's results,
    # which the grader judges against a reference the sandbox never has.)
    probes = {cell["grade_id"]: lesson_probe(cell["probe"]) for cell in job["cells"] if cell.get("probe")}
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
        for k, inputs in enumerate((cell.get("probe") or {}).get("inputs", [])):
            record = run_probe(shell, cell["grade_id"], cell["probe"], probes[cell["grade_id"]], decode_plain(inputs), k,
                               job["cell_timeout"])
            events.write(json.dumps(record) + "\n")
    cpu = os.times()  # interpreter start and imports included; for benchmarks, never for a grade
    events.write(json.dumps({"event": "done", "withheld": sorted(set(REACHED)),
                             "cpu_seconds": round(sum(cpu[:4]), 3)}) + "\n")
    events.flush()
    os._exit(0)  # skip interpreter teardown: atexit hooks a submission registered must not run


if __name__ == "__main__":
    main()
