"""Start sandboxed workers fast: fork them from a template that has already imported TensorFlow.

A fresh worker (``python -I -m tfrs_course.grading.sandbox``) spends most of a
model submission's grading time importing TensorFlow for the lesson's setup
cell. So each grading process starts, when it begins grading its first
submission, one *template* process (``python -I -m tfrs_course.grading.template``,
with the workers' scrubbed environment and working folder) that imports what the
lessons' setup cells import (numpy, pandas, the kit's data and check modules, and
TensorFlow with legacy Keras and TFRS once a lesson's setup imports them) and the
worker's trusted modules, then waits.
(Its imports overlap with the grader loading the reference; the first worker
waits for them.)
It never loads a lesson's drivers, a reference solution, a test or any
student's code, and never runs a TensorFlow operation, so it has no thread
pools (or any other thread) when it forks.

For each worker, the grader creates the three pipes a worker talks through and
sends the worker's ends to the template over a Unix socket (``SCM_RIGHTS``). The
template forks a child, which starts a new session, puts those pipes on its
standard input, output and error, closes every other file (the template's
socket among them: student code can ask the template for nothing), and then
does exactly what the plain launcher does
(:func:`tfrs_course.grading.sandbox.run_worker`): its own namespaces, new root,
unprivileged uid and limits. Each worker still gets a sandbox of its own, and no
two students' code ever shares a process.

The template is the workers' parent: it watches each one through a pidfd, reaps
it, and reports its pid and wait status to the grader, which turns them into
the same messages as before (a signal, the CPU limit, an exit status). It kills
a worker's process group when the grader asks, and only while that worker is
not yet reaped, so the number cannot belong to another process. The template
dies with its grading process (``PR_SET_PDEATHSIG``), and its workers die with
it. If it dies anyway, the grader starts a new one for the next worker, and the
call that was running is tried once more (the submission was not to blame).
Where the template cannot run (not Linux, or no pidfds) the plain launcher
starts each worker, as before.

Memory: the template and the workers forked from it share the libraries' pages
copy-on-write. ``SandboxConfig.memory_bytes`` still limits a worker's whole
address space, the preloaded libraries included (TensorFlow's 1.5 GB of
mappings, mostly never resident), as it did when a model lesson's setup cell
imported them; a lesson-1 worker carries them only when its template has
TensorFlow for another lesson of the batch.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import multiprocessing
import multiprocessing.util
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict
from typing import BinaryIO

from tfrs_course.grading.sandbox import SandboxConfig, die_with_parent, launcher_command, run_worker

# What the template imports: what the lessons' setup cells import, and the worker's trusted modules.
# Nothing here may load a lesson's drivers or a reference, or answer an exercise (a test checks it).
PRELOAD = (
    "tfrs_course",  # first: it selects legacy Keras before TensorFlow loads
    "numpy",
    "pandas",
    "tfrs_course.data",
    "tfrs_course.grading",
    "tfrs_course.grading.worker",
    "IPython.core.inputtransformer2",  # how the worker reads cells with magics
)
# Imported too when a lesson's setup cell imports them (lesson 1's does not: its template and
# grading processes start seconds sooner without them).
TENSORFLOW = ("tensorflow", "tf_keras", "tensorflow_recommenders")
# TFRS code that AutoGraph converts in every model lesson's worker, the first time a graph runs it
# (Retrieval.call alone takes 0.7 s): (module, qualified name, converted as a tf.function is, i.e.
# at the user's request). A template with TensorFlow converts them once, before workers fork.
LIBRARY_CONVERSIONS = (
    ("tensorflow_recommenders.tasks.retrieval", "Retrieval.call", False),
    ("tensorflow_recommenders.layers.factorized_top_k", "BruteForce.call", False),
    ("tensorflow_recommenders.layers.factorized_top_k", "TopK._compute_score", False),
    ("tensorflow_recommenders.layers.factorized_top_k", "_exclude", False),
    ("tensorflow_recommenders.layers.factorized_top_k", "_take_along_axis", False),
    ("tensorflow_recommenders.layers.factorized_top_k", "TopK.query_with_exclusions", True),
)
MAX_CONTROL_BYTES = 1024 * 1024
# How long the grader waits for the template to start a worker. Its first answer comes after
# its imports, which take several seconds, and far longer on a busy machine.
ANSWER_SECONDS = 240.0


# --- the template process ----------------------------------------------------------------


def _send(control: socket.socket, message: dict) -> None:
    control.send(json.dumps(message).encode("utf-8"))


def _exit_code(error: SystemExit) -> int:
    """The status Python itself exits with for ``error``."""
    if error.code is None:
        return 0
    if isinstance(error.code, int):
        return error.code & 0xFF
    print(error.code, file=sys.stderr)
    return 1


def _child(control: socket.socket, template: int, streams: list[int], config: SandboxConfig) -> None:
    """Become a worker on the pipes the grader sent. Never returns."""
    code = 1
    try:
        os.setsid()  # a process group of its own, which the template kills as a whole
        die_with_parent()
        if os.getppid() != template:  # the template died before the line above
            os._exit(1)
        for target, stream in enumerate(streams):
            os.dup2(stream, target)
        # Every other file goes, the control socket included: student code can ask the template nothing.
        control.detach()
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        # A fresh interpreter seeds numpy's global generator from the system; forked ones would share one.
        import numpy

        numpy.random.seed()
        run_worker(config)
        code = 0
    except SystemExit as error:
        code = _exit_code(error)
    except BaseException:  # noqa: BLE001 - shown on the worker's stderr, as an interpreter would
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # the pipe is closed: nobody is left to read what was printed
        os._exit(code)


def serve(control: socket.socket) -> None:
    """Fork a worker for each request on ``control`` and report its end; return when the grader goes."""
    children: dict[int, int] = {}  # pidfd -> pid, for the workers not yet reaped
    template = os.getpid()
    try:
        while True:
            ready, _, _ = select.select([control, *children], [], [])
            for pidfd in [fd for fd in ready if fd in children]:
                pid = children.pop(pidfd)
                _, status = os.waitpid(pid, 0)
                os.close(pidfd)
                _send(control, {"op": "exited", "pid": pid, "status": status})
            if control not in ready:
                continue
            data, streams, _, _ = socket.recv_fds(control, MAX_CONTROL_BYTES, 3)
            if not data:
                return
            request = json.loads(data.decode("utf-8"))
            if request["op"] == "kill":
                if request["pid"] in children.values():
                    _kill(request["pid"])
                continue
            try:
                pid = os.fork()
            except OSError as error:
                pid = -1
                _send(control, {"op": "failed", "error": f"fork: {error}"})
            if pid == 0:
                _child(control, template, streams, SandboxConfig(**request["config"]))
            for stream in streams:
                os.close(stream)
            if pid > 0:
                children[os.pidfd_open(pid)] = pid
                _send(control, {"op": "started", "pid": pid})
    finally:
        for pid in children.values():
            _kill(pid)


def _kill(pid: int) -> None:
    """Kill a worker that is not yet reaped, and its process group (which it may not have made yet)."""
    os.kill(pid, signal.SIGKILL)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def modules(tensorflow: bool) -> list[str]:
    """What a template (or a grading process) imports: :data:`PRELOAD`, and :data:`TENSORFLOW` if asked."""
    return [*PRELOAD, *(TENSORFLOW if tensorflow else ())]


def preload(tensorflow: bool) -> None:
    """Import what every worker needs before student code runs (see :func:`modules`)."""
    for name in modules(tensorflow):
        importlib.import_module(name)
    if tensorflow:
        convert_library_code()


def convert_library_code() -> None:
    """Fill AutoGraph's cache with :data:`LIBRARY_CONVERSIONS`, as a graph that calls them would.

    Conversion is pure Python (it rewrites and compiles source; no TensorFlow op
    runs), so it is safe before a fork. The options are the ones AutoGraph uses
    for a layer's ``call`` and for a ``tf.function``: the cache is keyed by them,
    and a test checks that a preloaded process finds every entry.
    """
    from tensorflow.python.autograph.core import converter
    from tensorflow.python.autograph.impl import api

    # AutoGraph writes each converted module to a temporary file and deletes it at exit,
    # which a template ended by SIGKILL never reaches. The modules are loaded by then and
    # their files never read again, so they go in a folder of their own, removed here.
    scratch = tempfile.mkdtemp(prefix="tfrs-course-autograph-")
    previous, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        for module_name, qualified_name, requested in LIBRARY_CONVERSIONS:
            target = importlib.import_module(module_name)
            for attribute in qualified_name.split("."):
                target = getattr(target, attribute)
            options = converter.ConversionOptions(recursive=True, user_requested=requested, optional_features=None)
            api._convert_actual(getattr(target, "python_function", target), converter.ProgramContext(options=options))
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(scratch, ignore_errors=True)


def imports_tensorflow(setup: str) -> bool:
    """Whether a lesson's setup source imports TensorFlow, tf-keras or TFRS."""
    try:
        tree = ast.parse(setup)
    except SyntaxError:
        return True  # the worker will say what is wrong; the fuller template costs nothing more
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    return any(name.split(".")[0] in TENSORFLOW for name in names)


@functools.cache
def lesson_imports_tensorflow(lesson: str) -> bool:
    """Whether the lesson's setup cell (in its master notebook) imports TensorFlow."""
    from tfrs_course import layout
    from tfrs_course.grading.program import read_notebook, setup_source

    master = layout.lesson(lesson).master_notebook
    return imports_tensorflow(setup_source(read_notebook(master), master))


def main() -> None:
    die_with_parent()
    # The grader's socket arrives as standard input; keep it off fd 0, which children replace.
    control = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        preload(tensorflow=sys.argv[1:] == ["tensorflow"])
        os.close(os.pidfd_open(os.getpid()))  # the kernel must offer pidfds (Linux 5.3 and later)
    except Exception as error:  # noqa: BLE001 - the grader falls back to the plain launcher, with this reason
        _send(control, {"op": "failed", "error": f"{type(error).__name__}: {error}"})
        return
    serve(control)


# --- the grader's side ------------------------------------------------------------------


class TemplateError(Exception):
    """The template could not start a worker."""


class Template:
    """The grader's handle on one template process.

    It dies with the thread that started it (``PR_SET_PDEATHSIG`` follows the
    thread): the grader's main thread, or a job process's.
    """

    def __init__(self, environment: dict[str, str], cwd: str, tensorflow: bool):
        self.environment, self.cwd, self.tensorflow = environment, cwd, tensorflow
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - our own module, no shell
                [sys.executable, "-I", "-m", __name__, *(["tensorflow"] if tensorflow else [])],
                stdin=theirs.fileno(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=environment, cwd=cwd, start_new_session=True,
            )  # fmt: skip
        self.control = ours
        self.lock = threading.RLock()
        self.statuses: dict[int, int] = {}  # pid -> wait status, reported and not yet collected
        self.answers: list[dict] = []  # the answers to start requests ("started" or "failed"), in order
        self.dead = False

    def _receive(self, deadline: float | None) -> bool:
        """Handle one message from the template; False if none came before ``deadline`` (or it is dead)."""
        if self.dead:
            return False
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        ready, _, _ = select.select([self.control], [], [], timeout)
        if not ready:
            return False
        try:
            data = self.control.recv(MAX_CONTROL_BYTES)
        except OSError:
            data = b""
        if not data:  # the template exited: whatever it had not reported died with it
            self.close()
            return False
        message = json.loads(data.decode("utf-8"))
        if message["op"] == "exited":
            self.statuses[message["pid"]] = message["status"]
        else:
            self.answers.append(message)
        return True

    def start(self, config: SandboxConfig) -> ForkedProcess:
        """A new worker with ``config``, forked by the template.

        Raises:
            TemplateError: the template is gone, or did not fork.
        """
        with self.lock:
            pipes = [os.pipe() for _ in range(3)]
            theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
            ours = [pipes[0][1], pipes[1][0], pipes[2][0]]
            try:
                request = json.dumps({"op": "start", "config": asdict(config)}).encode("utf-8")
                socket.send_fds(self.control, [request], theirs)
                deadline = time.monotonic() + ANSWER_SECONDS
                while not self.answers and self._receive(deadline):
                    pass
                if not self.answers:
                    reason = "it stopped" if self.dead else f"no answer within {ANSWER_SECONDS:.0f} s"
                    raise TemplateError(f"the template did not start a worker: {reason}")
                answer = self.answers.pop(0)
                if answer["op"] != "started":
                    raise TemplateError(f"the template did not start a worker: {answer.get('error')}")
            except (OSError, TemplateError) as error:
                for stream in ours:
                    os.close(stream)
                self.close()
                raise TemplateError(str(error)) from error
            finally:
                # Only the worker may hold these ends: the reply pipe then ends when the worker does.
                for stream in theirs:
                    os.close(stream)
            return ForkedProcess(self, answer["pid"], *ours)

    def wait(self, pid: int, timeout: float | None) -> int | None:
        """The worker's wait status, once the template reports it; None if the template died first.

        Raises:
            subprocess.TimeoutExpired: no report within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while pid not in self.statuses and not self.dead:
                if not self._receive(deadline) and not self.dead:
                    raise subprocess.TimeoutExpired(f"worker {pid}", timeout or 0.0)
            return self.statuses.pop(pid, None)

    def kill(self, pid: int) -> None:
        """Kill the worker's process group, if the template has not reaped the worker yet."""
        with self.lock:
            if self.dead:
                return
            try:
                self.control.send(json.dumps({"op": "kill", "pid": pid}).encode("utf-8"))
            except OSError:
                self.close()

    def usable(self, environment: dict[str, str], cwd: str, tensorflow: bool) -> bool:
        return (
            not self.dead and self.process.poll() is None and (environment, cwd) == (self.environment, self.cwd)
            and (self.tensorflow or not tensorflow)
        )  # fmt: skip

    def close(self) -> None:
        """Stop the template; its workers die with it."""
        self.dead = True
        self.control.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class ForkedProcess:
    """A worker forked by the template, with the parts of ``subprocess.Popen`` the grader uses."""

    def __init__(self, template: Template, pid: int, stdin: int, stdout: int, stderr: int):
        self.template, self.pid = template, pid
        self.stdin: BinaryIO = open(stdin, "wb", buffering=0)  # noqa: SIM115 - closed by the grader
        self.stdout: BinaryIO = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self.stderr: BinaryIO = open(stderr, "rb", buffering=0)  # noqa: SIM115
        self.returncode: int | None = None
        self.lost = False  # the template died before it reported this worker's end

    def wait(self, timeout: float | None = None) -> int:
        """Like ``Popen.wait``: the exit code, negative for a signal."""
        if self.returncode is None:
            status = self.template.wait(self.pid, timeout)
            self.lost = status is None
            # A lost worker was killed by the parent-death signal when the template died.
            self.returncode = -signal.SIGKILL if status is None else os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def kill_group(self) -> None:
        if self.returncode is None:
            self.template.kill(self.pid)


class LaunchedProcess(subprocess.Popen):
    """A worker started by the plain launcher, a fresh interpreter (where the template cannot run)."""

    lost = False  # nothing stands between the grader and this worker

    def __init__(self, config: SandboxConfig, environment: dict[str, str], cwd: str):
        super().__init__(  # noqa: S603 - our own launcher, no shell
            launcher_command(config),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=environment, cwd=cwd, start_new_session=True, bufsize=0,
        )  # fmt: skip

    def kill_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_template: Template | None = None
_lock = threading.Lock()
# Why this process starts workers with the plain launcher, if it does.
unavailable = "" if sys.platform.startswith("linux") and hasattr(os, "pidfd_open") else "no pidfds here"


def job_context(lessons: Iterable[str]) -> multiprocessing.context.BaseContext:
    """How ``tfrs-course grade --jobs N`` starts its grading processes for ``lessons``.

    Where the template runs, they are forked from multiprocessing's fork server after
    it has imported what the lessons need (see :func:`modules`) and run no TensorFlow
    operation, so no job imports TensorFlow again; elsewhere each is a fresh interpreter.
    """
    if unavailable:
        return multiprocessing.get_context("spawn")
    _fork_server_socket_within_limits()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(modules(any(lesson_imports_tensorflow(lesson) for lesson in set(lessons))))
    return context


# The longest path an AF_UNIX socket may have on Linux (sun_path, less its final NUL).
_SOCKET_PATH_MAX = 107


def _fork_server_socket_within_limits() -> None:
    """Make multiprocessing put its fork server's socket where the path fits an AF_UNIX address.

    The socket goes in ``$TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX``. Under a long TMPDIR (a CI
    workspace, a nested scratch folder) that path is longer than Linux allows, and the fork
    server cannot start: the batch stopped with "AF_UNIX path too long" before grading anyone.
    Python 3.14 falls back to /tmp by itself (python/cpython#132124); 3.11 does not, so the
    folder is chosen here, before the server starts. multiprocessing keeps it for the rest of
    the process and removes it at exit.
    """
    socket_path = os.path.join(tempfile.gettempdir(), "pymp-XXXXXXXX", "listener-XXXXXXXX")
    if len(os.fsencode(socket_path)) <= _SOCKET_PATH_MAX:
        return
    previous, tempfile.tempdir = tempfile.tempdir, "/tmp"
    try:
        multiprocessing.util.get_temp_dir()
    finally:
        tempfile.tempdir = previous


def _current(environment: dict[str, str], cwd: str, tensorflow: bool) -> Template:
    """This process's template, started now if none runs that fits (call with ``_lock`` held).

    A template with TensorFlow serves every lesson; one without is replaced by one with
    it when a lesson needs it.
    """
    global _template
    if _template is None or not _template.usable(environment, cwd, tensorflow):
        if _template is not None:
            _template.close()
        _template = Template(environment, cwd, tensorflow)
    return _template


def warm_up(environment: dict[str, str], cwd: str, tensorflow: bool) -> None:
    """Start this process's template if it has none that fits, without waiting for it.

    Its imports then overlap with the grader's own work (loading the reference) before
    the first worker is asked for.
    """
    with _lock:
        if not unavailable:
            _current(environment, cwd, tensorflow)


def start_worker(
    config: SandboxConfig, environment: dict[str, str], cwd: str, tensorflow: bool
) -> ForkedProcess | LaunchedProcess:
    """A sandboxed worker with ``config``: forked by this process's template, or else launched fresh.

    ``tensorflow``: whether the lesson's setup imports it (the template then has it imported).
    A template that is gone is replaced; if a new one cannot start a worker either,
    this process uses the plain launcher from then on.
    """
    global _template, unavailable
    with _lock:
        for _ in range(2):
            if unavailable:
                break
            try:
                return _current(environment, cwd, tensorflow).start(config)
            except TemplateError as error:
                _template = None
                reason = str(error)
        else:
            unavailable = reason
        return LaunchedProcess(config, environment, cwd)


if __name__ == "__main__":
    main()
