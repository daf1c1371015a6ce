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
(see :data:`tfrs_course.grading.worker.EXERCISE_HELPERS`). A worker loads only
the drivers of the lesson it grades and of the lessons those load
(:func:`load_required`): student code can reach whatever the worker holds, so
drivers never import the kit's answering modules either.
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


def _source(lesson: str, given: dict[str, tuple[str, str]] | None) -> tuple[str, str] | None:
    """A lesson's drivers as (file name, source), from ``given`` if set, else from its file; None if it has none."""
    if given is not None:
        return given.get(lesson)
    path = layout.lesson(lesson).drivers
    return (str(path), path.read_text(encoding="utf-8")) if path.is_file() else None


def required_lessons(lesson: str, given: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """The lessons whose drivers a lesson's drivers load (``load("...")``), directly or not; itself first.

    A lesson without drivers needs none. ``given`` (as :func:`sources` returns) is read
    instead of the files if set.
    """
    needed, pending = [], [lesson]
    while pending:
        current = pending.pop()
        found = None if current in needed else _source(current, given)
        if found is None:
            continue
        needed.append(current)
        filename, source = found
        for node in ast.walk(ast.parse(source, filename)):
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


def load_required(lesson: str, given: dict[str, tuple[str, str]] | None = None) -> list[types.ModuleType]:
    """The drivers a lesson's tests use: those of :func:`required_lessons`, and no other lesson's.

    A grading worker loads only these, so what it holds is what its own lesson's tests run.
    ``given`` (as :func:`sources` returns) is read instead of the files if set.
    """
    needed = required_lessons(lesson, given)
    _sources.update({other: found for other in needed if (found := _source(other, given)) is not None})
    try:
        return [load(other) for other in reversed(needed)]  # what a lesson loads comes before it
    finally:
        _sources.clear()  # loaded: the text is not kept where later code could read it
