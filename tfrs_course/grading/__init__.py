"""Grading: the exercise format's tests, the in-notebook check, and batch grading.

Tests (in ``autograder/``) use :func:`graded`, :func:`expect_same` and
:func:`describe_call`; notebooks use :class:`Checker`.
"""

from tfrs_course.grading.assertions import describe_call, expect_same
from tfrs_course.grading.check import Checker
from tfrs_course.grading.runner import graded, run_tests
from tfrs_course.grading.submission import StudentCode, StudentCodeError

__all__ = ["Checker", "StudentCode", "StudentCodeError", "describe_call", "expect_same", "graded", "run_tests"]
