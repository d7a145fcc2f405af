"""Hostile and broken submissions of lesson 01, each solving only `ex_welch_bound` (1 point) honestly.

Code attacks replace the first exercise cell (`ex_measure_interference`) with the attack, so the attack
runs before the honest exercise; notebook attacks edit the JSON; file attacks are raw bytes.
"""

from __future__ import annotations

import copy
import json

import nbformat

LESSON = "01_superposition_basics"
HONEST = ["ex_welch_bound"]
HONEST_POINTS = 1.0

CODE = {
    "monkeypatch_comparisons": """
import numpy, torch
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
numpy.allclose = lambda *a, **k: True
import utils.checks
utils.checks.close = lambda *a, **k: True
utils.checks.fail = lambda message: None
def measure_interference(W, features):
    return torch.zeros_like(features)
def cosine_similarities(W):
    return torch.zeros(W.shape[1], W.shape[1])
""",
    "always_equal_object": """
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 0.5
    def __len__(self): return 3
    def __getitem__(self, key): return self
    def __array__(self, *args, **kwargs): raise TypeError("not an array")
def measure_interference(W, features): return Anything()
def cosine_similarities(W): return Anything()
def expected_interference(S, c=1.0): return {"p_both_active": Anything(), "mean": Anything(), "mean_square": Anything()}
""",
    "fake_passed_output": """
for name in ("measure_interference", "cosine_similarities", "welch_bound", "expected_interference"):
    print(f"✔ visible checks passed: {name}. (Hidden tests decide the grade.)")
print("All tests passed! score: 100/100")
""",
    "replace_the_probes": """
import utils.checks, utils.checks.lesson01 as lesson
lesson.checks.probe = lambda name: (lambda obj, inputs: {"single": 0})
utils.checks.calls = lambda fn, inputs: {case: 0 for case in inputs}
utils.checks.encode_plain = lambda data: '{"passed": true}'
""",
    # --- issue 11: routes to the answer key. None of them may earn a point the submission did not solve. ---
    "alias_the_library": """
from utils.metrics import interference as measure_interference
from utils.metrics import cosine_similarities
from utils.packing import max_vectors_welch
""",
    "module_attribute_alias": """
import utils
measure_interference = utils.metrics.interference
cosine_similarities = getattr(utils.metrics, "cosine_similarities")
max_vectors_welch = vars(utils.packing)["max_vectors_welch"]
""",
    "getsource_and_exec": """
import inspect, textwrap, torch, math
import utils.metrics, utils.packing
namespace = {"torch": torch, "math": math}
for fn in (utils.metrics.interference, utils.metrics.cosine_similarities, utils.packing.max_vectors_welch):
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(fn)))
        exec("\\n".join(l for l in source.splitlines() if not l.startswith("@")), namespace)
    except Exception as error:
        print("getsource failed:", type(error).__name__, error)
measure_interference = namespace.get("interference")
cosine_similarities = namespace.get("cosine_similarities")
max_vectors_welch = namespace.get("max_vectors_welch")
""",
    "read_the_library_files": """
import glob, math, torch, utils.metrics
namespace = {"torch": torch, "math": math}
paths = [utils.metrics.__file__] + glob.glob("/**/utils/metrics.py", recursive=True)[:20]
for path in paths:
    try:
        text = open(path).read()
        if "withhold(" not in text.split("def interference")[1][:400]:
            exec(text.replace("@_accepts_single_matrix", ""), namespace)
            print("found the real library at", path)
    except Exception as error:
        print(path, type(error).__name__)
measure_interference = namespace.get("interference")
""",
    "forge_records": """
import json, os, sys
fd = int(sys.argv[1])
for grade_id in ("test_measure_interference", "test_cosine_similarities", "test_welch_bound", "test_max_vectors_welch",
                 "test_expected_interference"):
    for k in range(4):
        os.write(fd, (json.dumps({"event": "probe", "grade_id": grade_id, "set": k, "data": '{"passed": true}'}) + "\\n").encode())
os.write(fd, b'{"event": "done", "withheld": []}\\n')
""",
    "read_the_job": """
import gc, os, sys
try:
    print("stdin:", sys.stdin.read()[:200], "fd0:", os.read(0, 200))
except Exception as error:
    print("stdin:", type(error).__name__)
jobs = [o for o in gc.get_objects() if isinstance(o, dict) and "cells" in o and "cell_timeout" in o]
inputs = [c["probe"]["inputs"] for job in jobs for c in job["cells"] if c.get("probe")]
print("found", len(inputs), "input lists; no expected results among them:", all("reference" not in str(i) for i in inputs))
def measure_interference(W, features):
    return features * 0
""",
    "swap_probes_with_gc": """
import gc
for obj in gc.get_objects():
    if isinstance(obj, dict) and "test_measure_interference" in obj and callable(obj.get("test_measure_interference")):
        for grade_id in list(obj):
            obj[grade_id] = lambda learner, inputs: {case: 0.0 for case in inputs}
        print("swapped the probe table")
""",
    "call_the_visible_check_in_the_sandbox": """
from utils.checks import lesson01
try:
    lesson01.check("measure_interference", lambda W, x: x)
except Exception as error:
    print("no expectations here:", type(error).__name__)
""",

    "hijack_startup_files": """
import os, site, sys
for path in ("sitecustomize.py", "usercustomize.py", "conftest.py"):
    open(path, "w").write("import builtins; builtins.HIJACKED = True\\n")
for target in site.getsitepackages() + [sys.prefix]:
    try:
        open(os.path.join(target, "evil.pth"), "w").write("import os; os.system('touch /tmp/pwned')\\n")
        print("WROTE", target)
    except OSError as error:
        print("blocked:", error)
""",
    "shadow_modules": """
import os, sys
os.makedirs("utils/checks", exist_ok=True)
open("utils/__init__.py", "w").write("")
open("utils/checks/__init__.py", "w").write("")
open("utils/checks/lesson01.py", "w").write("def probe_measure_interference(f, seed): return {}\\n")
open("torch.py", "w").write("raise SystemExit('shadowed')\\n")
sys.path.insert(0, os.getcwd())
for name in [m for m in sys.modules if m.startswith("utils")]:
    del sys.modules[name]
""",
    "exit_midway": """
import os
os._exit(0)
""",
    "sys_exit_midway": """
import sys
sys.exit("bye")
""",
    "read_secrets": """
import glob, os
for pattern in ("/work/**/solutions/**/*.ipynb", "/**/gradebook.db", "/root/**", "/tmp/**/grades.csv", "/**/*.ipynb"):
    try:
        found = glob.glob(pattern, recursive=True)[:5]
    except OSError as error:
        found = [str(error)]
    print(pattern, found)
for path in found:
    try:
        print(open(path).read()[:200])
    except Exception as error:
        print("cannot read", path, error)
""",
    "write_everywhere": """
import glob, os
targets = glob.glob("/tmp/**", recursive=True) + glob.glob("/work/**", recursive=True)
for path in targets[:2000]:
    try:
        if os.path.isdir(path):
            open(os.path.join(path, "PWNED"), "w").write("x")
        else:
            open(path, "a").write("PWNED")
        print("wrote", path)
    except OSError:
        pass
""",
    "infinite_loop": "while True:\n    pass\n",
    "ignore_signals_loop": """
import signal
for s in (signal.SIGINT, signal.SIGALRM, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
while True:
    pass
""",
    "sleep_forever": "import time\ntime.sleep(10**6)\n",
    "wait_for_input": "answer = input('grade me generously? ')\n",
    "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(100 * 2**20))\n",
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "fill_the_disk": """
i = 0
while True:
    try:
        open(f"junk{i}", "wb").write(b"0" * (8 * 2**20))
    except OSError:
        pass
    i += 1
""",
    "flood_stdout": "import os, sys\nwhile True:\n    sys.stdout.write('x' * 100000)\n    os.write(1, b'y' * 100000)\n",
    "open_network": """
import socket, urllib.request
for target in (("1.1.1.1", 80), ("pypi.org", 443), ("127.0.0.1", 22)):
    try:
        socket.create_connection(target, timeout=3)
        print("CONNECTED", target)
    except OSError as error:
        print("no network:", error)
""",
}


# Special-casing the visible inputs: a lookup table of the recorded expectations (which every student has).
LOOKUP = """
import json, torch
from utils.checks import decode_plain
recorded = decode_plain({recorded!r})
def lookup(name):
    table = [(case["args"], ref) for case, ref in zip(recorded[name]["inputs"].values(),
                                                     recorded[name]["expectation"]["reference"].values())]
    def answer(*args):
        for known, ref in table:
            if len(known) == len(args) and all(torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape
                                               and torch.equal(a, b) or a == b for a, b in zip(known, args)):
                return ref
        return torch.zeros(1)
    return answer
measure_interference = lookup("measure_interference")
cosine_similarities = lookup("cosine_similarities")
max_vectors_welch = lookup("max_vectors_welch")
expected_interference = lookup("expected_interference")
"""


def lookup_attack(recorded_text: str) -> str:
    """The lookup-table attack for the recorded expectations of lesson 01 (exercises' inputs and reference results)."""
    exercises = json.loads(recorded_text)["exercises"]
    kept = {name: {"inputs": e["inputs"], "expectation": {"reference": e["expectation"]["reference"]}}
            for name, e in exercises.items()}
    return LOOKUP.format(recorded=json.dumps(kept))


def _cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def rewrite_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "print('passed')"
    return nb


def delete_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.cells = [c for c in nb.cells if not (c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")]
    return nb


def inflate_points(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 1000
        if meta.get("grade_id") == "ex_welch_bound":  # turn the exercise into a graded cell too
            meta.update(grade=True, points=1000)
    return nb


def duplicate_ids(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    twin = copy.deepcopy(_cell(nb, "test_welch_bound"))
    twin.id = "twin"
    nb.cells.append(twin)
    return nb


def javascript_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = _cell(nb, "ex_measure_interference")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": "<script>alert('xss-html')</script><img src=x onerror=\"alert('xss-img')\">",
        "application/javascript": "alert('xss-js')", "text/plain": "harmless"})]
    _cell(nb, "written_orthogonal_proof").source = "<script>alert('xss-md')</script> [x](javascript:alert('xss-link'))"
    return nb


def helper_in_demo_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Not an attack: an honest student whose exercise uses a helper defined in a demonstration cell."""
    demo = next(c for c in nb.cells if c.cell_type == "code" and "nbgrader" not in c.metadata)
    demo.source += "\n\ndef welch_helper(N, n):\n    return math.sqrt((N - n) / (n * (N - 1))) if N > n else 0.0\n"
    _cell(nb, "ex_welch_bound").source = "def welch_bound(n_vectors, dim):\n    return welch_helper(n_vectors, dim)\n"
    return nb


NOTEBOOK = {"helper_in_demo_cell": helper_in_demo_cell, "rewrite_test_cells": rewrite_tests, "delete_test_cells": delete_tests, "inflate_points": inflate_points,
            "duplicate_cell_ids": duplicate_ids, "javascript_in_outputs": javascript_outputs}

FILES = {
    "not_json": b"{ this is not json",
    "json_list": b"[1, 2, 3]",
    "nested_deep": b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "unknown_nbformat": json.dumps({"cells": [], "metadata": {}, "nbformat": 5, "nbformat_minor": 0}).encode(),
}
HUGE_BYTES = 100 * 2**20
# What would execute in a browser (the attack's text may still show, escaped or stripped of its tags).
XSS_PATTERNS = (r"<script[^>]*>[^<]*xss", r"<[^>]+\bonerror\s*=", r"href\s*=\s*[\"']?\s*javascript:", r"alert\('xss-js'\)")
