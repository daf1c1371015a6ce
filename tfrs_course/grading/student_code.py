"""Student code as tests see it: something to call, that answers in plain data.

Tests never touch a student's objects. They ask ``student.call("name", ...)``
and get back what :mod:`tfrs_course.grading.boundary` decoded: fresh plain data.
Arguments travel the same way, so student code cannot change a test's inputs.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfrs_course.grading import boundary
from tfrs_course.grading.drivers import is_driver_file
from tfrs_course.grading.program import (
    AnswerCell,
    Program,
    build_program,
    cell_name,
    read_notebook,
    run_cell,
    without_copy_numbers,
)
from tfrs_course.grading.reads import names_read, skipped_change_note, skipped_changes

# Set on the module that student code runs in, so tracebacks say where code came from.
STUDENT_FILE = "<your notebook>"


class StudentCodeError(AssertionError):
    """Calling student code failed: the function is missing, unfinished or raised.

    An AssertionError, so a test that hits it fails (and loses its points) with
    this message as the reason, rather than erroring out of the grader.
    """


class StudentCode:
    """Student functions, called across the plain-data boundary.

    Args:
        namespace: the globals the student's functions live in.
        problems: per answer cell, why some of it could not be used.
        origin: a short description for messages (a path or "this notebook").
    """

    def __init__(self, namespace: dict[str, Any], problems: dict[str, str] | None = None, origin: str = ""):
        self._namespace = namespace
        self.problems = dict(problems or {})
        self.origin = origin

    @classmethod
    def from_notebook(cls, submission_path: str | Path, master_path: str | Path) -> StudentCode:
        """Build from a submitted notebook and the lesson's master (instructor) notebook."""
        master_path = Path(master_path)
        program = build_program(read_notebook(submission_path), read_notebook(master_path), master_path)
        return cls.from_program(program, origin=str(submission_path))

    @classmethod
    def from_program(cls, program: Program, origin: str = "") -> StudentCode:
        """Execute the setup code, then each of the student's cells, in a fresh namespace.

        Cells run by the rule in :mod:`tfrs_course.grading.program`. A statement
        that raises is recorded in ``problems`` and the rest still run, so one
        broken cell costs only the exercises that need it.
        """
        namespace: dict[str, Any] = {"__name__": "student_answers", "__file__": STUDENT_FILE}
        problems = dict(program.problems)
        # What the cells print while being defined is not feedback; keep it out of the grader's output.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(program.setup, "<setup cell>", "exec"), namespace)  # noqa: S102 - instructor's code
            for answer in program.answers:
                problem = run_cell(answer.source, namespace, answer.grade_id)
                if problem:
                    problems[answer.grade_id] = problem
        for cell, note in skipped_change_notes(program.answers, namespace).items():
            problems[cell] = f"{problems[cell]}; {note}" if cell in problems else note
        return cls(namespace, problems, origin)

    def call(self, function_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a student function with copies of the arguments; return its result as plain data.

        Raises:
            StudentCodeError: the function does not exist, raises (including
                ``NotImplementedError``), or returns something that is not plain data.
        """
        function = self._namespace.get(function_name)
        if not callable(function):
            raise StudentCodeError(self._missing_message(function_name))
        call_args = boundary.roundtrip(list(args))
        call_kwargs = boundary.roundtrip(kwargs)
        return self._as_plain_data(
            lambda: function(*call_args, **call_kwargs),
            not_written=lambda error: (
                f"{function_name}() is not written yet: it raised NotImplementedError. "
                "Replace the `raise NotImplementedError(...)` line with your code."
            ),
            raised=f"{function_name}() raised",
            unusable=f"{function_name}() returned something tests cannot use:",
        )

    def run(self, driver: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a trusted driver on the student's code and return its result as plain data.

        Some exercises are classes or models rather than functions of plain data.
        A driver (a module-level function in ``autograder/<lesson>/drivers.py``)
        builds and exercises them, e.g. "make the student's model from these
        weights, train one step on this batch, return the new weights", and
        returns plain data. It receives ``lookup(name)``, which returns the
        student's object of that name or fails with a teaching message.

        Args:
            driver: the driver function; called as ``driver(lookup, *args, **kwargs)``.
            *args: plain-data arguments (copied across the boundary).
            **kwargs: plain-data keyword arguments.

        Raises:
            StudentCodeError: the student's object is missing or unfinished, raised,
                or the driver's result is not plain data.
        """
        call_args = boundary.roundtrip(list(args))
        call_kwargs = boundary.roundtrip(kwargs)
        label = driver.__name__
        return self._as_plain_data(
            lambda: driver(self.lookup, *call_args, **call_kwargs),
            not_written=lambda error: (
                f"{label}: part of your code is not written yet (it raised NotImplementedError: {error})."
            ),
            raised=f"{label}: your code raised",
            unusable=f"{label}: the result cannot be used by the tests:",
            # lookup's own teaching messages (a missing or unfinished object) pass through as they are.
            passed_through=(StudentCodeError,),
        )

    def _as_plain_data(
        self,
        produce: Callable[[], Any],
        *,
        not_written: Callable[[NotImplementedError], str],
        raised: str,
        unusable: str,
        passed_through: tuple[type[BaseException], ...] = (),
    ) -> Any:
        """Run student code (``produce``) and return its result as plain data, or explain the failure.

        Args:
            produce: runs the student's code and returns its result.
            not_written: the message when it raises NotImplementedError, from that error.
            raised: how the message for any other exception starts.
            unusable: how the message for a result that is not plain data starts.
            passed_through: exceptions re-raised unchanged.
        """
        try:
            result = produce()
        except passed_through:
            raise
        except NotImplementedError as error:
            raise StudentCodeError(not_written(error)) from error
        except Exception as error:  # noqa: BLE001 - reported to the student, not swallowed
            raise StudentCodeError(
                self._with_problems(
                    without_copy_numbers(f"{raised} {type(error).__name__}: {error}\n{_student_frames(error)}")
                )
            ) from error
        try:
            return boundary.roundtrip(result)
        except boundary.BoundaryError as error:
            raise StudentCodeError(f"{unusable} {error}") from error

    def lookup(self, name: str) -> Any:
        """The student's object called ``name``, or a StudentCodeError that says it is missing."""
        if name not in self._namespace:
            raise StudentCodeError(self._missing_message(name))
        return self._namespace[name]

    def _with_problems(self, message: str) -> str:
        """A failure message, with what went wrong while the cells were defined (often the cause)."""
        if not self.problems:
            return message
        details = "; ".join(f"{cell_name(cell)}: {problem}" for cell, problem in self.problems.items())
        return f"{message.rstrip()}\nWhile your cells were being defined: {details}."

    def _missing_message(self, function_name: str) -> str:
        message = f"There is no function named {function_name}() in {self.origin or 'your notebook'}."
        if self.problems:
            details = "; ".join(f"{cell_name(cell)}: {problem}" for cell, problem in self.problems.items())
            return f"{message} Problems found: {details}."
        return f"{message} Did you rename it, or not run its cell?"


def skipped_change_notes(answers: list[AnswerCell], namespace: dict[str, Any]) -> dict[str, str]:
    """Per cell, a note when a statement grading skipped there changes a global the notebook's code reads.

    The readers are the functions and classes the cells defined (with the notebook's
    own helpers they call); see :mod:`tfrs_course.grading.reads`.
    """
    module = namespace.get("__name__")
    readers = {
        name: names_read(name, namespace)
        for name, value in namespace.items()
        if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module
    }
    notes: dict[str, str] = {}
    for answer in answers:
        for name, (line, what) in skipped_changes(answer.source).items():
            users = sorted(reader for reader, read in readers.items() if name in read)
            if users and answer.grade_id not in notes:
                notes[answer.grade_id] = skipped_change_note(users[0], name, f"line {line}", what)
    return notes


def _student_frames(error: BaseException) -> str:
    """The traceback lines that point into student cells, which is where the fix is."""
    kit_dir = str(Path(__file__).parents[1])
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith(kit_dir)
        and not is_driver_file(frame.filename)
        and "site-packages" not in frame.filename
        and "__autograph_generated_file" not in frame.filename
    ]
    return "".join(traceback.format_list(frames[-3:])).rstrip()
