"""The instructor's side of the course: answer keys, release, sandboxed grading, reports and exports."""

import sys
import warnings

# nbgrader's Gradebook adds submissions through SQLAlchemy 2 backrefs, which warns on every write ("Object of type
# <SubmittedAssignment> not in session ...") although nbgrader commits the objects itself: noise for the instructor.
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", module=r"nbgrader\.api")

# jsonschema (imported by nbformat) builds 38 Lark parsers when rfc3987_syntax is installed (jupyter-events pulls it
# in): about 1 s of every grader command's start-up. It only adds the "iri" string formats, which nbformat's
# notebook schema never uses, so the grader's processes go without it. (sys.modules[name] = None: import fails.)
sys.modules.setdefault("rfc3987_syntax", None)
