"""Visible checks of lesson 05 (the sycophancy link): every exercise uses the default probe, `calls`."""

from utils.checks import LessonChecks

checks = LessonChecks("05_sycophancy_link")
check = checks.check
