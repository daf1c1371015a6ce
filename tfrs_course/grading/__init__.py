"""Grading: the exercise format's tests, the in-notebook check, and batch grading.

Tests (in ``autograder/``) use :func:`graded`, :func:`expect_same` and
:func:`describe_call`; notebooks use :class:`Checker`. Names are imported on
first use, so the sandboxed worker does not load pytest and the rest.
"""

from importlib import import_module

_EXPORTS = {
    "Checker": "tfrs_course.grading.check",
    "StudentCode": "tfrs_course.grading.student_code",
    "StudentCodeError": "tfrs_course.grading.student_code",
    "describe_call": "tfrs_course.grading.assertions",
    "expect_same": "tfrs_course.grading.assertions",
    "graded": "tfrs_course.grading.runner",
    "run_tests": "tfrs_course.grading.runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tfrs_course.grading' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
