"""Comparisons whose failure messages teach: the call, what was expected, what came back, a hint.

Every failure has the same shape, whether the student's code returned a wrong
value or raised: the call with its inputs, then what went wrong (expected and
got, or the exception and the student's own lines), then a hint. Hints come in
two levels (:class:`Hint`): the concept always, the code-level pointer only when
asked for (see :func:`code_hints`), so that a first failure makes the student think.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_SHOW_CHARS = 300


@dataclass(frozen=True)
class Hint:
    """Help for a failed test, in two levels.

    Attributes:
        concept: the idea the test checks, in words; shown with every failure.
        code: where in the code to look (which function or argument); shown only
            after the same test failed before in the kernel, or on request.
            Never the answer itself.
    """

    concept: str
    code: str = ""

    def __add__(self, other: Hint) -> Hint:
        return Hint(f"{self.concept} {other.concept}", " ".join(part for part in (self.code, other.code) if part))


def graph_mode_hint(what: str, inputs: str = "its inputs are symbolic tensors") -> Hint:
    """The hint for code that failed where it runs as ``model.fit`` runs it: in a graph, batch size unknown.

    Args:
        what: the student's code, as "your ..." completes it ("compute_loss", "tower").
        inputs: what its inputs are in the graph ("the ids are a symbolic tensor").
    """
    return Hint(
        f"Your {what} runs here as model.fit runs it, in graph mode: {inputs}, whose batch size is unknown "
        "until the graph runs. If the error says len is not well defined for a symbolic tensor, that iterating "
        f"over a symbolic tensor is not allowed, or that a tensor has no .numpy(), your {what} must use "
        "TensorFlow operations only: tf.shape(x)[0] for the batch size, not len(x), and operations on whole "
        "tensors (tf.reduce_sum, tf.linalg.diag_part) rather than a Python loop over rows.",
        code="x.shape[0] is None in graph mode too; tf.shape(x)[0] is a tensor (tf.eye and tf.range accept it).",
    )


# Tests (by function name) whose code-level hints are shown; True for all. Set by check().
_code_hints_for: frozenset[str] | bool = frozenset()


@contextlib.contextmanager
def code_hints(tests: Iterable[str] | bool) -> Iterator[None]:
    """Show code-level hints for these tests (or all, with True) while the block runs."""
    global _code_hints_for
    saved = _code_hints_for
    _code_hints_for = tests if isinstance(tests, bool) else frozenset(tests)
    try:
        yield
    finally:
        _code_hints_for = saved


def _current_test() -> str:
    """The running test's function name, from the variable pytest sets while a test runs."""
    match = re.search(r"::([A-Za-z_][A-Za-z0-9_]*)", os.environ.get("PYTEST_CURRENT_TEST", ""))
    return match.group(1) if match else ""


def render_hint(hint: Hint | str) -> str:
    """The hint lines of a failure message: the concept, and the code-level hint if it is wanted."""
    if isinstance(hint, str):
        return f"  hint: {hint}"
    wanted = _code_hints_for is True or (_code_hints_for and _current_test() in _code_hints_for)
    if hint.code and wanted:
        return f"  hint: {hint.concept}\n  more help: {hint.code}"
    return f"  hint: {hint.concept}"


def student_call(student: Any, function: str, *args: Any, hint: Hint | str, **kwargs: Any) -> Any:
    """``student.call(function, ...)``; if it raises, fail with the call, the error and the hint."""
    with explained(describe_call(function, *args, **kwargs), hint):
        return student.call(function, *args, **kwargs)


def student_run(student: Any, driver: Callable[..., Any], *args: Any, call: str, name: str, hint: Hint | str) -> Any:
    """``student.run(driver, ...)``; if it raises, fail in the student's terms.

    Args:
        student: the student's code.
        driver: the grading driver that exercises it.
        *args: the driver's plain-data arguments.
        call: what the driver does, in the student's terms (names their function or class).
        name: the student's function or class the driver uses, which replaces the
            driver's own name in messages: students never see the kit's helpers.
        hint: the exercise's hint.
    """
    with explained(call, hint, internal_name=driver.__name__, name=name):
        return student.run(driver, *args)


def compare_call(
    student: Any, reference: Any, function: str, *args: Any, hint: Hint | str, check_index: bool = False, **kwargs: Any
) -> None:
    """Call ``function`` in the reference and the student's code on the same arguments; fail unless they agree.

    Args:
        student: the student's code.
        reference: the reference solution's code.
        function: the exercise's function name.
        *args: the call's plain-data arguments; **kwargs its keyword arguments.
        hint: the exercise's hint.
        check_index: also compare DataFrame/Series indexes.
    """
    expected = reference.call(function, *args, **kwargs)
    got = student_call(student, function, *args, hint=hint, **kwargs)
    expect_same(got, expected, call=describe_call(function, *args, **kwargs), hint=hint, check_index=check_index)


def compare_run(
    student: Any,
    reference: Any,
    driver: Callable[..., Any],
    *args: Any,
    call: str,
    name: str,
    hint: Hint | str,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> None:
    """Run ``driver`` on the reference and on the student's code; fail unless they agree.

    Args:
        student: the student's code.
        reference: the reference solution's code.
        driver: the grading driver that exercises the exercise.
        *args: the driver's plain-data arguments.
        call: what the driver does, in the student's terms (see :func:`student_run`).
        name: the student's function or class the driver uses.
        hint: the exercise's hint.
        rtol: relative tolerance for numbers.
        atol: absolute tolerance for numbers.
    """
    expected = reference.run(driver, *args)
    got = student_run(student, driver, *args, call=call, name=name, hint=hint)
    expect_same(got, expected, call=call, hint=hint, rtol=rtol, atol=atol)


def observed_runs(
    student: Any, reference: Any, driver: Callable[..., Any], *args: Any, call: str, name: str, hint: Hint | str
) -> tuple[dict, dict]:
    """Run a driver that reports observations (a dict) on the student's code and the reference; return both.

    For tests that make their verdict from several observations: a driver runs beside
    the student's code, which could change any verdict made there, so drivers report
    what they saw and the test decides, part by part, in the grader.

    Args:
        student, reference, driver, *args, call, name, hint: as for :func:`compare_run`.

    Returns:
        ``(got, expected)``: two dicts with the same keys.

    Raises:
        AssertionError: the student's report is not a dict with the reference's keys.
    """
    expected = reference.run(driver, *args)
    got = student_run(student, driver, *args, call=call, name=name, hint=hint)
    if not isinstance(got, dict) or set(got) != set(expected):
        expect_same(got, expected, call=call, hint=hint)  # fails, naming the parts that differ
    return got, expected


@contextlib.contextmanager
def explained(call: str, hint: Hint | str, internal_name: str = "", name: str = "") -> Iterator[None]:
    """Turn a failure of student code inside the block into the common report format."""
    from tfrs_course.grading.student_code import StudentCodeError

    try:
        yield
    except StudentCodeError as error:
        message = str(error)
        if internal_name:
            message = message.replace(f"{internal_name}: ", f"{name}: ").replace(internal_name, name)
        body = "\n".join(f"  {line}" for line in _without_library_frames(message).splitlines())
        raise StudentCodeError(f"{call}\n{body}\n{render_hint(hint)}") from None


# A traceback line of TensorFlow's "in user code:" listings, and the source line after it.
_FRAME_LINE = re.compile(r'^\s*File "([^"]+)", line \d+')


def _without_library_frames(message: str) -> str:
    """The message without frames in libraries or the kit, which TensorFlow copies into its errors."""
    lines, kept, skip_next = message.splitlines(), [], False
    for line in lines:
        if skip_next:
            skip_next = False
            if line.startswith(("        ", "\t\t")):
                continue
        match = _FRAME_LINE.match(line)
        if match and not _is_student_file(match.group(1)):
            skip_next = True
            continue
        kept.append(line)
    # TensorFlow introduces the frames it copies with "in user code:"; blank lines only spread the report out.
    kept = [line.removesuffix(" in user code:").removesuffix("in user code:").rstrip() for line in kept]
    return "\n".join(line for line in kept if line.strip())


def _is_student_file(filename: str) -> bool:
    # Cells: "<cell NAME>" in the grader, ipykernel's temporary files in Jupyter, "<ipython-input-...>" in Colab.
    return (
        filename.startswith(("<cell ", "<ipython-input")) or filename == "<your notebook>" or "ipykernel_" in filename
    )


def show(value: Any) -> str:
    """A short, readable rendering of plain data for a failure message."""
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=12, edgeitems=3, precision=5, suppress=True):
            text = f"array{value.shape} {np.array2string(value, separator=', ')}"
    elif isinstance(value, pd.DataFrame):
        text = f"DataFrame with {len(value)} rows and columns {list(value.columns)}:\n{value.head(5).to_string()}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, dict) and all(isinstance(item, float) for item in value.values()):
        text = "{" + ", ".join(f"{key!r}: {item:.6g}" for key, item in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 3] + "..."


def describe_call(function_name: str, *args: Any, **kwargs: Any) -> str:
    """``name(arg, key=value)`` with each argument shortened."""
    parts = [show(arg) for arg in args] + [f"{key}={show(value)}" for key, value in kwargs.items()]
    return f"{function_name}({', '.join(parts)})"


def expect_same(
    got: Any,
    expected: Any,
    *,
    call: str,
    hint: Hint | str,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    check_index: bool = False,
) -> None:
    """Fail with a teaching message unless ``got`` matches ``expected``.

    Numbers match within ``rtol``/``atol``; arrays must have the same shape;
    dicts the same keys; DataFrames the same columns and rows (and index if
    ``check_index``). Integers and floats of the same value match.

    Args:
        got: the student's result, as plain data.
        expected: the reference result, as plain data.
        call: the call that produced them (see :func:`describe_call`).
        hint: what usually causes a mismatch here, in a sentence.
        rtol: relative tolerance for numbers.
        atol: absolute tolerance for numbers.
        check_index: also compare DataFrame/Series indexes.

    Raises:
        AssertionError: with the call, expected, got, the first difference and the hint.
    """
    difference = first_difference(got, expected, "", rtol, atol, check_index)
    if difference is None:
        return
    raise AssertionError(
        f"{call}\n  expected: {show(expected)}\n  got:      {show(got)}\n"
        f"  first difference: {difference}\n{render_hint(hint)}"
    )


def first_difference(got: Any, expected: Any, where: str, rtol: float, atol: float, check_index: bool) -> str | None:
    """Where ``got`` and ``expected`` first differ, in words, or None if they match."""
    at = f" at {where}" if where else ""
    if _is_number(expected) and _is_number(got):
        if _numbers_match(float(got), float(expected), rtol, atol):
            return None
        return f"expected {show(expected)}, got {show(got)}{at}"
    if isinstance(expected, np.ndarray):
        return _array_difference(got, expected, where, rtol, atol)
    if isinstance(expected, pd.DataFrame):
        return _frame_difference(got, expected, where, rtol, atol, check_index)
    if isinstance(expected, pd.Series):
        if not isinstance(got, pd.Series):
            return f"expected a pandas Series, got {type(got).__name__}{at}"
        if check_index:
            found = first_difference(
                got.index.to_numpy(), expected.index.to_numpy(), f"{where}.index", rtol, atol, False
            )
            if found:
                return found
        return _array_difference(got.to_numpy(), expected.to_numpy(), where, rtol, atol)
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got {type(got).__name__}{at}"
        if set(got) != set(expected):
            return f"expected keys {sorted(expected, key=str)}, got keys {sorted(got, key=str)}{at}"
        for key in expected:
            found = first_difference(got[key], expected[key], f"{where}[{key!r}]", rtol, atol, check_index)
            if found:
                return found
        return None
    if isinstance(expected, list):
        if isinstance(got, np.ndarray):
            got = got.tolist()
        if not isinstance(got, list):
            return f"expected a list, got {type(got).__name__}{at}"
        if len(got) != len(expected):
            return f"expected {len(expected)} elements, got {len(got)}{at}"
        for index, (got_item, expected_item) in enumerate(zip(got, expected, strict=True)):
            found = first_difference(got_item, expected_item, f"{where}[{index}]", rtol, atol, check_index)
            if found:
                return found
        return None
    if type(got) is not type(expected) or got != expected:
        return f"expected {show(expected)}, got {show(got)}{at}"
    return None


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _numbers_match(got: float, expected: float, rtol: float, atol: float) -> bool:
    if math.isnan(expected) or math.isnan(got):
        return math.isnan(expected) and math.isnan(got)
    return math.isclose(got, expected, rel_tol=rtol, abs_tol=atol)


def _array_difference(got: Any, expected: np.ndarray, where: str, rtol: float, atol: float) -> str | None:
    at = f" at {where}" if where else ""
    if isinstance(got, list):
        got = np.asarray(got)
    if not isinstance(got, np.ndarray):
        return f"expected a numpy array, got {type(got).__name__}{at}"
    if got.shape != expected.shape:
        return f"expected shape {expected.shape}, got shape {got.shape}{at}"
    numeric = expected.dtype.kind in "biuf"
    if numeric != (got.dtype.kind in "biuf"):
        return f"expected {'numbers' if numeric else 'text'}, got dtype {got.dtype}{at}"
    if numeric:
        matches = np.isclose(got.astype(float), expected.astype(float), rtol=rtol, atol=atol, equal_nan=True)
    else:
        matches = got == expected
    if matches.all():
        return None
    position = tuple(int(i) for i in np.argwhere(~matches)[0])
    index = position[0] if len(position) == 1 else position
    return f"{where}[{index}]: expected {show(_element(expected, position))}, got {show(_element(got, position))}"


def _element(array: np.ndarray, position: tuple[int, ...]) -> Any:
    """One element as a Python value (text in object arrays, such as a frame's index, is already one)."""
    value = array[position]
    return value.item() if isinstance(value, np.generic) else value


def _columns_difference(got: list, expected: list) -> str:
    """Name what differs between two column lists: the missing ones, the extra ones, or their order."""
    missing = [name for name in expected if name not in got]
    extra = [name for name in got if name not in expected]
    found = []
    if missing:
        found.append(f"missing: {missing}")
    if extra:
        found.append(f"not expected: {extra}")
    return "; ".join(found) or "the same columns in another order"


def _frame_difference(
    got: Any, expected: pd.DataFrame, where: str, rtol: float, atol: float, check_index: bool
) -> str | None:
    if not isinstance(got, pd.DataFrame):
        return f"expected a pandas DataFrame, got {type(got).__name__}"
    if list(got.columns) != list(expected.columns):
        return (
            f"expected columns {list(expected.columns)}, got columns {list(got.columns)} "
            f"({_columns_difference(list(got.columns), list(expected.columns))})"
        )
    if len(got) != len(expected):
        return f"expected {len(expected)} rows, got {len(got)}"
    if check_index:
        found = _array_difference(
            got.index.to_numpy(), expected.index.to_numpy(), f"{where}.index" if where else "index", rtol, atol
        )
        if found:
            return found
    for name in expected.columns:
        found = _array_difference(got[name].to_numpy(), expected[name].to_numpy(), f"{where}[{name!r}]", rtol, atol)
        if found:
            return found
    return None
