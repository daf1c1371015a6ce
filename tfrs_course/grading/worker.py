"""The grading worker: runs one submission's code and answers calls with plain data.

Started by :mod:`tfrs_course.grading.sandbox`, which first calls :func:`prepare`
(before any student code exists, and while it may still hide files): the
lesson's trusted drivers are loaded and copied with their own globals, so code
that runs while the student's cells are defined (decorators, default arguments,
class bodies) cannot replace them; and the kit's modules that answer exercises
are made unimportable.

The worker reads requests from the pipe on its standard input and writes
replies to the pipe that was its standard output; before any student code runs,
file descriptors 1 and 2 are pointed at the captured-output pipe, so whatever
student code prints can never be mistaken for a reply. Replies are data the
grader compares with its own reference results; the grader trusts nothing else
from this process.

Messages are an 8-byte big-endian length followed by UTF-8 JSON.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import os
import struct
import sys
import types
from pathlib import Path
from typing import Any, BinaryIO

HEADER = struct.Struct(">Q")
# Requests (the student's cells, a test's inputs) are at most this large.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
DRIVER_PACKAGE = "tfrs_course.grading.drivers"
# The kit's modules that implement exercises (top-k accuracy, popularity, the
# towers and models, serving with exclusions) or can reach the reference (the
# lesson builder, the demo): student code cannot import them while it is graded.
EXERCISE_HELPERS = (
    "tfrs_course.evaluation",
    "tfrs_course.models",
    "tfrs_course.serving",
    "tfrs_course.benchmarks",
    "tfrs_course.demo",
    "tfrs_course.lessons",
    "tfrs_course.colab",
    "tfrs_course.data.calibration",
    DRIVER_PACKAGE,
)


def read_message(stream: BinaryIO) -> dict | None:
    """One message, or None at the end of the stream."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {length} bytes is larger than allowed")
    body = _read_exactly(stream, length)
    if body is None:
        return None
    return json.loads(body.decode("utf-8"))


def encode_message(message: dict) -> bytes:
    """A message as it travels between the grader and a worker: its length, then its JSON."""
    body = json.dumps(message).encode("utf-8")
    return HEADER.pack(len(body)) + body


def write_message(stream: BinaryIO, message: dict) -> None:
    stream.write(encode_message(message))
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _Blocked(importlib.abc.MetaPathFinder):
    """Refuses the kit's exercise-answering modules, with a reason a student can act on."""

    def find_spec(self, name, path=None, target=None):
        if any(name == blocked or name.startswith(blocked + ".") for blocked in EXERCISE_HELPERS):
            raise ImportError(
                f"{name} is not available while your notebook is graded: it holds the kit's own answers "
                "to exercises. Write the exercise with your own code."
            )
        return None


def exercise_helper_files() -> list[Path]:
    """The files of :data:`EXERCISE_HELPERS` (and the compiled copies next to them) that exist."""
    kit = Path(__file__).resolve().parents[1]
    found = []
    for name in EXERCISE_HELPERS:
        relative = Path(*name.split(".")[1:])
        for candidate in (kit / relative, kit / relative.with_suffix(".py")):
            if candidate.exists():
                found.append(candidate)
        found.append(kit / relative.parent / "__pycache__")
    return [path for path in dict.fromkeys(found) if path.exists()]


def _copy_with_globals(function: types.FunctionType, namespace: dict) -> types.FunctionType:
    copy = types.FunctionType(
        function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__module__ = function.__module__
    copy.__doc__ = function.__doc__
    return copy


def driver_sources() -> dict[str, tuple[str, str]]:
    """Every lesson's drivers' source, read while the course's files are visible (before the sandbox)."""
    return importlib.import_module(DRIVER_PACKAGE).sources()


def load_trusted_drivers(lesson: str, sources: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """The drivers ``lesson``'s tests use (no other lesson's), as private copies: ``"module:name" -> function``.

    ``sources`` (lesson -> (file name, text), from :func:`driver_sources`) are used instead of
    the files, which the sandbox does not show. Each module's globals are copied
    too, and references between driver modules point at the copies, so reassigning
    a driver module's names later (from a decorator, a default argument, a class
    body) changes nothing a test runs.
    """
    modules = importlib.import_module(DRIVER_PACKAGE).load_required(lesson, sources)
    namespaces = {module.__name__: dict(vars(module)) for module in modules}
    copies: dict[int, types.FunctionType] = {}
    for module in modules:
        namespace = namespaces[module.__name__]
        for name, value in list(namespace.items()):
            if isinstance(value, types.FunctionType) and value.__globals__ is vars(module):
                copies[id(value)] = namespace[name] = _copy_with_globals(value, namespace)
    for namespace in namespaces.values():
        for name, value in list(namespace.items()):
            if isinstance(value, types.FunctionType) and id(value) in copies:
                namespace[name] = copies[id(value)]
    return {
        f"{module_name}:{name}": value
        for module_name, namespace in namespaces.items()
        for name, value in namespace.items()
        if isinstance(value, types.FunctionType) and value.__module__ == module_name
    }


def block_exercise_helpers() -> None:
    """Forget the kit's exercise-answering modules and refuse to import them again."""
    for name in list(sys.modules):
        if any(name == blocked or name.startswith(blocked + ".") for blocked in EXERCISE_HELPERS):
            parent, _, child = name.rpartition(".")
            if parent in sys.modules and getattr(sys.modules[parent], child, None) is sys.modules[name]:
                delattr(sys.modules[parent], child)
            del sys.modules[name]
    sys.meta_path.insert(0, _Blocked())


def prepare(lesson: str = "", sources: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Load everything trusted, before student code runs. Returns the drivers by name.

    ``lesson``: the lesson graded; only the drivers its tests use are loaded (none if it is empty).
    ``sources``: the drivers' source (see :func:`load_trusted_drivers`); read from
    ``autograder/`` if None. It is emptied once the drivers are loaded, so no other
    lesson's drivers are left as text where student code could find them.
    """
    import tfrs_course  # noqa: F401 - legacy Keras before student setup imports TensorFlow
    from tfrs_course.grading import boundary, program, student_code  # noqa: F401 - loaded while trusted

    try:
        drivers = load_trusted_drivers(lesson, sources) if lesson else {}
    finally:
        if sources is not None:
            sources.clear()
    block_exercise_helpers()
    return drivers


def _handle(code: Any, message: dict, drivers: dict[str, Any]) -> dict:
    from tfrs_course.grading import boundary
    from tfrs_course.grading.program import AnswerCell, Program
    from tfrs_course.grading.student_code import StudentCode, StudentCodeError

    operation = message["op"]
    if operation == "load":
        program = Program(
            setup=message["setup"],
            answers=[AnswerCell(grade_id, source) for grade_id, source in message["answers"]],
            problems=message["problems"],
        )
        loaded = StudentCode.from_program(program, origin=message.get("origin", ""))
        return {"status": "ok", "problems": loaded.problems, "_code": loaded}
    args = boundary.decode(message["args"].encode("utf-8"))
    kwargs = boundary.decode(message["kwargs"].encode("utf-8"))
    try:
        if operation == "call":
            result = code.call(message["name"], *args, **kwargs)
        elif operation == "run":
            driver = drivers.get(message["driver"])
            if driver is None:
                return {"status": "error", "message": f"{message['driver']!r} is not a course driver"}
            result = code.run(driver, *args, **kwargs)
        else:
            return {"status": "error", "message": f"unknown operation {operation!r}"}
    except StudentCodeError as error:
        return {"status": "student_error", "message": str(error)}
    return {"status": "ok", "result": boundary.encode(result).decode("utf-8")}


def main(drivers: dict[str, Any] | None = None) -> None:
    if drivers is None:
        drivers = prepare()
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    # Student output goes to the captured-output pipe (fd 2), never to the reply pipe.
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - must outlive this function

    code = None
    while True:
        message = read_message(requests)
        if message is None:
            return
        if message["op"] == "load" or code is not None:
            reply = _handle(code, message, drivers)
        else:
            reply = {"status": "error", "message": "no submission loaded"}
        code = reply.pop("_code", code)
        write_message(replies, reply)


if __name__ == "__main__":
    main()
