"""The sandbox's own limits, each measured by a job that tries to pass it (issue 12)."""

from __future__ import annotations

import json
import time

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


def test_a_tree_too_deep_to_walk_recursively_does_not_blind_the_watchdog():
    """Red team: 1500 nested folders made os.walk raise RecursionError, and the sandbox then ran unwatched."""
    start = time.monotonic()
    result = run("""
import os, time
fd = os.open("/scratch", os.O_RDONLY)
for i in range(1500):
    os.mkdir("d", dir_fd=fd)
    fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
    os.close(old)
for i in range(80):
    if os.fork() == 0:
        time.sleep(45)
        os._exit(0)
time.sleep(60)
""", processes=64)
    assert result.status == "killed" and "processes" in result.detail, (result.status, result.detail)
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("name, code", [
    ("preallocated", """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
fd = os.open("/scratch/hidden", os.O_CREAT | os.O_WRONLY)
print("fallocate:", libc.fallocate(fd, 1, 0, 2 * 2**30), ctypes.get_errno())   # KEEP_SIZE: st_size stays 0
"""),
    ("unlinked", """
import os
for i in range(6):
    fd = os.open(f"/scratch/u{i}", os.O_CREAT | os.O_RDWR)
    os.unlink(f"/scratch/u{i}")
    try:
        for _ in range(15):
            os.write(fd, b"x" * 2**20)
    except OSError as error:
        print("refused:", error)
"""),
])
def test_disk_the_watchdog_cannot_see_by_name_is_still_bounded(name, code):
    """Red team: preallocated (KEEP_SIZE) and unlinked-but-open files were not counted against the quota."""
    result = run(code + "\nimport time\ntime.sleep(5)\n", scratch_bytes=32 * 2**20)
    output = cell_output(result)
    refused = "fallocate: -1" in output or "No space left" in output  # EFBIG or ENOSPC: the caps hold
    assert refused or (result.status == "killed" and "to disk" in result.detail), (result.status, result.detail, output)


def test_memfd_files_count_towards_the_memory_limit():
    """Red team: memfd pages are neither address space nor resident set; 4.4 GB were held under a 4 GB limit."""
    result = run("""
import os, time
held = []
for _ in range(40):
    fd = os.memfd_create("m")
    for _ in range(60):
        os.write(fd, b"x" * 2**20)
    held.append(fd)
time.sleep(30)
""", memory_bytes=1200 * 2**20)
    assert result.status == "killed" and "memory" in result.detail, (result.status, result.detail)


def test_a_process_that_still_sees_the_host_root_is_not_measured():
    """Seen in CI: while bwrap starts, its child's /proc/PID/root/tmp is the host's /tmp (a course clone, a venv),
    which once counted as the submission's disk use and stopped a blank notebook."""
    import os
    assert sandbox._inside([os.getpid()]) == []
