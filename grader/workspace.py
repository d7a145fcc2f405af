"""The grading workspace: an nbgrader course folder outside the repo, for nbgrader's formgrader.

OUT/workspace/ holds source/ (the lessons' nbgrader sources), autograded/ (each graded submission),
gradebook.db (automatic scores, and the manual ones instructors enter in formgrader) and logs/.
nbgrader itself only registers the lessons here (generate_assignment, in one subprocess, which also keeps each
lesson's declared exercises for the class report); running and judging submissions is grader.sandbox's and
grader.trusted's job. A lesson is registered again only when its fingerprint changed (generated/<lesson>.sha256:
its source folder, the nbgrader config and version, and the grading code), or when the gradebook no longer has it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from grader.lessons import solutions_dir

CONFIG = Path(__file__).with_name("nbgrader_config.py")
# Read without importing nbgrader (0.6 s), which a grading worker never needs.
NBGRADER_VERSION = importlib.metadata.version("nbgrader")


class NbgraderFailed(Exception):
    """An nbgrader command failed or ran out of time; the message is the reason for the grades table."""


SKIPPED = (".ipynb_checkpoints", "__pycache__")  # neither copied nor fingerprinted


def prepare(workspace: Path, lessons: list[str], code_digest: str = "") -> Path:
    """Create or refresh the workspace and register each lesson in its gradebook (again only when it changed).

    `code_digest` names the grading code (grader.autograde.grading_code_digest): new code registers again.
    """
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "logs").mkdir(exist_ok=True)
    (workspace / "generated").mkdir(exist_ok=True)
    shutil.copyfile(CONFIG, workspace / "nbgrader_config.py")
    stale: dict[str, tuple[Path, str]] = {}  # lesson -> (its stamp, its fingerprint)
    for lesson in lessons:
        stamp, fingerprint = workspace / "generated" / f"{lesson}.sha256", lesson_fingerprint(lesson, code_digest)
        if _read(stamp) == fingerprint and registered(workspace, lesson):
            continue
        stamp.unlink(missing_ok=True)  # an interrupted registration is redone next time
        target = workspace / "source" / lesson
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(solutions_dir() / lesson, target, ignore=shutil.ignore_patterns(*SKIPPED))
        stale[lesson] = stamp, fingerprint
    done, error = generate(workspace, list(stale), timeout=120 + 60 * len(stale))
    for lesson in done:  # stamped even when another lesson failed: only that one is redone next time
        stamp, fingerprint = stale[lesson]
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(fingerprint)
        os.replace(tmp, stamp)
    if error:
        raise NbgraderFailed(error)
    return workspace


def lesson_fingerprint(lesson: str, code_digest: str) -> str:
    """Everything generate_assignment's output depends on: the lesson's files, nbgrader's config and version, our code."""
    digest = hashlib.sha256(f"{lesson}\0{NBGRADER_VERSION}\0{code_digest}\0".encode() + CONFIG.read_bytes())
    folder = solutions_dir() / lesson
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not set(relative.parts) & set(SKIPPED):
            digest.update(f"\0{relative}\0{path.stat().st_size}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def registered(workspace: Path, lesson: str) -> bool:
    """Whether the gradebook lists the lesson and its generated copy is there (a deleted gradebook registers again)."""
    if not (workspace / "release" / lesson / f"{lesson}.ipynb").is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{workspace / 'gradebook.db'}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM assignment WHERE name = ?", (lesson,)).fetchone() is not None
    except sqlite3.Error:
        return False


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def nbgrader_env() -> dict[str, str]:
    """nbgrader calls tools (alembic, jupyter) by name: put this environment's bin/ first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def generate(workspace: Path, lessons: list[str], timeout: float) -> tuple[list[str], str | None]:
    """nbgrader's generate_assignment for each lesson, all in one process (`python -m grader.workspace`): nbgrader's
    imports cost about 3 s, a lesson's conversion a fraction of one (keeping its declared exercises loads its answer
    key, and torch: about 1 s, once).

    Returns (the lessons registered, why the others were not: None when every lesson was). Each lesson's log is
    logs/generate-<lesson>.log, the process's own output logs/generate.log.
    """
    if not lessons:
        return [], None
    logs = workspace / "logs"
    for lesson in lessons:
        (logs / f"generate-{lesson}.log").unlink(missing_ok=True)  # a reason is never read from an older run
    process = subprocess.Popen([sys.executable, "-m", "grader.workspace", *lessons], cwd=workspace,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                               start_new_session=True, env=nbgrader_env())
    error = None
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        error = f"registering the lessons took longer than {timeout:.0f} s and was stopped"
    finally:
        _kill_leftovers(process.pid)
    (logs / "generate.log").write_text(output)
    done = [line.removeprefix(REGISTERED) for line in output.splitlines() if line.startswith(REGISTERED)]
    failed = [lesson for lesson in lessons if lesson not in done]
    if failed and error is None:
        log = logs / f"generate-{failed[0]}.log"
        reason = _last_error(log if log.is_file() else logs / "generate.log")
        error = (f"nbgrader generate_assignment failed for {', '.join(failed)}: "
                 f"{reason or f'exit status {process.returncode}'}")
    return done, error


REGISTERED = "registered "


def _generate_here(lessons: list[str]) -> None:
    """In the workspace (the current folder): generate_assignment for each lesson, its log in logs/."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    api = NbGraderAPI(config=PyFileConfigLoader("nbgrader_config.py", path=".").load_config())
    for lesson in lessons:
        result = api.generate_assignment(lesson, force=True)
        Path("logs", f"generate-{lesson}.log").write_text(result.get("log", "") + result.get("error", ""))
        if result["success"]:
            _keep_declared(lesson)
            print(REGISTERED + lesson, flush=True)


def _keep_declared(lesson: str) -> None:
    """The lesson's declared exercises, for the class report (grader.report.declared_exercises), which then
    needs no answer key (nor torch) in the grading process; the report makes them itself if this fails."""
    import nbformat

    from grader.lessons import source_notebook
    from grader.report import declared_exercises
    try:
        declared_exercises(lesson, nbformat.read(source_notebook(lesson), as_version=4), Path.cwd())
    except Exception as error:  # noqa: BLE001 - the lesson is registered all the same
        print(f"the declared exercises of {lesson} were not kept: {type(error).__name__}: {error}", flush=True)


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


if __name__ == "__main__":
    _generate_here(sys.argv[1:])
