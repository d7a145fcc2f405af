"""Visible checks of lesson 01 (superposition basics): every exercise uses the default probe, `calls`."""

from utils.checks import LessonChecks

checks = LessonChecks("01_superposition_basics")
check = checks.check
