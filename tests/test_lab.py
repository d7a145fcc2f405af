"""`make lab`, the README's main command, starts JupyterLab as whoever runs it (root included), without nbgrader's panels."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from grader.lessons import REPO

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_make_lab_serves_the_lessons_without_instructor_panels(tmp_path):
    port, token = free_port(), "course-test-token"
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True, env={**os.environ, "HOME": str(tmp_path)})
    try:
        status, page = 0, ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status != 200:
            time.sleep(1)
            try:
                status, page = get(f"http://127.0.0.1:{port}/lab?token={token}")
            except OSError:
                continue
        assert status == 200, (tmp_path / "lab.log").read_text()[-3000:]
        assert re.search(r'"disabledExtensions": \[[^\]]*"@jupyter/nbgrader"', page), "nbgrader's Lab panels are on"
        assert get(f"http://127.0.0.1:{port}/formgrader?token={token}")[0] == 404
        tree = get(f"http://127.0.0.1:{port}/api/contents/01_superposition_basics?token={token}")[1]
        assert "01_superposition_basics.ipynb" in tree and "01_superposition_basics.checks.json" in tree
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
    text = (tmp_path / "lab.log").read_text()
    assert "Running as root is not recommended" not in text and "No nbgrader_config.py" not in text, text[-2000:]
