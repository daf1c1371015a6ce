"""The exercise format's core: the plain-data boundary, the graded program, the committed lessons."""

import collections
import json

import numpy as np
import pandas as pd
import pytest

from tfrs_course import lessons
from tfrs_course.grading import boundary
from tfrs_course.grading.assertions import expect_same
from tfrs_course.grading.program import NotebookError, definitions_only, read_notebook, run_cell
from tfrs_course.grading.student_code import StudentCode, StudentCodeError

# --- boundary ------------------------------------------------------------------------


def test_plain_data_round_trips_into_fresh_objects():
    frame = pd.DataFrame({"user_no": ["1", "-2"], "count": [3, 4]})
    value = {
        "ints": [1, 2, np.int64(3)],
        "floats": (0.5, float("nan"), np.float32(2.0)),
        "array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "ids": np.array(["a", "b"]),
        "frame": frame,
        1: None,
    }
    decoded = boundary.roundtrip(value)
    assert decoded["ints"] == [1, 2, 3] and type(decoded["ints"][2]) is int
    assert decoded["floats"][0] == 0.5 and np.isnan(decoded["floats"][1])
    assert decoded["array"].dtype == np.int32 and decoded["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert decoded["array"] is not value["array"]
    assert decoded["frame"]["user_no"].tolist() == ["1", "-2"]
    assert decoded[1] is None


class _AlwaysEqual:
    def __eq__(self, other):
        return True


class _ArraySubclass(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)


class _StrSubclass(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


class _DictSubclass(dict):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize(
    "forged",
    [
        _AlwaysEqual(),
        np.zeros(3).view(_ArraySubclass),
        _StrSubclass("x"),
        [1, _AlwaysEqual()],
        {"k": _AlwaysEqual()},
        np.array([_AlwaysEqual()], dtype=object),
        pd.DataFrame({"a": [_StrSubclass("x")]}),
        _DictSubclass(k=0.0),
    ],
    ids="eq-object ndarray-subclass str-subclass in-list in-dict object-array in-frame dict-subclass".split(),
)
def test_objects_that_forge_equality_cannot_cross(forged):
    with pytest.raises(boundary.BoundaryError):
        boundary.encode(forged)


@pytest.mark.parametrize(
    "ids",
    [b"item07", [b"item07", b"item08"], np.array([b"item07", b"item08"]), np.array([b"item07"], dtype=object)],
    ids="bytes list-of-bytes bytes-array object-array-of-bytes".split(),
)
def test_ids_left_as_bytes_are_refused_with_how_to_decode_them(ids):
    """TensorFlow returns text as bytes; the message must say to decode, not to call .numpy() or list()."""
    with pytest.raises(boundary.BoundaryError, match=r"Decode bytes to str .*\.decode\(\).*\.astype\(str\)"):
        boundary.encode(ids)


def _forged_reply(header: dict, data: bytes) -> bytes:
    """A reply holding one array whose .npy header and data the worker wrote itself."""
    import base64
    import io

    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    payload = base64.b64encode(stream.getvalue() + data).decode("ascii")
    return json.dumps({"__ndarray__": payload}).encode("utf-8")


@pytest.mark.parametrize(
    ("header", "data"),
    [
        # 250 million zero-width elements: nothing to send, gigabytes as Python objects.
        ({"descr": "|S0", "fortran_order": False, "shape": (250_000_000,)}, b""),
        ({"descr": "|V8", "fortran_order": False, "shape": (2,)}, bytes(16)),
        # The header promises more data than follows.
        ({"descr": "<f8", "fortran_order": False, "shape": (1_000_000,)}, bytes(8)),
        ({"descr": "<U1", "fortran_order": False, "shape": (3_000_000,)}, bytes(12_000_000)),
    ],
    ids=["zero-width", "raw-bytes", "short-data", "too-much-text"],
)
def test_forged_array_replies_are_refused_before_they_cost_memory(header, data):
    with pytest.raises(boundary.BoundaryError):
        boundary.decode(_forged_reply(header, data))


def test_honest_arrays_still_decode_from_the_same_format():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(boundary.decode(_forged_reply({"descr": "<f4", "fortran_order": False, "shape": (3, 4)},
                                                        values.tobytes())), values)  # fmt: skip
    assert boundary.decode(boundary.encode(np.array(["a", "bc"]))).tolist() == ["a", "bc"]


def test_named_tuples_and_standard_dicts_cross_as_their_items():
    # "Return (train, test)" or "a dict {k: accuracy}" is honestly answered with a
    # NamedTuple or a defaultdict: their items cross, as a plain list and dict.
    split = collections.namedtuple("Split", ["train", "test"])
    counts = collections.defaultdict(float, {1: 0.5, 5: np.float64(0.75)})
    decoded = boundary.roundtrip({"split": split([1], [2]), "counts": counts, "seen": collections.Counter("aab")})
    assert decoded == {"split": [[1], [2]], "counts": {1: 0.5, 5: 0.75}, "seen": {"a": 2, "b": 1}}
    assert type(decoded["split"]) is list and type(decoded["counts"]) is dict


class _ForgedNamedTuple(collections.namedtuple("_ForgedNamedTuple", ["value"])):
    def __iter__(self):
        return iter(["forged"])

    def __eq__(self, other):
        return True


def test_a_named_tuple_cannot_change_what_crosses():
    assert boundary.roundtrip(_ForgedNamedTuple("real")) == ["real"]
    with pytest.raises(boundary.BoundaryError):
        boundary.encode(collections.OrderedDict(k=_AlwaysEqual()))


def test_decoding_never_unpickles():
    # An object array would need pickle; the encoder refuses it and the decoder uses allow_pickle=False.
    with pytest.raises(boundary.BoundaryError):
        boundary.encode(np.array([{"a": 1}], dtype=object))


# --- comparing and calling -------------------------------------------------------------


def test_failure_message_teaches_input_expected_got_and_hint():
    with pytest.raises(AssertionError) as failure:
        expect_same({1: 0.5, 5: 1.0}, {1: 0.5, 5: 0.75}, call="top_k_accuracy(...)", hint="count rows once")
    message = str(failure.value)
    assert "top_k_accuracy(...)" in message and "expected:" in message and "got:" in message
    assert "at [5]" in message and "hint: count rows once" in message


@pytest.mark.parametrize(
    ("got_columns", "names"),
    [
        (["a=x", "a=other", "b=y"], "missing: ['b=other']"),
        (["a=x", "a=other", "b=y", "b=other", "c"], "not expected: ['c']"),
        (["a=other", "a=x", "b=y", "b=other"], "the same columns in another order"),
    ],
)
def test_a_frame_with_other_columns_is_told_which_ones(got_columns, names):
    expected = pd.DataFrame({name: [1.0] for name in ["a=x", "a=other", "b=y", "b=other"]})
    got = pd.DataFrame({name: [1.0] for name in got_columns})
    with pytest.raises(AssertionError) as failure:
        expect_same(got, expected, call="content_vectors(...)", hint="one column per value, then other")
    assert names in str(failure.value)


def test_student_cannot_change_the_tests_inputs():
    namespace = {}
    exec("def grab(values):\n    values.append(99)\n    return len(values)", namespace)  # noqa: S102
    student = StudentCode(namespace)
    inputs = [1, 2]
    assert student.call("grab", inputs) == 3
    assert inputs == [1, 2]


def test_missing_function_and_unfinished_function_have_clear_messages():
    namespace = {}
    exec("def stub():\n    raise NotImplementedError('todo')", namespace)  # noqa: S102
    student = StudentCode(namespace, problems={"top_k_accuracy": "syntax error on line 3: invalid syntax"})
    with pytest.raises(StudentCodeError, match="not written yet"):
        student.call("stub")
    with pytest.raises(StudentCodeError, match="syntax error on line 3"):
        student.call("top_k_accuracy")


# --- only definitions run -----------------------------------------------------------


def test_only_imports_and_definitions_run_during_grading():
    source = (
        "import numpy as np\n"
        "%time x = 1\n"
        "!pip install something\n"
        "K = 10\n"
        "model.fit(data, epochs=100)\n"
        "for epoch in range(10**9):\n    pass\n"
        "def answer():\n    return K\n"
    )
    kept, problem = definitions_only(source)
    assert problem is None
    namespace = {}
    exec(kept, namespace)  # noqa: S102 - the kept code is only definitions
    assert namespace["answer"]() == 10
    assert "fit" not in kept and "range" not in kept and "pip" not in kept


def test_a_syntax_error_is_reported_with_its_line():
    kept, problem = definitions_only("def broken(:\n    pass\n")
    assert kept == "" and "line 1" in problem


def test_cells_run_with_notebook_semantics_statement_by_statement():
    """Magics are neutralised, a %%time body runs, a failing statement does not stop the rest."""
    namespace = {"NUM_USERS": 7}
    cell = (
        "%%time\n"
        "!pip install nothing\n"
        "%matplotlib inline\n"
        "import no_such_module\n"
        "SCALE = float('2')\n"
        "double = lambda x: x * SCALE\n"
        "try:\n    import numpy as np\nexcept ImportError:\n    np = None\n"
        "def answer(n=NUM_USERS):\n    return double(n)\n"
        "answer()\n"
        "while True:\n    pass\n"
    )
    problem = run_cell(cell, namespace, "answer")
    assert namespace["answer"]() == 14.0 and namespace["np"] is not None
    assert "ModuleNotFoundError" in problem and "line 4" in problem
    assert run_cell("%%bash\nrm -rf /\n", namespace, "shell") is None


def test_a_notebook_that_is_not_well_formed_gets_an_error_naming_the_file_and_cell(tmp_path):
    path = tmp_path / "student.ipynb"
    for cells, words in ((["text"], "cell 1 is not a cell"), ([{"metadata": []}], "cell 1: its metadata")):
        path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
        with pytest.raises(NotebookError, match=words) as raised:
            read_notebook(path)
        assert str(path) in str(raised.value)
    link = tmp_path / "link.ipynb"
    link.symlink_to(path)
    with pytest.raises(NotebookError, match="symbolic link"):
        read_notebook(link)


# --- committed lessons -----------------------------------------------------------------


@pytest.mark.slow
def test_lessons_are_current_and_leak_nothing():
    assert lessons.check() == []


def test_leak_check_finds_solution_code_in_a_student_copy(tmp_path, monkeypatch):
    import shutil

    from tfrs_course import paths

    course = tmp_path / "course"
    for folder in ("solutions", "lessons", "autograder"):
        shutil.copytree(paths.course_root() / folder, course / folder)
    name = "01_baseline_metrics"
    leaked = course / "lessons" / name / f"{name}.ipynb"
    solution_line = "hit_by = np.logical_or.accumulate(matches, axis=1)"
    leaked.write_text(leaked.read_text().replace("raise NotImplementedError", solution_line + "  #", 1))
    problems = lessons.find_leaks(name, course)
    assert any(solution_line in problem for problem in problems)


def test_a_check_keeps_tensorflow_warnings_out_of_the_cell(caplog):
    # Tests call a student's tf.function with several shapes; TensorFlow's "retracing"
    # warnings would land in the check cell's output.
    import logging

    from tfrs_course.grading.check import _tensorflow_logs_off

    logger = logging.getLogger("tensorflow")
    level = logger.level
    with _tensorflow_logs_off():
        logger.warning("5 out of the last 5 calls triggered tf.function retracing")
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]
    assert logger.level == level
    logger.warning("after the check, warnings show again")
    assert [record for record in caplog.records if "show again" in record.getMessage()]


@pytest.mark.parametrize(
    "keys",
    [
        [k * (2**61 - 1) for k in range(1, 4)],  # ints that share one hash: a dict of many is quadratic
        [2**53],
        [1.5],
        [True],
        [None],
    ],
    ids=["colliding-ints", "int-too-large", "float", "bool", "none"],
)
def test_forged_dict_keys_are_refused(keys):
    forged = json.dumps({"__dict__": [[key, 1] for key in keys]}).encode("utf-8")
    with pytest.raises(boundary.BoundaryError, match="dict key"):
        boundary.decode(forged)


def test_dict_keys_the_encoder_sends_still_cross():
    value = {"a": 1, -(2**53) + 1: 2, np.int64(7): 3}
    assert boundary.roundtrip(value) == {"a": 1, -(2**53) + 1: 2, 7: 3}
    with pytest.raises(boundary.BoundaryError, match="below 2\\*\\*53"):
        boundary.encode({2**60: 1})
