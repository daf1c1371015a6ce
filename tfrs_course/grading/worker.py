"""The grading worker: runs one submission's code and answers calls with plain data.

Started by :mod:`tfrs_course.grading.sandbox`. It reads requests from the pipe
on its standard input and writes replies to the pipe that was its standard
output; before any student code runs, file descriptors 1 and 2 are pointed at
the captured-output pipe, so whatever student code prints can never be mistaken
for a reply. Replies are data the grader compares with its own reference
results; the grader trusts nothing else from this process.

Messages are an 8-byte big-endian length followed by UTF-8 JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct(">Q")
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# Drivers are looked up by name; only the course's own driver modules may be named.
DRIVER_PACKAGE = "tfrs_course.grading.drivers."


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


def write_message(stream: BinaryIO, message: dict) -> None:
    body = json.dumps(message).encode("utf-8")
    stream.write(HEADER.pack(len(body)) + body)
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


def resolve_driver(name: str):
    """A driver function from ``module:function``, limited to the course's driver modules."""
    module_name, _, function_name = name.partition(":")
    if not module_name.startswith(DRIVER_PACKAGE):
        raise ValueError(f"{module_name!r} is not a course driver module")
    return getattr(importlib.import_module(module_name), function_name)


def _handle(code: Any, message: dict) -> dict:
    from tfrs_course.grading import boundary
    from tfrs_course.grading.notebook import AnswerCell, Program
    from tfrs_course.grading.submission import StudentCode, StudentCodeError

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
            result = code.run(resolve_driver(message["driver"]), *args, **kwargs)
        else:
            return {"status": "error", "message": f"unknown operation {operation!r}"}
    except StudentCodeError as error:
        return {"status": "student_error", "message": str(error)}
    return {"status": "ok", "result": boundary.encode(result).decode("utf-8")}


def main() -> None:
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    # Student output goes to the captured-output pipe (fd 2), never to the reply pipe.
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - must outlive this function
    import tfrs_course  # noqa: F401 - legacy Keras before student setup imports TensorFlow

    code = None
    while True:
        message = read_message(requests)
        if message is None:
            return
        if message["op"] == "load" or code is not None:
            reply = _handle(code, message)
        else:
            reply = {"status": "error", "message": "no submission loaded"}
        code = reply.pop("_code", code)
        write_message(replies, reply)


if __name__ == "__main__":
    main()
