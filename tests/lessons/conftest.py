"""Shared by the lesson tests: every test gets a fresh instructor secret of its own (test_answer_keys overrides
this with one secret per module, so that expectations computed once serve its many tests)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def secret(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_FILE", str(tmp_path / "secret"))
