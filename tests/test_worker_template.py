"""The worker template: sandboxed workers forked from a process that has imported TensorFlow.

Each test grades real code in real workers (the root-run sandbox when the tests run
as root, as CI does). What must hold: every worker still gets a sandbox of its own,
death messages still name the cause, a template that dies costs no submission
anything and leaves no worker behind, and the template holds nothing of the course.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import tfrs_course
from tfrs_course import layout
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading import template
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits, grader_home
from tfrs_course.grading.program import AnswerCell, build_program, read_notebook
from tfrs_course.grading.sandbox import SandboxConfig, sandbox_capabilities
from tfrs_course.grading.student_code import StudentCodeError
from tfrs_course.grading.worker import DRIVER_PACKAGE, EXERCISE_HELPERS

pytestmark = [
    pytest.mark.xdist_group("hardened"),
    pytest.mark.skipif(template.unavailable != "", reason=f"no worker template here: {template.unavailable}"),
]

LESSON = "01_baseline_metrics"
AS_ROOT = sandbox_capabilities()["unprivileged_user"]
LIMITS = Limits(call_seconds=20, exercise_seconds=60, load_seconds=120, submission_seconds=300)

PROBE = """
import os, resource, socket, stat

def probe(marker):
    found = sorted(os.listdir('/tmp'))
    if marker:
        with open(os.path.join('/tmp', marker), 'w') as stream:
            stream.write('left by another submission')
    sockets = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            if stat.S_ISSOCK(os.fstat(int(fd)).st_mode):
                sockets.append(int(fd))
        except OSError:
            pass
    return {'pid': os.getpid(), 'uid': os.getuid(), 'pid_namespace': os.readlink('/proc/self/ns/pid'),
            'tmp': found, 'sockets': sockets, 'address_space': resource.getrlimit(resource.RLIMIT_AS)[0],
            'environment': dict(os.environ), 'cwd': os.getcwd()}

def slow(x, seconds):
    import time
    time.sleep(seconds)
    return x + 1

def burn():
    while True:
        pass

def hang():
    import time
    time.sleep(3600)

def crash():
    import ctypes
    ctypes.string_at(0)
"""


def _code(limits: Limits = LIMITS) -> IsolatedStudentCode:
    master = layout.lesson(LESSON).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master, LESSON)
    program.answers = [AnswerCell("probe", PROBE)]
    return IsolatedStudentCode(program, limits=limits)


def _alive(pid: int) -> bool:
    """Running (a zombie, waiting to be reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _template_pid() -> int:
    assert template._template is not None and not template._template.dead
    return template._template.process.pid


def test_two_submissions_from_one_template_get_separate_sandboxes():
    reports, templates, workers = [], [], []
    # Only the root-run sandbox has a /tmp of its own; without it, the host's /tmp is left alone.
    for marker in ("first", "second") if AS_ROOT else ("", ""):
        code = _code()
        try:
            reports.append(code.call("probe", marker))
            templates.append(_template_pid())
            workers.append(code._worker.process.pid)
            assert isinstance(code._worker.process, template.ForkedProcess)
        finally:
            code.close()
    first, second = reports
    assert templates[0] == templates[1], "both workers should come from the same template"
    assert workers[0] != workers[1]
    assert first["sockets"] == [] and second["sockets"] == [], "a worker holds a socket (the template's?)"
    # The memory limit is the configured address space, whatever the template had mapped.
    assert first["address_space"] == LIMITS.sandbox.memory_bytes
    assert not any("GRAD" in name or "PYTEST" in name or "TFRS_COURSE" in name for name in first["environment"])
    if AS_ROOT:
        assert "first" not in second["tmp"], "the second worker saw the first one's /tmp"
        assert first["pid_namespace"] != second["pid_namespace"]
        # PID 1 of each worker's own PID namespace is the sandbox's init; the worker is its only child.
        assert first["pid"] == second["pid"] == 2, "each worker is the first child of its own namespace's init"
        assert first["uid"] != second["uid"] and 0 not in (first["uid"], second["uid"])
        # /tmp holds the worker's own folder, and the kit and its venv (read-only) when they live under /tmp.
        kit_under_tmp = {
            path.relative_to("/tmp").parts[0]
            for path in (Path(sys.prefix).resolve(), Path(tfrs_course.__file__).resolve())
            if Path("/tmp") in path.parents
        }
        assert set(first["tmp"]) == set(second["tmp"]) == {"work"} | kit_under_tmp and first["cwd"] == "/tmp/work"
        assert first["environment"]["HOME"] == "/tmp/work"


PLANT = """
import os
import tempfile

def plant(text):
    # AutoGraph (model.fit) leaves such a file, and the worker ends without exit handlers.
    left = tempfile.NamedTemporaryFile(prefix="__autograph_generated_file", suffix=".py", delete=False).name
    folder = os.path.expanduser('~/.config/matplotlib')
    planted = os.path.join(folder, 'matplotlibrc')
    found = open(planted).read() if os.path.exists(planted) else ''
    os.makedirs(folder, exist_ok=True)
    with open(planted, 'w') as stream:
        stream.write(text)
    return {'home': os.environ['HOME'], 'cwd': os.getcwd(), 'found': found, 'left': left}
"""


def test_without_the_sandbox_each_worker_has_a_home_of_its_own_removed_after_it():
    master = layout.lesson(LESSON).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master, LESSON)
    program.answers = [AnswerCell("plant", PLANT)]
    unsandboxed = replace(LIMITS, sandbox=SandboxConfig(isolate=False))
    reports = []
    for text in ("backend: first", "backend: second"):
        code = IsolatedStudentCode(program, limits=unsandboxed)
        try:
            reports.append(code.call("plant", text))
        finally:
            code.close()
        # Removed as soon as the worker ended: nothing of it reaches the next submission.
        assert not os.path.exists(reports[-1]["home"])
        assert not os.path.exists(reports[-1]["left"]), "a worker's temporary file outlived it"
    first, second = reports
    assert second["found"] == "", "the second worker read the first one's matplotlib settings"
    assert first["home"] != second["home"] and first["home"] == first["cwd"]
    # Under this grading process's private folder, never a fixed path another run or user shares.
    assert Path(first["home"]).parent == Path(grader_home()) and first["home"] != "/tmp/work"
    assert os.stat(grader_home()).st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (("crash",), "segmentation fault"),
        (("slow", 1, 30), "it was killed (out of memory or over its limits)"),  # killed from outside
        # 2 s of CPU, however long that takes on a busy machine (SIGXCPU; a worker that ignores
        # it is ended by the hard limit's SIGKILL 5 s later, which the sandbox reports as the CPU limit).
        (("burn",), "used up its CPU time"),
        (("hang",), "did not finish within 4 s"),
    ],
)
def test_a_worker_that_dies_or_hangs_gets_its_death_message(call, words):
    call_seconds = 4 if call[0] == "hang" else 120
    limits = Limits(
        call_seconds=call_seconds, exercise_seconds=300, load_seconds=120, sandbox=SandboxConfig(cpu_seconds=2)
    )
    code = _code(limits)
    try:
        assert code.call("slow", 1, 0) == 2  # loaded, in a forked worker
        worker = code._worker.process.pid
        if call[0] == "slow":  # as the kernel's out-of-memory killer would
            threading.Timer(1.0, os.kill, (worker, signal.SIGKILL)).start()
        with pytest.raises(StudentCodeError, match=re.escape(words)):
            code.call(*call)
        assert not _alive(worker), "the worker outlived its failed call"
        assert code.call("slow", 2, 0) == 3, "the next call gets a fresh worker"
    finally:
        code.close()


def test_defining_the_cells_counts_against_the_submission_time():
    # A cell that sleeps while it is defined: loading may take load_seconds (60 s), but the
    # whole submission only 4 s, so grading must give up after about 4 s, with a reason.
    limits = Limits(call_seconds=20, exercise_seconds=60, load_seconds=60, submission_seconds=4)
    master = layout.lesson(LESSON).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master, LESSON)
    program.answers = [AnswerCell("probe", PROBE + "\nimport time\npaused = time.sleep(30)\n")]
    code = IsolatedStudentCode(program, limits=limits)
    started = time.monotonic()
    try:
        with pytest.raises(StudentCodeError, match="while its cells were being defined, it did not answer in time"):
            code.call("slow", 1, 0)
    finally:
        code.close()
    assert time.monotonic() - started < 20, "loading was allowed more than the submission's time"


def test_a_template_killed_during_a_call_costs_the_call_nothing():
    code = _code()
    try:
        assert code.call("slow", 1, 0) == 2
        old_template, old_worker = _template_pid(), code._worker.process.pid

        def kill_the_template():
            time.sleep(1.0)  # the worker is sleeping inside the call by now
            os.kill(old_template, signal.SIGKILL)

        killer = threading.Thread(target=kill_the_template)
        killer.start()
        assert code.call("slow", 41, 3) == 42
        killer.join()
        assert _template_pid() != old_template, "a new template should have started"
        deadline = time.monotonic() + 10
        while _alive(old_worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(old_worker), "the dead template's worker is still running"
    finally:
        code.close()


def test_a_template_killed_mid_batch_still_grades_the_class(tmp_path):
    from tfrs_course.grading.batch import grade_folder
    from tfrs_course.grading.runner import exercise_points
    from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

    full = {exercise: points.total for exercise, points in exercise_points(LESSON).items()}
    solved = student_copy_with_answers(LESSON, {exercise: solution_source(LESSON, exercise) for exercise in full})
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for index in range(4):
        write_notebook(solved, submitted / f"student{index}" / LESSON / f"{LESSON}.ipynb")
    killed = []

    def kill_templates():
        # Kill the template twice while the class is graded: once mid-way, once more later.
        while len(killed) < 2 and not (out / "grades.csv").exists():
            time.sleep(0.3)
            current = template._template
            if current is not None and not current.dead and current.process.pid not in killed:
                if len(list(out.glob("*/*/result.json"))) >= len(killed) + 1:
                    killed.append(current.process.pid)
                    os.kill(current.process.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_templates, daemon=True)
    killer.start()
    grade_folder(submitted, out, limits=LIMITS, progress=False)
    killer.join(timeout=5)
    assert killed, "the template should have been killed during the batch"
    import csv

    with open(out / "grades.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 4
    for row in rows:
        assert {exercise: float(row[exercise]) for exercise in full} == full, row
        assert row["error"] == "", row


def test_the_template_holds_nothing_of_the_course_and_no_thread():
    code = _code()
    try:
        code.call("slow", 1, 0)
        pid = _template_pid()
        assert len(os.listdir(f"/proc/{pid}/task")) == 1, "the template runs threads: forking it is unsafe"
        course = layout.course()
        mapped = Path(f"/proc/{pid}/maps").read_text()
        assert str(course.solutions_dir) not in mapped and str(course.autograder_dir) not in mapped
    finally:
        code.close()
    # What the template imports, in a fresh interpreter, exactly as the template does.
    script = (
        "import json, sys\n"
        "from tfrs_course.grading.template import preload\n"
        "preload(tensorflow=True)\n"
        "print(json.dumps({name: getattr(module, '__file__', None) or '' for name, module in sys.modules.items()}))\n"
    )
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-c", script], env=subprocess_environment(), capture_output=True, text=True, check=True
    )
    modules = json.loads(completed.stdout.strip().splitlines()[-1])
    helpers = [
        name for name in modules
        if any(name == blocked or name.startswith(blocked + ".") for blocked in EXERCISE_HELPERS)
    ]  # fmt: skip
    # The drivers' loader module itself is trusted plumbing; no lesson's drivers are loaded.
    assert helpers == [DRIVER_PACKAGE] or helpers == [], helpers
    course_files = [
        name for name, path in modules.items()
        if path and Path(path).resolve().is_relative_to(course.solutions_dir.resolve())
        or path and Path(path).resolve().is_relative_to(course.autograder_dir.resolve())
    ]  # fmt: skip
    assert course_files == []
    assert "tensorflow" in modules and "tensorflow_recommenders" in modules


def test_tensorflow_is_preloaded_only_for_lessons_whose_setup_imports_it():
    with template._lock:  # start from no template: earlier tests in this process may have left one
        if template._template is not None:
            template._template.close()
        template._template = None
    assert not template.lesson_imports_tensorflow(LESSON)
    assert template.lesson_imports_tensorflow("05_hybrid")
    assert template.imports_tensorflow("import tfrs_course\nfrom tensorflow import keras\n")
    code = _code()
    try:
        code.call("slow", 1, 0)
        lesson_one = template._template
        assert not lesson_one.tensorflow
    finally:
        code.close()
    master = layout.lesson("05_hybrid").master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master, "05_hybrid")
    program.answers = [AnswerCell("probe", PROBE)]
    code = IsolatedStudentCode(program, limits=LIMITS)
    try:
        assert code.call("slow", 1, 0) == 2
        assert template._template is not lesson_one and template._template.tensorflow
        assert lesson_one.dead, "the template without TensorFlow should have been stopped"
    finally:
        code.close()
    code = _code()
    try:
        code.call("slow", 1, 0)
        assert template._template.tensorflow, "a template with TensorFlow serves lesson 1 too"
    finally:
        code.close()


def test_the_plain_launcher_still_grades_where_the_template_cannot_run(monkeypatch):
    monkeypatch.setattr(template, "unavailable", "switched off by this test")
    code = _code()
    try:
        report = code.call("probe", "")
        assert isinstance(code._worker.process, template.LaunchedProcess)
        assert report["sockets"] == [] and report["address_space"] == LIMITS.sandbox.memory_bytes
        with pytest.raises(StudentCodeError, match="segmentation fault"):
            code.call("crash")
    finally:
        code.close()


LIBRARY_CALLS = """
import json, os, sys, tempfile
import tfrs_course
from tfrs_course.grading import template
if sys.argv[1] == "preloaded":
    template.preload(tensorflow=True)
    # A template ends by SIGKILL, with no exit handlers: its conversions must leave no file.
    assert os.listdir(tempfile.gettempdir()) == [], os.listdir(tempfile.gettempdir())
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tensorflow.python.autograph.impl import api
from tfrs_course.grading.graph_mode import as_fit_runs_it
converted = []
convert = api._convert_actual
def noting(entity, context):
    # Called on every converted call; it converts only what AutoGraph's cache does not hold.
    if not api._TRANSPILER._cache.has(entity, api._TRANSPILER.get_caching_key(context)):
        converted.append(f"{entity.__module__}:{entity.__qualname__}")
    return convert(entity, context)
api._convert_actual = noting
task = tfrs.tasks.Retrieval()
vectors = tf.TensorSpec([None, 4], tf.float32)
as_fit_runs_it(lambda users, items: task(users, items), [vectors, vectors])(tf.ones([3, 4]), tf.ones([3, 4]))
index = tfrs.layers.factorized_top_k.BruteForce(k=2)
index.index(tf.ones([5, 4]), tf.constant(["a", "b", "c", "d", "e"]))
index.query_with_exclusions(tf.ones([2, 4]), tf.constant([["a"], ["b"]]))
print(json.dumps(converted))
"""


def test_the_template_converts_the_library_code_workers_run_in_graphs(tmp_path):
    """A fresh worker would spend about a second converting TFRS's code; forked from the template, none."""

    def converted(mode: str) -> set[str]:
        scratch = tmp_path / mode
        scratch.mkdir()
        completed = subprocess.run(  # noqa: S603
            [sys.executable, "-I", "-c", LIBRARY_CALLS, mode],
            env={**subprocess_environment(), "TMPDIR": str(scratch)}, capture_output=True, text=True,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr[-3000:]
        return set(json.loads(completed.stdout.strip().splitlines()[-1]))

    listed = {f"{module}:{name}" for module, name, _ in template.LIBRARY_CONVERSIONS}
    assert listed <= converted("fresh"), "each listed function is converted when a lesson's graph runs it"
    assert not listed & converted("preloaded"), "AutoGraph's cache must already hold every listed function"
