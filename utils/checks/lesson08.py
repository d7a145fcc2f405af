"""Visible checks of lesson 08 (a real network: handwritten digits): every exercise uses the default probe, `calls`."""

from utils.checks import LessonChecks

checks = LessonChecks("08_real_network")
check = checks.check
