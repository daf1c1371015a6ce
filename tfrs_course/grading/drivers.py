"""Drivers: trusted code that exercises a student's classes and models for the tests.

A driver is a module-level function ``driver(lookup, *args, **kwargs)`` that
gets the student's objects with ``lookup("Name")``, uses them, and returns
plain data (numbers, numpy arrays, lists, dicts). Tests run the same driver on
the reference solution and compare.

A lesson's drivers live beside its tests, in ``autograder/<lesson>/drivers.py``;
a test gets them with ``drivers = load("<lesson>")``. Each is loaded once per
process as the module ``tfrs_course.grading.drivers.<lesson>``, so a driver has
the same name in the grader and in the sandboxed worker (which is sent drivers
by name), and the worker forgets them with this module before student code runs
(see :data:`tfrs_course.grading.worker.EXERCISE_HELPERS`).
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import PurePath

from tfrs_course import layout

# Set by the sandboxed worker while it loads: lesson -> (file name, source), read
# while the course's files were still visible (the sandbox never shows them).
_sources: dict[str, tuple[str, str]] = {}


def module_name(lesson: str) -> str:
    return f"{__name__}.{lesson}"


def sources() -> dict[str, tuple[str, str]]:
    """Every lesson's drivers: lesson -> (file name, source). Lessons without drivers are left out."""
    course = layout.course()
    found = {}
    for lesson in course.lesson_folders():
        path = course.lesson(lesson).drivers
        if path.is_file():
            found[lesson] = (str(path), path.read_text(encoding="utf-8"))
    return found


def required_lessons(lesson: str) -> list[str]:
    """The lessons whose drivers a lesson's drivers load (``load("...")``), directly or not; itself first.

    A lesson without drivers needs none.
    """
    needed, pending = [], [lesson]
    while pending:
        current = pending.pop()
        path = layout.lesson(current).drivers
        if current in needed or not path.is_file():
            continue
        needed.append(current)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "load"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            ):  # fmt: skip
                pending.append(node.args[0].value)
    return needed


def is_driver_file(filename: str) -> bool:
    """Whether a traceback's file is a lesson's drivers (``autograder/<lesson>/drivers.py``)."""
    path = PurePath(filename)
    return path.name == "drivers.py" and path.parent.parent.name == "autograder"


def load(lesson: str) -> types.ModuleType:
    """The drivers of ``lesson`` (from ``autograder/<lesson>/drivers.py``), loaded once per process.

    Raises:
        FileNotFoundError: the lesson has no drivers.py.
    """
    name = module_name(lesson)
    if name in sys.modules:
        return sys.modules[name]
    if lesson in _sources:
        filename, source = _sources[lesson]
    else:
        path = layout.lesson(lesson).drivers
        if not path.is_file():
            raise FileNotFoundError(f"lesson {lesson!r} has no drivers at {path}")
        filename, source = str(path), path.read_text(encoding="utf-8")
    module = types.ModuleType(name, f"The trusted drivers of {lesson}.")
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(source, module.__file__, "exec"), vars(module))  # noqa: S102 - the course's own trusted code
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_all(given: dict[str, tuple[str, str]] | None = None) -> list[types.ModuleType]:
    """Every lesson's drivers, from ``given`` (as :func:`sources` returns) if set, else from their files."""
    if given is None:
        given = sources()
    _sources.update(given)
    try:
        return [load(lesson) for lesson in sorted(given)]
    finally:
        _sources.clear()  # loaded: the text is not kept where later code could read it
