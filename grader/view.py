"""The sandbox's view of `utils` while a lesson is graded: the library, with that lesson's answers withheld.

Every object an exercise declares in `answers` ("utils.metrics.interference", "utils.ToyModel" via its
defining module "utils.model.ToyModel") is replaced, in a generated copy of the package, by a stub with
the same name and signature that raises `utils.withheld.WithheldAnswer`. The copy is made from the
source with `ast`, so the answer's code is not in it at all: no early alias, `inspect.getsource` or
reading the .py file inside the sandbox finds it. Copies are cached by content under the output folder.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
from pathlib import Path

from grader.sandbox import UTILS


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, answer: str, exercise: str) -> ast.FunctionDef:
    body = ast.parse(f"from utils.withheld import withhold\nwithhold({answer!r}, {exercise!r})").body
    return ast.FunctionDef(name=node.name, args=node.args, body=body, decorator_list=[], returns=None,
                           type_params=[])


KEPT_DECORATORS = ("staticmethod", "classmethod", "property")  # how a method is reached (and x.setter), not what it does


def _stub_class(node: ast.ClassDef, answer: str, exercise: str) -> ast.ClassDef:
    """The class without its bases, whose constructor and every method it defines raise WithheldAnswer: a static
    method (TopKSparseAutoencoder.top_k) is withheld too, not missing."""
    stub = ast.parse(f"class {node.name}:\n"
                     "    def __init__(self, *args, **kwargs):\n"
                     "        from utils.withheld import withhold\n"
                     f"        withhold({answer!r}, {exercise!r})\n").body[0]
    for method in node.body:
        if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) and method.name != "__init__":
            withheld = _stub_function(method, answer, exercise)
            withheld.decorator_list = [d for d in method.decorator_list
                                       if (isinstance(d, ast.Name) and d.id in KEPT_DECORATORS)
                                       or (isinstance(d, ast.Attribute) and d.attr in ("setter", "getter", "deleter"))]
            stub.body.append(withheld)
    return stub


def _withhold_in(path: Path, names: dict[str, tuple[str, str]]) -> str:
    """The module at `path` with each top-level def or class in `names` (name -> (answer, exercise)) stubbed."""
    tree = ast.parse(path.read_text())
    found = set()
    for k, node in enumerate(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            answer, exercise = names[node.name]
            stub = _stub_class if isinstance(node, ast.ClassDef) else _stub_function
            tree.body[k] = stub(node, answer, exercise)
            found.add(node.name)
    missing = set(names) - found
    if missing:
        raise ValueError(f"{path}: no top-level definition of {', '.join(sorted(missing))} to withhold")
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def module_file(module: str) -> Path:
    """utils.a.b -> utils/a/b.py or utils/a/b/__init__.py."""
    parts = module.split(".")
    if parts[0] != "utils":
        raise ValueError(f"{module}: only objects of the utils package can be withheld")
    base = UTILS.joinpath(*parts[1:])
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def withheld_view(answers: dict[str, str], cache: Path) -> Path:
    """A copy of utils/ with `answers` (dotted object name -> exercise) stubbed; returns the copy's utils folder."""
    by_file: dict[Path, dict[str, tuple[str, str]]] = {}
    for answer, exercise in sorted(answers.items()):
        module, _, name = answer.rpartition(".")
        by_file.setdefault(module_file(module), {})[name] = (answer, exercise)
    sources = sorted(p for p in UTILS.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256(repr(sorted(answers.items())).encode() + Path(__file__).read_bytes())  # and how stubs are made
    for path in sources:
        digest.update(str(path.relative_to(UTILS)).encode() + path.read_bytes())
    target = cache / digest.hexdigest()[:20] / "utils"
    if target.is_dir():
        return target
    staging = cache / f".staging-{os.getpid()}-{digest.hexdigest()[:8]}"
    shutil.rmtree(staging, ignore_errors=True)
    for path in sources:
        copy = staging / "utils" / path.relative_to(UTILS)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(_withhold_in(path, by_file[path]) if path in by_file else path.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staging / "utils", target)
    except OSError:  # another grading process made the same view first
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return target
