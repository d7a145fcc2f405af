"""Grading at scale: a Dask cluster gives the same grades, a killed batch resumes, re-grading is idempotent."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import synthetic

pytestmark = pytest.mark.slow
LESSON = "01_superposition_basics"


def make_class(subs: Path, size: int) -> dict[str, float]:
    """`size` students with 0, 1, 2, ... exercises solved; returns the score each must get."""
    exercises, points = synthetic.exercises(LESSON), synthetic.tests_of(LESSON)
    expected = {}
    for k in range(size):
        solved = exercises[: k % (len(exercises) + 1)]
        synthetic.write_submission(synthetic.make_submission(LESSON, solved), subs, f"s{k:02d}", LESSON)
        expected[f"s{k:02d}"] = sum(points[e.replace("ex_", "test_")] for e in solved)
    return expected


def grade(subs: Path, out: Path, *extra: str, background: bool = False):
    cmd = [sys.executable, "-m", "grader", "autograde", str(subs), "--out", str(out), *extra]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def scores(out: Path) -> dict[str, float]:
    with (out / "grades.csv").open() as f:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}


def test_a_local_dask_cluster_grades_like_local_workers_and_leaves_torch_to_them(tmp_path: Path):
    """The workers build the jobs (from each submission's inputs key) and judge them; the grading process only
    inspects and records, and never imports torch (issue 17: it was 1-1.5 s of every run's serial start)."""
    expected = make_class(tmp_path / "subs", 4)
    run = subprocess.run([sys.executable, "-c", "import sys\nfrom grader.__main__ import main\n"
                          f"main(['autograde', {str(tmp_path / 'subs')!r}, '--out', {str(tmp_path / 'out')!r}, "
                          "'--scheduler', 'local', '--workers', '2'])\n"
                          "print('torch imported' if 'torch' in sys.modules else 'no torch')"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert scores(tmp_path / "out") == expected
    assert "class report: " in run.stdout and run.stdout.strip().endswith("no torch"), run.stdout


def test_a_killed_batch_resumes_and_regrading_is_idempotent(tmp_path: Path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    expected = make_class(subs, 6)
    process = grade(subs, out, "--workers", "1", background=True)
    deadline = time.monotonic() + 300
    while not list((out / "results").rglob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the grader and every sandbox it started
    process.wait()
    finished = len(list((out / "results").rglob("*.json")))
    assert 1 <= finished < 6, "the grader should have been killed mid-batch"

    with sqlite3.connect(out / "workspace" / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with (out / "grades.csv").open() as f:
        assert len(list(csv.DictReader(f))) >= finished  # a complete table, never half a file

    resumed = grade(subs, out, "--workers", "2")
    assert f"{finished} unchanged since the last run" in resumed.stdout
    assert scores(out) == expected
    table = (out / "grades.csv").read_bytes()
    again = grade(subs, out)
    assert "6 unchanged since the last run" in again.stdout
    assert (out / "grades.csv").read_bytes() == table
    with sqlite3.connect(out / "workspace" / "gradebook.db") as db:
        rows = db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0]
    assert rows == 6, "each student has exactly one submission in the gradebook"


def test_the_local_cluster_runs_without_the_periodic_work_nothing_reads():
    import dask
    from dask.distributed import Client

    from grader.autograde import local_cluster

    def settings() -> tuple:
        return tuple(dask.config.get(key) for key in ("distributed.worker.profile.enabled",
                                                      "distributed.admin.system-monitor.interval",
                                                      "distributed.admin.tick.interval"))

    with local_cluster(1) as cluster, Client(cluster) as client:
        assert list(client.run(settings).values()) == [(False, "10s", "1s")]  # the worker process got the settings
        client.restart()  # as its nanny restarts a worker that died
        assert list(client.run(settings).values()) == [(False, "10s", "1s")]
        assert "stealing" not in cluster.scheduler.extensions
        assert all(nanny.memory_manager.memory_monitor_interval == 1.0 for nanny in cluster.workers.values())
    assert settings() != (False, "10s", "1s"), "the settings must not leak into this process's Dask config"
