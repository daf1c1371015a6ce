"""``check("exercise")``: students test their own work from inside a lesson notebook."""

from __future__ import annotations

import ast
import contextlib
import functools
import html
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tfrs_course import layout
from tfrs_course.grading.program import (
    PARAMETERS_CELL_ID,
    SETUP_CELL_ID,
    cell_source,
    grade_id,
    is_answer_cell,
    normalised_source,
    python_source,
    read_notebook,
)
from tfrs_course.grading.reads import names_read, skipped_change_note, skipped_changes
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


@contextlib.contextmanager
def _tensorflow_logs_off() -> Iterator[None]:
    """Within it, TensorFlow's Python logger keeps its warnings to itself.

    Tests call a student's function with several shapes, so TensorFlow warns that
    it retraces a ``tf.function``: noise in a check's report, and on stderr.
    """
    logger = logging.getLogger("tensorflow")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


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
        with warnings.catch_warnings(), code_hints(True if hint else self._failed_before), _tensorflow_logs_off():
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
        report += lesson_variables_note(exercise, lesson_variables_used(exercise, namespace, self.lesson))
        report += "".join(f"\n  Note: {note}" for note in skipped_changes_used(exercise, namespace, self.lesson))
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


def bound_names(source: str) -> set[str]:
    """The names a cell binds at top level: assignments, loop targets, imports, functions, classes.

    Names bound inside functions, classes and comprehensions are their own, not the cell's.
    A cell that does not parse binds nothing.
    """
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return set()
    names: set[str] = set()
    scopes = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    pending: list[ast.AST] = [tree]
    while pending:
        for child in ast.iter_child_nodes(pending.pop()):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update(alias.asname or alias.name.split(".")[0] for alias in child.names)
            elif not isinstance(child, scopes):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.add(child.id)
                pending.append(child)
    return names


@functools.cache
def lesson_only_names(lesson: str) -> frozenset[str]:
    """Names that only the lesson's own cells define, never its setup, parameters or answer cells.

    Grading runs the setup and parameters cells and the student's answer cells, not
    the lesson's other cells (loading data, training), so an answer that reads one of
    these names works in the notebook and fails when graded.
    """
    master = read_notebook(layout.lesson(lesson).master_notebook)
    graded: set[str] = set()
    lesson_cells: set[str] = set()
    for cell in master["cells"]:
        if cell.get("cell_type") != "code":
            continue
        names = bound_names(cell_source(cell))
        run_when_graded = is_answer_cell(cell) or {grade_id(cell), cell.get("id")} & {SETUP_CELL_ID, PARAMETERS_CELL_ID}
        (graded if run_when_graded else lesson_cells).update(names)
    return frozenset(lesson_cells - graded)


def lesson_variables_used(exercise: str, namespace: dict[str, Any], lesson: str) -> list[str]:
    """The lesson-only names (see :func:`lesson_only_names`) the exercise's answer reads.

    Follows the functions and classes the notebook itself defines that the answer
    calls, so a helper that reads ``train`` counts too.

    Args:
        exercise: the exercise's name, which is the name of the function or class it defines.
        namespace: the notebook's namespace.
        lesson: the lesson's folder name.

    Returns:
        The names, sorted; empty if the answer reads none (or is not defined yet).
    """
    return sorted(names_read(exercise, namespace) & lesson_only_names(lesson) & set(namespace))


def skipped_changes_used(exercise: str, namespace: dict[str, Any], lesson: str) -> list[str]:
    """Notes on globals the answer reads that a skipped statement of a cell run in this kernel changes.

    The cells are the kernel's input history (IPython's ``In``), less the lesson's
    own cells as the lesson has them: what grading skips there is the lesson's
    business, and :func:`lesson_variables_used` covers what it defines.

    Args:
        exercise: the exercise's name (its function or class).
        namespace: the notebook's namespace.
        lesson: the lesson's folder name.

    Returns:
        One note per name, from :func:`~tfrs_course.grading.reads.skipped_change_note`.
    """
    history = namespace.get("In")
    if not isinstance(history, list) or exercise not in namespace:
        return []
    read = names_read(exercise, namespace)
    lesson_cells = lesson_code_cells(lesson)
    notes: dict[str, str] = {}
    for number, source in enumerate(history):
        if not isinstance(source, str) or normalised_source(source) in lesson_cells:
            continue
        for name, (line, what) in skipped_changes(source).items():
            if name in read and name not in notes:
                notes[name] = skipped_change_note(
                    exercise, name, f"line {line} of the cell numbered [{number}] when it ran", what
                )
    return [notes[name] for name in sorted(notes)]


@functools.cache
def lesson_code_cells(lesson: str) -> frozenset[str]:
    """The lesson's code cells as the master notebook has them (normalised)."""
    master = read_notebook(layout.lesson(lesson).master_notebook)
    return frozenset(
        normalised_source(cell_source(cell)) for cell in master["cells"] if cell.get("cell_type") == "code"
    )


def lesson_variables_note(exercise: str, names: list[str]) -> str:
    """A warning for the check's report when the answer reads lesson-only names ("" if it reads none)."""
    if not names:
        return ""
    listed = ", ".join(f"`{name}`" for name in names)
    one = len(names) == 1
    return (
        f"\n  Note: {exercise} uses {listed}, which only the lesson's own cells define. Grading runs the setup "
        f"and parameters cells and your answer cells, not the lesson's other cells, so {'it' if one else 'they'} "
        f"will not exist there and the tests will fail: compute {'it' if one else 'them'} in your answer cell, "
        f"or take {'it' if one else 'them'} as an argument."
    )


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
