"""Visible checks of lesson 03 (importance vs sparsity): every exercise uses the default probe, `calls`."""

from utils.checks import LessonChecks

checks = LessonChecks("03_importance_sparsity")
check = checks.check
