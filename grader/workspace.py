"""The grading workspace: an nbgrader course folder outside the repo, for nbgrader's formgrader.

OUT/workspace/ holds source/ (the lessons' nbgrader sources), autograded/ (each graded submission),
gradebook.db (automatic scores, and the manual ones instructors enter in formgrader) and logs/.
nbgrader itself only registers the lessons here (generate_assignment, in a subprocess); running and
judging submissions is grader.sandbox's and grader.trusted's job.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from grader.lessons import solutions_dir

CONFIG = Path(__file__).with_name("nbgrader_config.py")


class NbgraderFailed(Exception):
    """An nbgrader command failed or ran out of time; the message is the reason for the grades table."""


def prepare(workspace: Path, lessons: list[str]) -> Path:
    """Create or refresh the workspace and register each lesson in its gradebook."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "logs").mkdir(exist_ok=True)
    shutil.copyfile(CONFIG, workspace / "nbgrader_config.py")
    for lesson in lessons:
        target = workspace / "source" / lesson
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(solutions_dir() / lesson, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        run_nbgrader(workspace, ["generate_assignment", lesson, "--force"], log=f"generate-{lesson}", timeout=300)
    return workspace


def nbgrader_env() -> dict[str, str]:
    """nbgrader calls tools (alembic, jupyter) by name: put this environment's bin/ first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_nbgrader(workspace: Path, args: list[str], log: str, timeout: float) -> None:
    """Run `nbgrader ARGS` in the workspace in a new process group; kill the whole group on timeout."""
    log_path = workspace / "logs" / f"{log}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=workspace, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   env=nbgrader_env())
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise NbgraderFailed(f"grading took longer than {timeout:.0f} s and was stopped") from None
        finally:
            _kill_leftovers(process.pid)
    if returncode != 0:
        raise NbgraderFailed(_last_error(log_path) or f"nbgrader {args[0]} exited with status {returncode}")


def _kill_leftovers(pgid: int) -> None:
    """Kernels or children a submission started must not outlive its grading."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _last_error(log_path: Path) -> str:
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "[ERROR]" in line or "Error" in line]
    return (errors or lines or [""])[-1][:300]
