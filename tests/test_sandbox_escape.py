"""Escapes from the root-run sandbox: a worker that outlives its grading, and the kernel keyring.

Each fixture in tests/fixtures/hostile_sandbox/ replaces lesson 1's top_k_accuracy
answer of an otherwise correct submission, and is graded for real: the namespace
sandbox when the tests run as root, real limits. The system-call filter is also
checked on its own, in a fresh interpreter, which needs no root.
"""

import csv
import ctypes
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfrs_course import layout
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import grade_folder
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
from tfrs_course.grading.program import AnswerCell, build_program, read_notebook
from tfrs_course.grading.runner import exercise_points
from tfrs_course.grading.sandbox import INIT_UID, KEY_SYSCALLS, SandboxConfig, keyring_filter, sandbox_capabilities
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

# One module fixture, and survivors are looked for on the whole host: keep these tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("sandbox_escape")

LESSON = "01_baseline_metrics"
FIXTURES = Path(__file__).parent / "fixtures" / "hostile_sandbox"
FULL = {exercise: points.total for exercise, points in exercise_points(LESSON).items()}
AS_ROOT = sandbox_capabilities()["unprivileged_user"]
needs_root = pytest.mark.skipif(not AS_ROOT, reason="needs the root-run namespace sandbox")
SURVIVOR_NAME = "tfrs-survivor"  # the name survivor.py gives its processes
KEY_TAG = "tfrs-keyring-leak"  # what keyring.py's keys are called
FAST_LIMITS = Limits(
    call_seconds=3, exercise_seconds=8, load_seconds=60, submission_seconds=120,
    sandbox=SandboxConfig(memory_bytes=3 * 1024**3),
)  # fmt: skip
# add_key, request_key, keyctl, as this machine numbers them (None: no filter here).
NUMBERS = KEY_SYSCALLS.get(platform.machine(), (None, None))[1]
KEYCTL_INVALIDATE = 21


def _processes_named(name: str) -> list[int]:
    """Live processes (not zombies) with this command name, on the whole host."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == name:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except (OSError, IndexError):
            continue  # it ended while we looked
    return found


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def _host_keys(tag: str) -> list[str]:
    """The lines of the host's /proc/keys that name ``tag``."""
    return [line for line in Path("/proc/keys").read_text().splitlines() if tag in line]


def _invalidate_keys(tag: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for line in _host_keys(tag):
        libc.syscall(NUMBERS[2], KEYCTL_INVALIDATE, ctypes.c_long(int(line.split()[0], 16)))


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    _kill_all(_processes_named(SURVIVOR_NAME))
    _invalidate_keys(KEY_TAG)
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    answers = {exercise: solution_source(LESSON, exercise) for exercise in FULL}
    # Two workers run the keyring answer, one after the other (one grading process):
    # the second would find what the first stored.
    for student, fixture in (("keys_1", "keyring"), ("keys_2", "keyring"), ("survivor", "survivor")):
        answer = (FIXTURES / f"{fixture}.py").read_text()
        notebook = student_copy_with_answers(LESSON, {**answers, "top_k_accuracy": answer})
        write_notebook(notebook, submitted / student / LESSON / f"{LESSON}.ipynb")
    started = time.perf_counter()
    grade_folder(submitted, out, jobs=1, limits=FAST_LIMITS, progress=False)
    print(f"graded the hostile sandbox class in {time.perf_counter() - started:.1f} s")
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    yield out, rows
    _kill_all(_processes_named(SURVIVOR_NAME))
    _invalidate_keys(KEY_TAG)


@needs_root
@pytest.mark.skipif(NUMBERS is None, reason=f"no keyring filter on {platform.machine()}")
def test_a_worker_can_neither_keep_nor_find_keys_in_the_kernel_keyring(hostile_class):
    out, rows = hostile_class
    left_on_host = _host_keys(KEY_TAG)
    feedback = [(out / student / LESSON / "feedback.md").read_text() for student in ("keys_1", "keys_2")]
    assert left_on_host == [], "a worker left a key on the host"
    assert not any("LEAKED" in text for text in feedback), "a worker read a key an earlier worker stored"
    # The answer is right: the filter took nothing away that an honest answer needs.
    assert float(rows["keys_1"]["total"]) == float(rows["keys_2"]["total"]) == sum(FULL.values())


@needs_root
def test_nothing_a_worker_started_outlives_its_grading(hostile_class):
    out, rows = hostile_class
    # The kernel kills a namespace's processes as soon as its init ends, but not in the same instant.
    deadline = time.monotonic() + 10
    while _processes_named(SURVIVOR_NAME) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = _processes_named(SURVIVOR_NAME)
    _kill_all(survivors)
    assert survivors == [], "processes the worker started outlived the grading of the batch"
    assert float(rows["survivor"]["top_k_accuracy"]) == 0.0
    assert "did not finish within 3 s" in (out / "survivor" / LESSON / "feedback.md").read_text()


@needs_root
def test_the_worker_is_not_pid_1_and_cannot_reach_its_init():
    probe = (
        "import os, signal\n"
        "def probe():\n"
        "    try:\n"
        "        os.kill(1, signal.SIGKILL)\n"
        "        signalled = 'yes'\n"
        "    except OSError as error:\n"
        "        signalled = type(error).__name__\n"
        "    try:\n"
        "        open('/proc/1/environ').read()\n"
        "        traced = 'yes'\n"
        "    except OSError as error:\n"
        "        traced = type(error).__name__\n"
        "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "    init = dict(line.split(':', 1) for line in open('/proc/1/status'))\n"
        "    return {'pid': os.getpid(), 'signalled': signalled, 'traced': traced,\n"
        "            'init_uid': int(init['Uid'].split()[0]), 'uid': os.getuid(),\n"
        "            'no_new_privs': status['NoNewPrivs'].strip(), 'seccomp': status['Seccomp'].strip()}\n"
    )
    master = layout.lesson(LESSON).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master, LESSON)
    program.answers = [AnswerCell("probe", probe)]
    code = IsolatedStudentCode(program, limits=Limits(call_seconds=60))
    try:
        report = code.call("probe")
        assert code.call("probe")["pid"] == report["pid"], "signalling its init killed the worker"
    finally:
        code.close()
    assert report["pid"] != 1, "student code runs as PID 1: nothing kills what it leaves behind"
    assert report["init_uid"] == INIT_UID != report["uid"]
    assert report["signalled"] == "PermissionError"
    assert report["traced"] == "PermissionError"
    if keyring_filter() is not None:
        assert (report["no_new_privs"], report["seccomp"]) == ("1", "2")


FILTER_PROBE = """
import ctypes, json, sys
from tfrs_course.grading.sandbox import install_keyring_filter

libc = ctypes.CDLL(None, use_errno=True)
add_key, request_key, keyctl = (int(number) for number in sys.argv[1:4])

def outcome(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *args)
    return [result, ctypes.get_errno()]

def attempts():
    found = {
        "add_key": outcome(add_key, b"user", b"tfrs-filter-probe", b"x", 1, ctypes.c_long(-2)),
        "request_key": outcome(request_key, b"user", b"tfrs-no-such-key", None, ctypes.c_long(0)),
        "keyctl": outcome(keyctl, 0, ctypes.c_long(-2), 1),  # KEYCTL_GET_KEYRING_ID, created if need be
    }
    if sys.argv[4] == "x86_64":  # the same calls through the x32 ABI's numbers
        found["x32_add_key"] = outcome(0x40000000 + add_key, b"user", b"tfrs-filter-probe", b"x", 1,
                                       ctypes.c_long(-2))
        found["x32_keyctl"] = outcome(0x40000000 + keyctl, 0, ctypes.c_long(-2), 1)
    return found

before = attempts()
install_keyring_filter()
print(json.dumps({"before": before, "after": attempts()}))
"""


@pytest.mark.skipif(NUMBERS is None, reason=f"no keyring filter on {platform.machine()}")
def test_the_keyring_filter_refuses_every_key_call_through_every_abi(tmp_path):
    probe = subprocess.run(  # noqa: S603 - our own probe, no shell
        [sys.executable, "-I", "-c", FILTER_PROBE, *map(str, NUMBERS), platform.machine()],
        capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path, env=subprocess_environment(),
    )  # fmt: skip
    report = json.loads(probe.stdout)
    eperm = [-1, 1]
    if report["before"]["keyctl"] == eperm:
        pytest.skip("something outside the kit already refuses keyctl here")
    assert report["before"]["keyctl"][0] > 0, report  # the keyring works without the filter
    assert report["after"] == {call: eperm for call in report["before"]}, report


# keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, create) through the 32-bit ABI
# (int 0x80, keyctl is 288 there), as machine code: push rbx; mov eax, 288; mov ebx, 0;
# mov ecx, -2; mov edx, 1; int 0x80; pop rbx; ret.
I386_KEYCTL = "53b820010000bb00000000b9feffffffba01000000cd805bc3"
I386_PROBE = """
import ctypes, mmap
from tfrs_course.grading.sandbox import install_keyring_filter

memory = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
memory.write(bytes.fromhex(CODE))
keyctl = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(memory)))
print(keyctl(), flush=True)
install_keyring_filter()
print(keyctl(), flush=True)
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64's 32-bit system calls")
def test_the_keyring_filter_refuses_32_bit_calls_on_x86_64(tmp_path):
    probe = subprocess.run(  # noqa: S603 - our own probe, no shell
        [sys.executable, "-I", "-c", I386_PROBE.replace("CODE", repr(I386_KEYCTL))],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, env=subprocess_environment(),
    )  # fmt: skip
    results = [int(line) for line in probe.stdout.split()]
    if not results or results[0] < 0:
        pytest.skip(f"this kernel offers no 32-bit keyctl (stdout {probe.stdout!r}, status {probe.returncode})")
    assert results == [results[0], -1], "a 32-bit keyctl got past the filter"  # -EPERM, as int 0x80 returns it
