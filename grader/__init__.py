"""The instructor's side of the course: answer keys, release, sandboxed grading, reports and exports."""

import warnings

# nbgrader's Gradebook adds submissions through SQLAlchemy 2 backrefs, which warns on every write ("Object of type
# <SubmittedAssignment> not in session ...") although nbgrader commits the objects itself: noise for the instructor.
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", module=r"nbgrader\.api")
