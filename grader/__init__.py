"""The instructor's side of the course: answer keys, release, sandboxed grading, reports and exports."""

import atexit
import functools
import gc
import sys
import warnings

# nbgrader's Gradebook adds submissions through SQLAlchemy 2 backrefs, which warns on every write ("Object of type
# <SubmittedAssignment> not in session ...") although nbgrader commits the objects itself: noise for the instructor.
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", module=r"nbgrader\.api")

# jsonschema (imported by nbformat) builds 38 Lark parsers when rfc3987_syntax is installed (jupyter-events pulls it
# in): about 1 s of every grader command's start-up. It only adds the "iri" string formats, which nbformat's
# notebook schema never uses, so the grader's processes go without it. (sys.modules[name] = None: import fails.)
sys.modules.setdefault("rfc3987_syntax", None)


@functools.cache
def skip_collection_at_exit() -> None:
    """Let this process exit without the interpreter's last garbage collection, which examines every object for
    cycles: 0.2-0.3 s of each grading process's exit (the CLI, a Dask worker) once torch, nbgrader or dask is
    imported. Nothing in the grader relies on a finaliser of cyclic garbage: files are closed and the gradebook
    committed where they are written. (Exit hooks that run after this one still have their own garbage collected.)"""
    atexit.register(gc.freeze)
