"""What stands in for the library's answer to an exercise while that exercise is graded.

When the grader runs lesson L, the sandbox sees a generated copy of `utils` in which every object
declared as answering one of L's exercises (e.g. `metrics.interference` for `measure_interference`)
is a stub that calls `withhold`. Here, in the real library, nothing uses this module.
"""

from __future__ import annotations

REACHED: list[str] = []  # the stubs a submission called, reported with its results (informational only)


class WithheldAnswer(RuntimeError):
    """The submission called the library's own answer to an exercise that is being graded."""


def withhold(answer: str, exercise: str) -> None:
    REACHED.append(answer)
    raise WithheldAnswer(f"{answer} is what exercise `{exercise}` asks you to write: it is not available while "
                         "this lesson is graded. Use your own code instead.")
