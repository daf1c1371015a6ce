"""Comparisons whose failure messages teach: the call, what was expected, what came back, a hint."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

_SHOW_CHARS = 300


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
    hint: str,
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
        f"  first difference: {difference}\n  hint: {hint}"
    )


def first_difference(
    got: Any, expected: Any, where: str, rtol: float, atol: float, check_index: bool
) -> str | None:
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
            found = first_difference(got.index.to_numpy(), expected.index.to_numpy(), f"{where}.index", rtol, atol, False)
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
    return f"{where}[{index}]: expected {show(expected[position].item())}, got {show(got[position].item())}"


def _frame_difference(
    got: Any, expected: pd.DataFrame, where: str, rtol: float, atol: float, check_index: bool
) -> str | None:
    if not isinstance(got, pd.DataFrame):
        return f"expected a pandas DataFrame, got {type(got).__name__}"
    if list(got.columns) != list(expected.columns):
        return f"expected columns {list(expected.columns)}, got columns {list(got.columns)}"
    if len(got) != len(expected):
        return f"expected {len(expected)} rows, got {len(got)}"
    if check_index:
        found = _array_difference(got.index.to_numpy(), expected.index.to_numpy(), f"{where}index", rtol, atol)
        if found:
            return found
    for name in expected.columns:
        found = _array_difference(got[name].to_numpy(), expected[name].to_numpy(), f"{where}[{name!r}]", rtol, atol)
        if found:
            return found
    return None
