"""Student code in a separate, sandboxed process, with the same interface as StudentCode.

The grading process keeps the tests, the reference solution and the gradebook.
It sends the student's program and each call's arguments to a worker process
(:mod:`tfrs_course.grading.worker`, started through
:mod:`tfrs_course.grading.sandbox`) and receives results as plain data, which it
decodes with the boundary's exact type checks. Nothing the worker sends is ever
unpickled or executed.

A call that takes too long, crashes the worker or exits it fails that test with
a one-line reason; the next call starts a fresh worker. (A call whose worker was
lost because the template that forked it died is tried once more instead: see
:mod:`tfrs_course.grading.template`.) If the worker cannot
even load the submission's definitions, every test of the submission fails
with that reason, at once.
"""

from __future__ import annotations

import functools
import json
import multiprocessing.util
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tfrs_course.grading import boundary, template
from tfrs_course.grading.program import Program
from tfrs_course.grading.sandbox import SandboxConfig, isolation_problem, unsandboxed_work_folder
from tfrs_course.grading.student_code import StudentCodeError
from tfrs_course.grading.worker import HEADER, encode_message

OUTPUT_CAP_BYTES = 64 * 1024
# Printing more than this in one submission fails the call that did it: a flood of
# output is a way to slow or crash graders, and no exercise needs it.
PRINT_LIMIT_BYTES = 10 * 1024 * 1024
TIMED_OUT = "it did not answer in time"
# Not the submission's doing: the call is tried again, once, in a new worker.
TEMPLATE_LOST = "the grader's worker template stopped under it"
# A reply is plain data the grader decodes; these bound the memory that decoding can take,
# whatever the worker sends. Arrays travel as .npy bytes, so real answers stay far below.
MAX_REPLY_BYTES = 64 * 1024 * 1024
MAX_REPLY_VALUES = 2_000_000
# Student code writes its own error messages, and a cell's problem can quote it. Keep enough
# to read (the start and the end, where the exception's own line is); never enough to fill
# the grader's memory or the feedback: every call's message is cut to this size.
STUDENT_TEXT_CHARS = 4000
MAX_PROBLEMS = 100


@dataclass
class Limits:
    """Limits for one submission.

    Attributes:
        call_seconds: wall-clock time allowed for one call (one test's use of student code).
        exercise_seconds: wall-clock time allowed for all calls of one function (or driver)
            together; after that, or after it has crashed the worker twice, further calls
            fail at once instead of paying the time again.
        load_seconds: wall-clock time allowed to start the worker and define the student's code.
        submission_seconds: wall-clock time allowed for all of a submission's calls together.
        reply_bytes: the largest reply the grader reads from the worker; a larger one fails
            that call with its size (the grader's memory stays bounded whatever the worker sends).
        sandbox: the worker's resource limits and hidden paths.
    """

    # Generous: a model exercise traces TensorFlow functions on its first call, and a
    # busy 2-core machine is several times slower than an idle one.
    call_seconds: float = 120.0
    exercise_seconds: float = 300.0
    load_seconds: float = 240.0
    submission_seconds: float = 1200.0
    reply_bytes: int = MAX_REPLY_BYTES
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)


def student_text(value: object, limit: int = STUDENT_TEXT_CHARS) -> str:
    """Text that came from the worker, cut to ``limit`` characters: its start, a note, its end."""
    text = str(value)
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... ({len(text) - 2 * half:,} characters cut) ...\n{text[-half:]}"


def _seconds(value: float) -> str:
    """A time limit in words: whole seconds, or two significant digits below one second."""
    return f"{value:.0f} s" if value >= 1 else f"{value:.2g} s"


@functools.cache
def grader_home() -> str:
    """This grading process's own folder: HOME of its template and of workers without the sandbox.

    Keras and matplotlib write settings under HOME. A fixed path shared by every
    grading run on the machine would let one run's (or one user's) settings change
    another's; this folder is private (mode 700) and removed when the process exits.
    Inside the namespace sandbox the worker's HOME is its own ``/tmp/work``.
    """
    home = tempfile.mkdtemp(prefix="tfrs-course-home-")
    # Runs at exit in the grader and in its job processes (which end through multiprocessing).
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(home,), kwargs={"ignore_errors": True}, exitpriority=0)
    return home


def _worker_environment() -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's, nothing that says 'grading'."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": grader_home(),
        "LANG": "C.UTF-8",
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


class _Worker:
    """One running worker process and its captured output."""

    def __init__(self, limits: Limits, lesson: str, tensorflow: bool):
        # Where the namespace sandbox cannot be built, every worker would fail: start them without it.
        config = replace(limits.sandbox, lesson=lesson, isolate=limits.sandbox.isolate and not isolation_problem())
        self.isolated = config.isolate
        self.process = template.start_worker(config, _worker_environment(), tempfile.gettempdir(), tensorflow)
        # Requests are written with a deadline (see _write): a full pipe must not block the grader.
        os.set_blocking(self.process.stdin.fileno(), False)
        self.output = bytearray()
        self.printed_bytes = 0
        self.ended = False  # the reply pipe closed: the worker exited or was killed
        self.refused = ""  # why a reply was refused, if it was
        self.reply_bytes = limits.reply_bytes
        self._drain = threading.Thread(target=self._collect_output, daemon=True)
        self._drain.start()

    def _collect_output(self) -> None:
        # Keep the first OUTPUT_CAP_BYTES of what student code prints; read and drop the rest,
        # so printing 100 MB neither fills memory nor blocks the worker.
        for chunk in iter(lambda: self.process.stderr.read(65536), b""):
            self.printed_bytes += len(chunk)
            room = OUTPUT_CAP_BYTES - len(self.output)
            if room > 0:
                self.output.extend(chunk[:room])

    def request(self, message: dict, timeout: float) -> dict | None:
        """Send a message and wait for the reply; None if the worker died or timed out.

        ``timeout`` covers the sending too: a worker that stops reading its requests
        (and fills the pipe) times out like one that stops answering.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        if not self._write(encode_message(message), deadline):
            return None
        header = self._read(HEADER.size, deadline)
        if header is None:
            return None
        (length,) = HEADER.unpack(header)
        if length > self.reply_bytes:
            self.refused = (
                f"its reply was {length:,} bytes, more than the {self.reply_bytes:,} bytes allowed "
                "(return less data, or numpy arrays rather than long lists)"
            )
            return None
        body = self._read(length, deadline)
        if body is None:
            return None
        values = body.count(b",") + body.count(b"[") + body.count(b"{")
        if values > MAX_REPLY_VALUES:
            self.refused = (
                f"its reply held about {values:,} values, more than the {MAX_REPLY_VALUES:,} allowed "
                "(return numpy arrays rather than long lists)"
            )
            return None
        try:
            reply = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            self.refused = "its reply was not a message the grader can read"
            return None
        if not isinstance(reply, dict) or not isinstance(reply.get("status"), str):
            self.refused = "its reply was not a message the grader can read"
            return None
        return reply

    def _write(self, data: bytes, deadline: float) -> bool:
        """Write all of ``data`` to the worker before ``deadline``; False if it timed out or the worker is gone."""
        descriptor = self.process.stdin.fileno()
        view, done = memoryview(data), 0
        while done < len(data):
            _, ready, _ = select.select([], [descriptor], [], max(deadline - time.monotonic(), 0.0))
            if not ready:
                return False
            try:
                done += os.write(descriptor, view[done:])
            except BlockingIOError:
                continue  # the pipe filled between select and write
            except OSError:  # BrokenPipeError included: the worker is gone
                self.ended = True
                return False
        return True

    def _read(self, size: int, deadline: float) -> bytearray | None:
        """Exactly ``size`` bytes of reply before ``deadline``, or None (timeout or end of stream).

        Read into one buffer of the announced size (already checked against the cap),
        so a large reply costs its size once, not once per chunk.
        """
        buffer = bytearray(size)
        view, done = memoryview(buffer), 0
        while done < size:
            ready, _, _ = select.select([self.process.stdout], [], [], max(deadline - time.monotonic(), 0.0))
            if not ready:
                return None
            count = self.process.stdout.readinto(view[done:])
            if not count:
                self.ended = True
                return None
            done += count
        return buffer

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill_group()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()
        self._drain.join(timeout=5)
        self.process.stderr.close()
        if not self.isolated:
            # Without the sandbox the worker's files are on the host: the next worker starts with none of them.
            shutil.rmtree(unsandboxed_work_folder(grader_home(), self.process.pid), ignore_errors=True)

    def death(self) -> str:
        """Why the worker ended, in words."""
        if self.refused:
            return self.refused
        if not self.ended:
            return TIMED_OUT
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        if self.process.lost:
            return TEMPLATE_LOST
        if code < 0 or code >= 128:
            number = -code if code < 0 else code - 128
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
            reason = {
                "SIGSEGV": "it crashed (segmentation fault)",
                "SIGKILL": "it was killed (out of memory or over its limits)",
                "SIGXCPU": "it used up its CPU time",
            }.get(name, f"it was killed by {name}")
            return reason
        return f"it exited with status {code} before answering"


class IsolatedStudentCode:
    """Student code that runs in a sandboxed worker process.

    Args:
        program: what to run (from :func:`tfrs_course.grading.program.build_program`).
        origin: the submission, for messages.
        limits: time and resource limits.
    """

    def __init__(self, program: Program, origin: str = "", limits: Limits | None = None):
        self.program = program
        self.origin = origin
        self.limits = limits or Limits()
        self.problems = dict(program.problems)
        self._worker: _Worker | None = None
        self._fatal: str | None = None
        self.load_error = ""  # why the submission's cells could not be loaded at all, if so
        self._spent = 0.0
        self._label_seconds: dict[str, float] = {}
        self._label_failures: dict[str, str] = {}
        self._crashed_once: set[str] = set()
        self._tensorflow = template.imports_tensorflow(program.setup)
        template.warm_up(_worker_environment(), tempfile.gettempdir(), self._tensorflow)

    def call(self, function_name: str, *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`StudentCode.call`, in the worker."""
        message = {"op": "call", "name": function_name}
        return self._request(message, f"{function_name}()", args, kwargs)

    def run(self, driver: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Like :meth:`StudentCode.run`, in the worker; the driver is sent by name."""
        message = {"op": "run", "driver": f"{driver.__module__}:{driver.__qualname__}"}
        return self._request(message, driver.__name__, args, kwargs)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def _request(self, message: dict, label: str, args: tuple, kwargs: dict, retried: bool = False) -> Any:
        if self._fatal:
            raise StudentCodeError(self._fatal)
        if label in self._label_failures:
            raise StudentCodeError(self._label_failures[label])
        message["args"] = boundary.encode(list(args)).decode("utf-8")
        message["kwargs"] = boundary.encode(kwargs).decode("utf-8")
        self._ensure_loaded()
        if self._spent >= self.limits.submission_seconds:
            self._fatal = f"The submission used up its {_seconds(self.limits.submission_seconds)} of grading time."
            raise StudentCodeError(self._fatal)
        timeout = min(
            self.limits.call_seconds,
            self.limits.submission_seconds - self._spent,
            self.limits.exercise_seconds - self._label_seconds.get(label, 0.0),
        )
        started = time.monotonic()
        reply = self._worker.request(message, timeout)
        elapsed = time.monotonic() - started
        self._spent += elapsed
        self._label_seconds[label] = self._label_seconds.get(label, 0.0) + elapsed
        if reply is None:
            reason = self._worker.death()
            if reason == TEMPLATE_LOST and not retried:
                self.close()
                return self._request(message, label, args, kwargs, retried=True)
            if reason == TIMED_OUT:
                reason = f"it did not finish within {_seconds(timeout)} (an endless loop, or far too much work?)"
            self.close()  # a fresh worker for the next call
            failure = f"Calling {label} stopped the grader's worker: {reason}."
            if self._spent >= self.limits.submission_seconds:
                self._fatal = f"The submission used up its {_seconds(self.limits.submission_seconds)} of grading time."
            if self._label_seconds[label] >= self.limits.exercise_seconds or label in self._crashed_once:
                self._label_failures[label] = f"{failure} (It did so in an earlier test too; not called again.)"
            self._crashed_once.add(label)
            raise StudentCodeError(failure)
        if self._worker.printed_bytes > PRINT_LIMIT_BYTES:
            printed = self._worker.printed_bytes
            self.close()
            raise StudentCodeError(
                f"Calling {label} printed {printed / 1e6:.0f} MB, more than the "
                f"{PRINT_LIMIT_BYTES / 1e6:.0f} MB allowed; remove the print calls from your function."
            )
        if reply["status"] == "student_error":
            raise StudentCodeError(student_text(reply.get("message")))
        if reply["status"] != "ok":
            raise StudentCodeError(
                f"Calling {label} failed in the grader's worker: {student_text(reply.get('message'))}"
            )
        decoding = time.monotonic()
        try:
            return boundary.decode(str(reply.get("result")).encode("utf-8"))
        except (ValueError, TypeError, KeyError, RecursionError, MemoryError) as error:
            raise StudentCodeError(
                f"{label} sent back something that is not plain data: {student_text(error)}"
            ) from error
        finally:
            # A reply can be cheap to send and slow to decode (many tiny arrays): the grader's
            # time on it is the submission's too, so the time limits bound it.
            spent = time.monotonic() - decoding
            self._spent += spent
            self._label_seconds[label] += spent

    def _ensure_loaded(self) -> None:
        if self._worker is not None and self._worker.alive():
            return
        self.close()
        load = {
            "op": "load",
            "setup": self.program.setup,
            "answers": [[answer.grade_id, answer.source] for answer in self.program.answers],
            "problems": self.program.problems,
            "origin": self.origin,
        }
        for attempt in range(2):
            worker = _Worker(self.limits, self.program.lesson, self._tensorflow)
            started = time.monotonic()
            # Loading counts against the submission's time too: a notebook that sleeps while its
            # cells are defined must not hold a grading slot longer than the submission limit.
            reply = worker.request(load, min(self.limits.load_seconds, self.limits.submission_seconds - self._spent))
            self._spent += time.monotonic() - started
            if reply is not None or attempt or worker.death() != TEMPLATE_LOST:
                break
            worker.stop()
        if reply is None or reply.get("status") != "ok":
            reason = worker.death() if reply is None else student_text(reply.get("message", "unknown error"))
            worker.stop()
            self._fatal = self.load_error = (
                f"The grader could not load {self.origin or 'the submission'}: while its cells were being "
                f"defined, {reason}. No test could run."
            )
            raise StudentCodeError(self._fatal)
        problems = reply.get("problems")
        if isinstance(problems, dict):
            kept = list(problems.items())[:MAX_PROBLEMS]
            self.problems = {student_text(cell, 200): student_text(problem) for cell, problem in kept}
            if len(problems) > MAX_PROBLEMS:
                self.problems["(more cells)"] = f"{len(problems) - MAX_PROBLEMS:,} more problems not shown"
        self._worker = worker
