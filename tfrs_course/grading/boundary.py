"""The one boundary between student code and the tests: plain data as bytes.

Every value that crosses from student code to a test (and every argument that
crosses the other way) is encoded to bytes here and decoded into fresh objects.
Encoding accepts only exact built-in types, exact ``numpy.ndarray`` and exact
``pandas`` frames: an object whose ``__eq__`` always says True, a numpy subclass
or a str subclass is refused, and what a test compares is always an object that
the grading side built itself. Two kinds of container are honest answers too, and
cross as their items: a named tuple ("return ``(train, test)``") and the standard
library's dicts (``defaultdict``, ``OrderedDict``, ``Counter``; "return a dict").
Their items are read with ``tuple``'s and ``dict``'s own methods, so no override
can change what crosses.

The format is JSON, with arrays stored as ``.npy`` bytes (``allow_pickle=False``),
so reading it can never run code. It is the same whether the student's code runs
in this process or in another.
"""

from __future__ import annotations

import base64
import collections
import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd

# Array dtypes that .npy stores without pickling: booleans, integers, floats, text.
# TensorFlow hands back text as bytes (a StringLookup's vocabulary, a top-k index's ids).
DECODE_ADVICE = "Decode bytes to str before returning them: b'item07'.decode(), or .astype(str) for a numpy array."
_ARRAY_KINDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "text"}
_MAX_DEPTH = 32
# Dict keys that are ints must be smaller than this in size (see _dict_key).
MAX_INT_KEY = 2**53
# The standard library's dicts: none can be a student's class, so none can forge equality.
_DICTS = (dict, collections.defaultdict, collections.OrderedDict, collections.Counter)
_NUMPY_INTEGERS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


class BoundaryError(TypeError):
    """A value cannot cross the boundary (a type that is not plain data)."""


def encode(value: Any) -> bytes:
    """Encode plain data to bytes.

    Args:
        value: ``None``, ``bool``, ``int``, ``float``, ``str``, ``list``, ``tuple``
            or named tuple (decoded as a list), ``dict``, ``defaultdict``, ``OrderedDict``
            or ``Counter`` (decoded as a dict) with ``str`` or ``int`` keys, numpy scalars
            (decoded as Python numbers), ``numpy.ndarray`` of booleans, numbers or
            text, ``pandas.Series`` or ``pandas.DataFrame``; nested freely.

    Returns:
        UTF-8 JSON bytes.

    Raises:
        BoundaryError: a value of any other type, named with where it was found.
    """
    return json.dumps(_to_json(value, "result", 0), allow_nan=True).encode("utf-8")


def decode(data: bytes) -> Any:
    """Decode bytes made by :func:`encode` into new plain objects."""
    return _from_json(json.loads(data.decode("utf-8")))


def roundtrip(value: Any) -> Any:
    """Encode and decode: a fresh copy of plain data, or a BoundaryError."""
    return decode(encode(value))


def describe_type(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _to_json(value: Any, where: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise BoundaryError(f"{where} is nested more than {_MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if kind in (np.bool_,):
        return bool(value)
    if kind in _NUMPY_INTEGERS:
        return int(value)
    if kind in (np.float16, np.float32, np.float64):
        return _to_json(float(value), where, depth)
    if kind is np.str_:
        return str(value)
    if kind in (list, tuple) or _is_named_tuple(value):
        items = value if kind is list else tuple.__iter__(value)
        return [_to_json(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(items)]
    if kind in _DICTS:
        pairs = []
        for key, item in dict.items(value):
            if type(key) in _NUMPY_INTEGERS:
                key = int(key)
            if not _is_dict_key(key):
                raise BoundaryError(
                    f"{where} has a key of type {describe_type(key)}; keys must be str or int (below 2**53 in size)"
                )
            pairs.append([key, _to_json(item, f"{where}[{key!r}]", depth + 1)])
        return {"__dict__": pairs}
    if kind is np.ndarray:
        return {"__ndarray__": _array_to_text(value, where)}
    if kind is pd.Series:
        return {
            "__series__": {
                "name": _to_json(value.name, f"{where}.name", depth + 1),
                "index": _array_to_text(_plain_array(value.index.to_numpy(), f"{where}.index"), where),
                "values": _array_to_text(_plain_array(value.to_numpy(), where), where),
            }
        }
    if kind is pd.DataFrame:
        names = list(value.columns)
        for name in names:
            if type(name) is not str:
                raise BoundaryError(f"{where} has a column named {name!r}; column names must be str")
        return {
            "__dataframe__": {
                "columns": names,
                "index": _array_to_text(_plain_array(value.index.to_numpy(), f"{where}.index"), where),
                "values": [
                    _array_to_text(_plain_array(value[name].to_numpy(), f"{where}[{name!r}]"), where) for name in names
                ],
            }
        }
    if kind in (bytes, bytearray, np.bytes_):
        raise BoundaryError(f"{where} is bytes, not str. {DECODE_ADVICE}")
    raise BoundaryError(
        f"{where} is of type {describe_type(value)}; expected plain data (a number, str, list, "
        "dict, numpy array or pandas DataFrame). Convert it before returning, e.g. with "
        "`.numpy()` for a tensor or `list(...)` for other sequences."
    )


def _is_named_tuple(value: Any) -> bool:
    """A ``collections.namedtuple`` or ``typing.NamedTuple`` instance (its fields are a tuple of names)."""
    return isinstance(value, tuple) and isinstance(getattr(type(value), "_fields", None), tuple)


def _plain_array(array: np.ndarray, where: str) -> np.ndarray:
    """Pandas keeps text as object arrays: accept them when every element is exactly str."""
    if array.dtype.kind == "O":
        if all(type(item) in (str, np.str_) for item in array.ravel()):
            return array.astype(str) if array.size else np.array([], dtype=str)
        bad = next(item for item in array.ravel() if type(item) not in (str, np.str_))
        advice = f" {DECODE_ADVICE}" if isinstance(bad, bytes | bytearray) else ""
        raise BoundaryError(f"{where} holds a {describe_type(bad)}; object arrays must hold only str.{advice}")
    return array


def _array_to_text(array: np.ndarray, where: str) -> str:
    array = _plain_array(array, where)
    if array.dtype.kind not in _ARRAY_KINDS:
        advice = f" {DECODE_ADVICE}" if array.dtype.kind == "S" else ""
        raise BoundaryError(
            f"{where} is a numpy array of dtype {array.dtype}; expected booleans, numbers or text.{advice}"
        )
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# Text arrays become one Python string per element when a test compares them with a list:
# more elements than a reply may hold values would cost the grader gigabytes.
_MAX_TEXT_ELEMENTS = 2_000_000


def _array_from_text(text: str) -> np.ndarray:
    """An array from its ``.npy`` bytes, once its header is checked against the bytes that follow.

    The worker writes these bytes, so they may be forged: a header may promise a dtype that
    cannot cross the boundary, or millions of zero-width elements that cost nothing to send
    and gigabytes to turn into Python objects.
    """
    data = base64.b64decode(text)
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise BoundaryError(f"an array in .npy format {version} cannot cross the boundary")
    if dtype.kind not in _ARRAY_KINDS or dtype.itemsize == 0 or dtype.fields is not None or dtype.subdtype:
        raise BoundaryError(f"an array of dtype {dtype} cannot cross the boundary")
    count = math.prod(shape)
    if dtype.kind == "U" and count > _MAX_TEXT_ELEMENTS:
        raise BoundaryError(f"a text array of {count:,} elements is more than the {_MAX_TEXT_ELEMENTS:,} allowed")
    if count * dtype.itemsize != len(data) - stream.tell():
        raise BoundaryError("an array's data does not match its header")
    return np.load(io.BytesIO(data), allow_pickle=False)


def _is_dict_key(key: Any) -> bool:
    """Whether a dict key may cross: str, or int below 2**53 in size, both ways.

    Large ints (and floats, bools or None) can be chosen to share one hash, which
    makes building the dict quadratic: minutes of the grader's time for one reply.
    An int below 2**53 hashes to itself, so distinct keys never collide.
    """
    return type(key) is str or (type(key) is int and abs(key) < MAX_INT_KEY)


def _dict_key(key: Any) -> str | int:
    """A decoded dict key, if it is one the encoder sends (see :func:`_is_dict_key`)."""
    if _is_dict_key(key):
        return key
    raise BoundaryError(f"a dict key {type(key).__name__} cannot cross the boundary")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__dict__" in value:
        return {_dict_key(key): _from_json(item) for key, item in value["__dict__"]}
    if "__ndarray__" in value:
        return _array_from_text(value["__ndarray__"])
    if "__series__" in value:
        spec = value["__series__"]
        return pd.Series(
            _array_from_text(spec["values"]),
            index=_array_from_text(spec["index"]),
            name=_from_json(spec["name"]),
        )
    if "__dataframe__" in value:
        spec = value["__dataframe__"]
        columns = {name: _array_from_text(text) for name, text in zip(spec["columns"], spec["values"], strict=True)}
        return pd.DataFrame(columns, index=_array_from_text(spec["index"]), columns=spec["columns"])
    raise BoundaryError(f"unknown encoded value with keys {sorted(value)}")
