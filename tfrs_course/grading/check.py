"""``check("exercise")``: students test their own work from inside a lesson notebook."""

from __future__ import annotations

import html
import sys
import warnings
from typing import TYPE_CHECKING, Any

from tfrs_course.grading.student_code import StudentCode

if TYPE_CHECKING:
    from tfrs_course.grading.results import TestResult


def _notebook_namespace() -> dict[str, Any]:
    """The namespace the student's cells run in: the IPython user namespace, else ``__main__``."""
    try:
        from IPython import get_ipython
    except ImportError:
        shell = None
    else:
        shell = get_ipython()
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


class Checker:
    """Runs one exercise's tests on the functions currently defined in the notebook.

    The lesson's setup cell makes one: ``check = Checker("01_baseline_metrics")``.
    Then ``check("top_k_accuracy")`` runs that exercise's visible tests and prints
    what passed, what failed, and a hint. A first failure gets the concept; the
    code-level hint comes when the same test fails again in this kernel, or with
    ``check("top_k_accuracy", hint=True)``.

    The cell's value is a :class:`CheckResult`: nbgrader reads its plain-text form
    (the points, a number) for partial credit; a notebook shows "2 of 4 points".
    When no test passes, ``check`` raises :class:`NoPointsYet` instead, so that
    nbgrader (and its Validate button) reports a failure rather than partial credit.

    Args:
        lesson: the lesson's folder name.
    """

    def __init__(self, lesson: str):
        self.lesson = lesson
        self._failed_before: set[str] = set()

    def __call__(self, exercise: str, hidden: bool = False, hint: bool = False) -> CheckResult:
        """Check one exercise.

        Args:
            exercise: the exercise's name, as in the lesson.
            hidden: run the hidden tests instead of the visible ones (done when
                the lesson is graded; their messages are never shown).
            hint: show the code-level hints of failed tests now.

        Returns:
            The points earned, as a :class:`CheckResult`.

        Raises:
            NoPointsYet: no test passed (the report is the error's text).
            ValueError: the lesson has no such exercise.
        """
        # Imported here: a lesson's setup cell creates a Checker, and the grading
        # worker runs that cell, so creating one must not load pytest.
        from tfrs_course.grading.assertions import code_hints
        from tfrs_course.grading.runner import run_tests

        namespace = _notebook_namespace()
        student = StudentCode(namespace, origin="this notebook")
        with warnings.catch_warnings(), code_hints(True if hint else self._failed_before):
            # nbgrader scores a test cell that writes to stderr as zero.
            warnings.simplefilter("ignore")
            run = run_tests(
                self.lesson, {"notebook": lambda: student}, exercises=[exercise], visible=not hidden, hidden=hidden
            )
        results = run.results
        if exercise not in run.exercises:
            raise ValueError(
                f"Lesson {self.lesson} has no exercise named {exercise!r}; its exercises are {sorted(run.exercises)}."
            )
        failed = {result.test for result in results if not result.passed}
        escalated = hint or failed <= self._failed_before
        self._failed_before |= failed
        report = format_report(exercise, results, hidden, offer_more_help=not escalated)
        earned = sum(result.score for result in results)
        if results and earned == 0:
            raise NoPointsYet(report)
        print(report)
        return CheckResult(earned, sum(result.points for result in results), exercise, hidden)


class CheckResult(float):
    """The points a check earned, labelled for people.

    nbgrader reads partial credit from the plain-text form of a test cell's
    value, so that form is the bare number; notebooks show the rich form,
    which says what the number is.
    """

    def __new__(cls, earned: float, possible: float, exercise: str, hidden: bool = False) -> CheckResult:
        result = super().__new__(cls, earned)
        result.possible, result.exercise, result.hidden = possible, exercise, hidden
        return result

    def __repr__(self) -> str:
        return repr(float(self))

    def label(self) -> str:
        kind = "hidden" if self.hidden else "visible"
        return f"{self.exercise}: {float(self):g} of {_points(self.possible)} on the {kind} tests"

    def _repr_html_(self) -> str:
        return f"<p><b>{html.escape(self.label())}</b></p>"


class NoPointsYet(Exception):
    """No test of the exercise passed. Its text is the check's report.

    Jupyter shows the report alone (through ``_render_traceback_``), not a traceback
    into the kit: the error is the student's to fix, and the report says how.
    """

    def __init__(self, report: str):
        super().__init__(report)
        self.report = report

    def _render_traceback_(self) -> list[str]:
        return self.report.splitlines()


def format_report(exercise: str, results: list[TestResult], hidden: bool, offer_more_help: bool = False) -> str:
    """A short report: one line per test, with the failure message for visible tests."""
    earned = sum(result.score for result in results)
    possible = sum(result.points for result in results)
    kind = "hidden" if hidden else "visible"
    lines = [f"{exercise}: {earned:g} of {_points(possible)} on the {kind} tests"]
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        lines.append(f"  {mark}  {result.test} ({result.points:g} pt)")
        if not result.passed and not hidden:
            lines.extend(f"        {line}" for line in result.message.splitlines())
    if results and all(result.passed for result in results) and not hidden:
        lines.append("  All visible tests pass. Hidden tests run when your work is graded.")
    elif offer_more_help and not hidden:
        lines.append(
            f'  Stuck? check("{exercise}", hint=True) adds a hint closer to the code; '
            "so does running this check again while the same test still fails."
        )
    return "\n".join(lines)


def _points(number: float) -> str:
    return f"{number:g} point" if number == 1 else f"{number:g} points"
