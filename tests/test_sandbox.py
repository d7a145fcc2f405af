"""The sandbox's own limits, each measured by a job that tries to pass it (issue 12)."""

from __future__ import annotations

import json
import os

import pytest

from grader import sandbox

pytestmark = pytest.mark.skipif(not sandbox.bwrap_available(), reason="bubblewrap is not installed")


def run(code: str, **limits) -> sandbox.Run:
    job = {"cells": [{"index": 0, "grade_id": None, "source": code}], "cell_timeout": 60}
    return sandbox.run(json.dumps(job), sandbox.Limits(wall_seconds=90, **limits))


def cell_output(result: sandbox.Run) -> str:
    events = [json.loads(line) for line in result.events.splitlines() if line.startswith("{")]
    return "".join(e.get("stdout", "") + (e.get("error") or "") for e in events if e.get("event") == "cell")


def test_no_grader_variable_is_readable_anywhere_inside(monkeypatch):
    monkeypatch.setenv("GRADER_CANARY", "canary-7f3a")
    result = run("""
import glob, os
seen = [str(dict(os.environ))]
for path in glob.glob("/proc/*/environ"):
    try:
        seen.append(open(path, "rb").read().decode(errors="replace"))
    except OSError as error:
        seen.append(type(error).__name__)
print("canary" in "".join(seen), len(seen))
""")
    assert result.status == "finished", result.detail
    assert cell_output(result).startswith("False"), cell_output(result)


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm"])
def test_ram_backed_folders_count_towards_the_disk_quota(folder):
    result = run(f"""
import os, time
for i in range(40):
    try:
        with open("{folder}/junk%d" % i, "wb") as f:
            f.write(b"0" * (4 * 2**20))
    except OSError as error:
        print("refused:", error)
        break
time.sleep(5)
""", scratch_bytes=32 * 2**20)
    assert result.status == "killed" and "/dev/shm together" in result.detail, (result.status, result.detail)


def test_the_memory_limit_holds_for_all_processes_together():
    result = run("""
import os, time
size = 500 * 2**20
for _ in range(3):
    if os.fork() == 0:
        block = bytearray(size)
        block[::4096] = b"x" * (size // 4096)   # touch every page: resident, not just reserved
        time.sleep(30)
        os._exit(0)
time.sleep(30)
""", memory_bytes=1200 * 2**20)
    assert result.status == "killed" and "memory" in result.detail, (result.status, result.detail)
