"""Run a lesson's autograder tests against one or many students, and collect scores.

A lesson's tests live in ``autograder/<lesson>/test_<lesson>.py``. Each test takes two
fixtures, ``student`` and ``reference`` (both :class:`StudentCode`), and is
marked with :func:`graded`, which says which exercise it checks, how many
points it is worth, and whether it is hidden. The same tests serve the
in-notebook ``check()``, the batch grader and nbgrader (through ``check()``).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tfrs_course import layout
from tfrs_course.grading import boundary
from tfrs_course.grading.results import ExercisePoints, TestResult
from tfrs_course.grading.student_code import StudentCode, StudentCodeError

MARKER = "graded"


def graded(exercise: str, points: float = 1.0, hidden: bool = False):
    """Mark a test as graded.

    Args:
        exercise: the exercise it checks (the answer cell's nbgrader grade id).
        points: what passing it is worth.
        hidden: hidden tests run only when the lesson is graded; students see
            their names and results in feedback, never their code or messages.
    """
    return pytest.mark.graded(exercise=exercise, points=float(points), hidden=hidden)


class GradingError(RuntimeError):
    """The tests themselves could not run (a broken test module, not a broken submission)."""


class ReferenceCode(StudentCode):
    """The reference solution, which answers each distinct call once per grading process.

    Every submission's tests ask the reference the same questions (train this
    model on these batches, rank these items...), and for a model lesson the
    answers cost seconds each. They are plain data, kept encoded and decoded
    afresh for each test, so no test can change what the next one receives.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._answers: dict[tuple[str, bytes], bytes] = {}

    def call(self, function_name: str, *args: Any, **kwargs: Any) -> Any:
        compute = super().call
        return self._answer(function_name, compute, function_name, args, kwargs)

    def run(self, driver: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        compute = super().run
        return self._answer(f"{driver.__module__}.{driver.__qualname__}", compute, driver, args, kwargs)

    def _answer(self, name: str, compute: Callable[..., Any], target: Any, args: tuple, kwargs: dict) -> Any:
        key = (name, boundary.encode([list(args), kwargs]))
        if key not in self._answers:
            self._answers[key] = boundary.encode(compute(target, *args, **kwargs))
        return boundary.decode(self._answers[key])


_reference_cache: dict[tuple[str, float], ReferenceCode] = {}


def reference_code(lesson: str) -> ReferenceCode:
    """The reference solution: the master notebook graded as if it were a submission."""
    master = layout.lesson(lesson).master_notebook
    key = (str(master), master.stat().st_mtime)
    if key not in _reference_cache:
        _reference_cache[key] = ReferenceCode.from_notebook(master, master)
    return _reference_cache[key]


class _GradingPlugin:
    """pytest plugin: provides the fixtures, selects tests, and records results."""

    def __init__(
        self,
        lesson: str,
        students: dict[str, Callable[[], StudentCode]],
        exercises: Iterable[str] | None,
        visible: bool,
        hidden: bool,
        on_result: Callable[[TestResult], None] | None,
    ):
        self.lesson = lesson
        self.students = students
        self.exercises = set(exercises) if exercises is not None else None
        self.visible = visible
        self.hidden = hidden
        self.on_result = on_result
        self.results: list[TestResult] = []
        self.known_exercises: dict[str, ExercisePoints] = {}
        self.test_names: set[str] = set()
        self._built: dict[str, StudentCode] = {}
        self._started: dict[str, float] = {}

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", f"{MARKER}(exercise, points, hidden): a graded test")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "student" in metafunc.fixturenames:
            metafunc.parametrize("student", list(self.students), indirect=True)

    @pytest.fixture
    def student(self, request: pytest.FixtureRequest) -> StudentCode:
        student_id = request.param
        if student_id not in self._built:
            self._built[student_id] = self.students[student_id]()
        return self._built[student_id]

    @pytest.fixture(scope="session")
    def reference(self) -> StudentCode:
        return reference_code(self.lesson)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        selected, deselected = [], []
        counted = self.test_names
        for item in items:
            marker = item.get_closest_marker(MARKER)
            if marker is None:
                raise GradingError(f"{item.nodeid} has no @graded(...) marker: every test must be worth points")
            exercise, hidden = marker.kwargs["exercise"], marker.kwargs.get("hidden", False)
            totals = self.known_exercises.setdefault(exercise, ExercisePoints())
            if item.originalname not in counted:  # once per test, not once per student
                counted.add(item.originalname)
                self.known_exercises[exercise] = totals.adding(marker.kwargs.get("points", 1.0), hidden=hidden)
            wanted = (self.exercises is None or exercise in self.exercises) and (
                self.hidden if hidden else self.visible
            )
            (selected if wanted else deselected).append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        # Every visible test runs before any hidden one: student code that records the
        # inputs it is called with cannot show a hidden test's inputs in a visible
        # test's failure message, because no hidden input exists yet when those are made.
        selected.sort(key=lambda item: bool(item.get_closest_marker(MARKER).kwargs.get("hidden", False)))
        items[:] = selected

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._started[item.nodeid] = time.perf_counter()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        failed_here = call.excinfo is not None
        if call.when == "call" or (failed_here and call.when == "setup"):
            marker = item.get_closest_marker(MARKER)
            result = TestResult(
                student=item.callspec.params["student"] if hasattr(item, "callspec") else "",
                test=item.originalname,
                exercise=marker.kwargs["exercise"],
                points=marker.kwargs.get("points", 1.0),
                hidden=marker.kwargs.get("hidden", False),
                passed=not failed_here,
                message=_failure_message(call.excinfo) if failed_here else "",
                seconds=time.perf_counter() - self._started.get(item.nodeid, time.perf_counter()),
            )
            self.results.append(result)
            if self.on_result is not None:
                self.on_result(result)
        return report


def _failure_message(excinfo: pytest.ExceptionInfo) -> str:
    error = excinfo.value
    if isinstance(error, StudentCodeError | AssertionError):
        return str(error).strip()
    return f"{type(error).__name__}: {error}".strip()


@dataclass(frozen=True)
class LessonRun:
    """What a run of a lesson's tests found.

    Attributes:
        results: every selected test's result, for every student.
        exercises: each exercise of the lesson with its visible and hidden points.
        test_count: how many tests the lesson has (selected or not).
    """

    results: list[TestResult]
    exercises: dict[str, ExercisePoints]
    test_count: int


def run_tests(
    lesson: str,
    students: dict[str, Callable[[], StudentCode]],
    *,
    exercises: Iterable[str] | None = None,
    visible: bool = True,
    hidden: bool = True,
    on_result: Callable[[TestResult], None] | None = None,
) -> LessonRun:
    """Run a lesson's tests for each student.

    Args:
        lesson: the lesson's folder name, e.g. ``"01_baseline_metrics"``.
        students: submission id -> a function that builds that student's code.
        exercises: run only these exercises' tests (all if None).
        visible: run visible tests.
        hidden: run hidden tests.
        on_result: called with each result as it arrives (for progress bars).

    Returns:
        A :class:`LessonRun`.

    Raises:
        GradingError: the lesson has no tests, or pytest could not collect them.
        KeyboardInterrupt: SIGINT stopped the tests.
    """
    course = layout.course()
    module = course.lesson(lesson).tests
    if not module.is_file():
        raise GradingError(f"lesson {lesson!r} has no tests at {module}")
    plugin = _GradingPlugin(lesson, students, exercises, visible, hidden, on_result)
    args = [
        str(module),
        "-c", str(course.autograder_dir / "pytest.ini"),
        "--rootdir", str(course.autograder_dir),
        # Only pytest's own plugins and ours: a plugin that happens to be installed (pytest-randomly
        # reorders tests and reseeds random, pytest-xdist adds options) has no say in a verdict,
        # and looking for them costs a scan of every installed package per submission.
        "--disable-plugin-autoload",
        "-p", "no:cacheprovider",
        # Its clean-up runs the garbage collector again and again after every run: about
        # a second per submission in a process that holds TensorFlow, for warnings no one reads.
        "-p", "no:unraisableexception",
        "--import-mode=importlib",
        "--capture=sys",
        # pytest's own failure reports are never shown (the messages come from the exceptions), and
        # its other styles parse the source of every file in each failing test's traceback: seconds
        # per lesson of a class. Python's own format reads lines, no syntax trees.
        "--tb=native",
        "-q", "--no-header", "-rN", "-W", "ignore::DeprecationWarning",
    ]  # fmt: skip
    # pytest's own report is not for students: keep it, and show it only if the tests could not run.
    report = io.StringIO()
    with contextlib.redirect_stdout(report), _without_pytest_settings():
        exit_code = pytest.main(args, plugins=[plugin])
    if exit_code == pytest.ExitCode.INTERRUPTED:
        # pytest turns Ctrl-C into an exit code: it stops the grading, it is no verdict.
        raise KeyboardInterrupt
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise GradingError(f"pytest could not run {module} (exit code {int(exit_code)}):\n{report.getvalue()}")
    return LessonRun(plugin.results, plugin.known_exercises, len(plugin.test_names))


# Settings pytest reads from the environment: an instructor's `-x` or `-k` would drop tests
# from every verdict, and a plugin (or an option only a plugin knows) would fail every run.
PYTEST_SETTINGS = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")


@contextlib.contextmanager
def _without_pytest_settings() -> Iterator[None]:
    """The environment without :data:`PYTEST_SETTINGS` while the lesson's tests run; put back after."""
    saved = {name: os.environ.pop(name) for name in PYTEST_SETTINGS if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def describe_lesson(lesson: str) -> LessonRun:
    """A lesson's exercises, their points and its number of tests, without running any."""
    return run_tests(lesson, {}, visible=False, hidden=False)


def exercise_points(lesson: str) -> dict[str, ExercisePoints]:
    """Each exercise of a lesson with its visible and hidden points, read from its tests."""
    return describe_lesson(lesson).exercises
