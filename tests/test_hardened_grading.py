"""Hardened grading: hostile and broken submissions cost only themselves.

Every fixture in tests/fixtures/hostile/ replaces lesson 1's top_k_accuracy answer
of an otherwise correct submission. The whole class is graded in one batch, with
the real sandbox (when the tests run as root, as CI does: namespaces, an
unprivileged uid, a new root holding only what the worker needs) and real limits.
tests/fixtures/hostile/honest/ holds honest answers in styles the notebook accepts;
they must score full marks.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import grade_folder, merge_outputs
from tfrs_course.grading.isolated import Limits
from tfrs_course.grading.runner import exercise_points
from tfrs_course.grading.sandbox import SandboxConfig, sandbox_capabilities
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("hardened")

LESSON = "01_baseline_metrics"
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
FULL = {exercise: points.total for exercise, points in exercise_points(LESSON).items()}
# The one test a stub that returns 0.0 for every k passes ("no rows"): it is what the
# honest part of some hostile answers earns; their cheating must add nothing to it.
NO_ROWS_TEST = "test_top_k_accuracy_no_rows"
TOTAL = sum(FULL.values())
AS_ROOT = sandbox_capabilities()["unprivileged_user"]
# Small limits keep the endless loop and the fork bomb cheap to grade.
FAST_LIMITS = Limits(
    call_seconds=3, exercise_seconds=8, load_seconds=60, submission_seconds=120, reply_bytes=4 * 1024**2,
    sandbox=SandboxConfig(memory_bytes=3 * 1024**3),
)  # fmt: skip

# fixture -> words the top_k_accuracy feedback must contain (the one-line reason).
REASONS = {
    "syntax_error": "syntax error on line 1",
    "import_error": "ModuleNotFoundError",
    "endless_loop": "did not finish within 3 s",
    "segfault": "segmentation fault",
    "os_exit": "exited with status 0",
    "sys_exit": "exited with status 0",
    "memory_bomb": "MemoryError",
    "print_flood": "more than the 10 MB allowed",
    "fork_bomb": "did not finish within 3 s",
    "forged_equality": "tests cannot use",
    "monkeypatch": "expected:",
    "read_reference": "found nothing to copy",
    "forge_results": "expected:",
    # Nothing in the worker gives grading away, so it takes its "not graded" branch.
    "detects_grading": "expected:",
    # Issue 13's classes.
    "read_bundled_reference": "found nothing to copy",
    "kit_answers": "not available while your notebook is graded",
    "kit_source": "the kit gave nothing away",
    "huge_reply": "bytes allowed",
    "huge_message": "characters cut",
    "markdown_injection": "Injected heading",
    "leak_hidden_inputs": "seen ",
    "write_outside": "expected:",
    # Stops reading requests and fills its request pipe: the grader's write must time out too.
    "stall_request_pipe": "did not finish within 3 s",
}

# These return 0.0 for every k, which is right for the "no rows" test only.
RETURN_ZEROS = {"forge_results", "monkeypatch", "write_outside"}
# Its cell breaks numpy and builtins for the rest of its own notebook, as it would in
# Jupyter: its other exercises may suffer too (its worker may not even load), and no
# reason is promised. It must gain nothing.
SELF_HARM = {"monkeypatch"}
REASONS["monkeypatch"] = ""


def _answers(**overrides: str) -> dict[str, str]:
    answers = {exercise: solution_source(LESSON, exercise) for exercise in FULL}
    answers.update(overrides)
    return answers


def _write(submitted: Path, student: str, notebook) -> Path:
    path = submitted / student / LESSON / f"{LESSON}.ipynb"
    write_notebook(notebook, path)
    return path


MARKER = "tfrs-course-hostile-marker"  # what write_outside.py tries to leave behind
WRITABLE_PLACES = ("/run/lock", "/var/lock", "/var/tmp", "/dev/shm", "/dev/mqueue", "/tmp")
HOSTILE_SEGMENT_KEY = 0x7F5EED01


def _shared_memory_segment(key: int, create: bool = False) -> int:
    """The id of the System V shared memory segment with ``key`` (created if asked), or -1."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.shmget(key, 4096, 0o1600 if create else 0)


def _remove_shared_memory_segment(key: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    segment = libc.shmget(key, 0, 0)
    if segment != -1:
        libc.shmctl(segment, 0, None)  # IPC_RMID


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    for place in WRITABLE_PLACES:
        (Path(place) / MARKER).unlink(missing_ok=True)
    _remove_shared_memory_segment(HOSTILE_SEGMENT_KEY)
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    _write(submitted, "honest", student_copy_with_answers(LESSON, _answers()))
    for fixture in sorted(HOSTILE.glob("*.py")):
        if fixture.stem in NEEDS_ROOT and not AS_ROOT:
            continue  # without the root-run sandbox they would reach the grader's files and the host
        answer = fixture.read_text()
        _write(submitted, fixture.stem, student_copy_with_answers(LESSON, _answers(top_k_accuracy=answer)))
    # A conftest.py and a sitecustomize.py shipped next to a notebook must change nothing.
    shipped = submitted / "ships_conftest" / LESSON
    _write(submitted, "ships_conftest", student_copy_with_answers(LESSON, _answers()))
    cheat = "import builtins\nbuiltins.open = None\nraise SystemExit(0)\n"
    (shipped / "conftest.py").write_text(cheat)
    (shipped / "sitecustomize.py").write_text(cheat)
    started = time.perf_counter()
    summary = grade_folder(submitted, out, jobs=2, limits=FAST_LIMITS, progress=False)
    print(f"graded {len(list(submitted.iterdir()))} hostile submissions in {time.perf_counter() - started:.1f} s")
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    return submitted, out, rows, summary


def _scores(row) -> dict[str, float]:
    return {exercise: float(row[exercise]) for exercise in FULL}


# Only the root-run sandbox hides other files and caps the worker's own processes.
NEEDS_ROOT = {"read_reference", "forge_results", "fork_bomb", "read_bundled_reference", "kit_source", "write_outside"}
HOSTILE_CASES = [
    pytest.param(name, marks=pytest.mark.skipif(not AS_ROOT, reason="needs the root-run sandbox"))
    if name in NEEDS_ROOT
    else name
    for name in sorted(REASONS)
]


def _passed(out: Path, student: str, exercise: str) -> set[str]:
    record = json.loads((out / student / LESSON / "result.json").read_text())
    return {result["test"] for result in record["results"] if result["exercise"] == exercise and result["passed"]}


@pytest.mark.parametrize("fixture", HOSTILE_CASES)
def test_hostile_answer_earns_nothing_and_costs_nothing_else(hostile_class, fixture):
    _, out, rows, _ = hostile_class
    others = {exercise: points for exercise, points in FULL.items() if exercise != "top_k_accuracy"}
    if fixture not in SELF_HARM:
        assert {exercise: _scores(rows[fixture])[exercise] for exercise in others} == others, rows[fixture]
    honest_part = {NO_ROWS_TEST} if fixture in RETURN_ZEROS else set()
    passed = _passed(out, fixture, "top_k_accuracy")
    assert passed <= honest_part if fixture in SELF_HARM else passed == honest_part, rows[fixture]
    feedback = (out / fixture / LESSON / "feedback.md").read_text()
    assert REASONS[fixture] in feedback


def test_the_honest_submission_in_the_same_batch_is_graded_normally(hostile_class):
    _, _, rows, _ = hostile_class
    assert _scores(rows["honest"]) == FULL
    assert _scores(rows["ships_conftest"]) == FULL


def test_exiting_while_cells_are_defined_zeroes_the_submission_with_a_reason(hostile_class):
    _, _, rows, summary = hostile_class
    row = rows["exit_before_tests"]
    assert float(row["total"]) == 0.0
    assert "could not load" in row["error"] and "No test could run" in row["error"]
    assert "exit_before_tests" in summary


@pytest.mark.skipif(not AS_ROOT, reason="needs the root-run sandbox")
def test_nothing_outside_the_worker_was_written(hostile_class):
    _, out, rows, _ = hostile_class
    record = json.loads((out / "forge_results" / LESSON / "result.json").read_text())
    assert record["student"] == "forge_results" and record["error"] == ""
    assert (out / "grades.csv").read_text().startswith("student_id,lesson,select_top_users")


@pytest.mark.skipif(not AS_ROOT, reason="only the root-run sandbox keeps the host's writable folders out of reach")
def test_no_file_or_shared_memory_outlives_the_worker(hostile_class):
    leftovers = [place for place in WRITABLE_PLACES if (Path(place) / MARKER).exists()]
    assert leftovers == [], f"a graded notebook left files in {leftovers}"
    assert _shared_memory_segment(HOSTILE_SEGMENT_KEY) == -1, "a graded notebook left a shared memory segment"


@pytest.mark.skipif(not AS_ROOT, reason="the sandbox hides paths and drops privileges only when run as root")
def test_worker_runs_unprivileged_without_network_and_without_the_secrets(tmp_path):
    probe = (
        "import os, socket\n"
        "def probe(paths, key):\n"
        "    readable = [p for p in paths if os.access(p, os.R_OK) and os.path.exists(p) and os.listdir(p)]\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "        network = 'reachable'\n"
        "    except OSError as error:\n"
        "        network = type(error).__name__\n"
        "    import ctypes\n"
        "    segment = ctypes.CDLL(None, use_errno=True).shmget(key, 0, 0)\n"
        "    writable = [p for p in ('/run/lock', '/var/lock', '/var/tmp', '/dev/mqueue') if os.access(p, os.W_OK)]\n"
        "    return {'uid': os.getuid(), 'readable': readable, 'network': network,\n"
        "            'cwd': os.listdir('.'), 'environment': sorted(os.environ),\n"
        "            'processes': [p for p in os.listdir('/proc') if p.isdigit()],\n"
        "            'segment': segment, 'writable': writable}\n"
    )
    from tfrs_course.grading.isolated import IsolatedStudentCode
    from tfrs_course.grading.program import AnswerCell, build_program, read_notebook

    master = layout.lesson(LESSON).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master)
    program.answers = [AnswerCell("probe", probe)]
    secrets = [str(layout.course().solutions_dir), str(layout.course().autograder_dir), str(tmp_path)]
    (tmp_path / "other_student.ipynb").write_text("{}")
    code = IsolatedStudentCode(program, limits=Limits(sandbox=SandboxConfig(hide=secrets)))
    key = 0x7F5EED02
    host_segment = _shared_memory_segment(key, create=True)
    try:
        report = code.call("probe", secrets, key)
    finally:
        code.close()
        _remove_shared_memory_segment(key)
    assert host_segment != -1
    assert report["segment"] == -1, "the worker reached the host's shared memory"
    assert sorted(report["processes"]) == ["1", "2"], "the worker saw processes other than its own and its init"
    assert report["writable"] == []
    assert report["uid"] != 0
    assert report["readable"] == []
    assert report["network"] != "reachable"
    assert report["cwd"] == []
    assert not any("GRAD" in name or "PYTEST" in name or "TFRS_COURSE" in name for name in report["environment"])


# --- bad notebooks ---------------------------------------------------------------------


def _bad_notebooks(submitted: Path) -> dict[str, str]:
    """Writes each broken notebook; returns student -> words its error or feedback must contain."""
    solved = student_copy_with_answers(LESSON, _answers())
    expectations = {}

    def write_raw(student, data: bytes, words):
        path = submitted / student / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        expectations[student] = words

    write_raw("invalid_json", b'{"cells": [', "not valid notebook JSON")
    write_raw("non_utf8", b'{"cells": [], "nbformat": 4, "note": "\xff\xfe"}', "not UTF-8")
    v3 = {"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}
    write_raw("nbformat_3_broken", json.dumps(dict(v3, worksheets="none")).encode(), "could not be upgraded")
    write_raw("nbformat_5", json.dumps(dict(v3, nbformat=5)).encode(), "nbformat 5")
    # Many tiny cells: upgrading them would take the grader's time outside any limit.
    tiny = [{"cell_type": "code", "input": "", "outputs": [], "language": "python"}] * 60_000
    write_raw("many_cells", json.dumps(dict(v3, worksheets=[{"cells": tiny}])).encode(), "60,000 cells, more than")
    big = json.loads(nbformat.writes(solved))
    big["metadata"]["padding"] = "x" * (60 * 1024 * 1024)
    write_raw("huge", json.dumps(big).encode(), "bytes is larger than the 52,428,800 bytes allowed")

    duplicated = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    answer = next(
        cell for cell in duplicated.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "top_k_accuracy"
    )
    duplicated.cells.append(nbformat.from_dict(dict(answer, id="copy")))
    _write(submitted, "duplicated_cell", duplicated)
    expectations["duplicated_cell"] = "appears more than once"
    return expectations


def _partial_notebooks(submitted: Path) -> dict[str, tuple[dict, str]]:
    """Notebooks that grade, with the exercises they lose: student -> (scores, feedback words)."""
    cases = {}
    solved = student_copy_with_answers(LESSON, _answers())

    missing = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    missing.cells = [c for c in missing.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "most_popular_items"]
    _write(submitted, "missing_cell", missing)
    cases["missing_cell"] = ({**FULL, "most_popular_items": 0.0}, "no function named most_popular_items")

    reordered = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    reordered.cells = list(reversed(reordered.cells))
    _write(submitted, "reordered_cells", reordered)
    cases["reordered_cells"] = (FULL, f"Score: **{TOTAL:g} / {TOTAL:g}**")

    no_tests = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    no_tests.cells = [c for c in no_tests.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    _write(submitted, "deleted_test_cells", no_tests)
    cases["deleted_test_cells"] = (FULL, f"Score: **{TOTAL:g} / {TOTAL:g}**")

    renamed = student_copy_with_answers(
        LESSON,
        _answers(
            select_top_users=solution_source(LESSON, "select_top_users").replace(
                "def select_top_users", "def top_users"
            )
        ),
    )
    _write(submitted, "renamed_function", renamed)
    cases["renamed_function"] = ({**FULL, "select_top_users": 0.0}, "Did you rename it")
    return cases


@pytest.mark.slow
def test_bad_notebooks_get_a_clear_error_and_nothing_else_is_lost(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "honest", student_copy_with_answers(LESSON, _answers()))
    broken = _bad_notebooks(submitted)
    partial = _partial_notebooks(submitted)
    grade_folder(submitted, out, progress=False)
    with open(out / "grades.csv", newline="") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    assert _scores(rows["honest"]) == FULL
    for student, words in broken.items():
        assert float(rows[student]["total"]) == 0.0, student
        assert words in rows[student]["error"], (student, rows[student]["error"])
        assert student in rows[student]["error"] or LESSON in rows[student]["error"]
    for student, (scores, words) in partial.items():
        assert _scores(rows[student]) == scores, student
        assert words in (out / student / LESSON / "feedback.md").read_text(), student


# --- the batch: parallel, resumable, sharded -------------------------------------------------


def _small_class(submitted: Path, size: int) -> None:
    wrong = (layout.lesson(LESSON).fixtures / "top_k_off_by_one.py").read_text()
    for index in range(size):
        answers = _answers() if index % 2 == 0 else _answers(top_k_accuracy=wrong)
        _write(submitted, f"student{index:02d}", student_copy_with_answers(LESSON, answers))


@pytest.mark.slow
def test_shards_merge_into_the_same_grades_as_one_run(tmp_path):
    submitted = tmp_path / "submitted"
    _small_class(submitted, 5)
    grade_folder(submitted, tmp_path / "whole", jobs=2, progress=False)
    for index in (1, 2):
        grade_folder(submitted, tmp_path / f"part{index}", shard=(index, 2), progress=False)
    parts = [tmp_path / "part2", tmp_path / "part1"]
    assert not set(os.listdir(parts[0])) & set(os.listdir(parts[1])) - {"grades.csv"}
    merge_outputs(parts, tmp_path / "merged")
    assert (tmp_path / "merged" / "grades.csv").read_text() == (tmp_path / "whole" / "grades.csv").read_text()


@pytest.mark.slow
def test_a_batch_killed_with_sigkill_resumes_without_regrading_or_duplicating(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _small_class(submitted, 6)
    command = [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(submitted), "--out", str(out), "--quiet"]
    # A grader killed with SIGKILL cannot remove its temporary folders: they go in the test's.
    environment = {**subprocess_environment(), "TMPDIR": str(tmp_path)}
    batch = subprocess.Popen(command, env=environment, start_new_session=True)  # noqa: S603
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/*/result.json"))) < 2 and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.1)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    finished = {path: path.stat().st_mtime_ns for path in out.glob("*/*/result.json")}
    assert 2 <= len(finished) < 6, "kill the batch midway"
    assert not (out / "grades.csv").exists()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    assert completed.returncode == 0, completed.stderr
    assert f"reused {len(finished)} already graded" in completed.stdout
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    rows = list(csv.DictReader(open(out / "grades.csv", newline="")))
    assert sorted(row["student_id"] for row in rows) == [f"student{i:02d}" for i in range(6)]
    # Even-numbered students are right; odd ones have lesson 1's off-by-one mistake (points lost).
    totals = [float(row["total"]) for row in rows]
    assert totals[0::2] == [TOTAL] * 3 and len(set(totals[1::2])) == 1 and totals[1] < TOTAL


# --- issue 13: the classes a trial on real submissions found ------------------------------


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as stream:
        return {row["student_id"]: row for row in csv.DictReader(stream)}


def test_feedback_shows_student_text_only_as_code(hostile_class):
    from markdown_it import MarkdownIt

    _, out, _, _ = hostile_class
    feedback = (out / "markdown_injection" / LESSON / "feedback.md").read_text()
    rendered = MarkdownIt("commonmark").render(feedback)
    assert "Injected heading" in rendered
    assert "<h1>Injected" not in rendered and "<img" not in rendered and "<a href" not in rendered


def test_hidden_inputs_never_reach_a_visible_message(hostile_class):
    """A visible test's message can only reflect what visible tests gave the student's code."""
    from tfrs_course.grading.runner import run_tests
    from tfrs_course.grading.student_code import StudentCode

    submitted, out, _, _ = hostile_class
    notebook = submitted / "leak_hidden_inputs" / LESSON / f"{LESSON}.ipynb"
    master = layout.lesson(LESSON).master_notebook
    visible_only = run_tests(LESSON, {"alone": lambda: StudentCode.from_notebook(notebook, master)}, hidden=False)
    expected = {r.test: r.message for r in visible_only.results if r.exercise == "top_k_accuracy"}
    record = json.loads((out / "leak_hidden_inputs" / LESSON / "result.json").read_text())
    shown = {
        r["test"]: r["message"] for r in record["results"] if r["exercise"] == "top_k_accuracy" and not r["hidden"]
    }
    assert expected and all("seen " in message for message in expected.values())
    assert shown == expected


def _honest_styles_notebook():
    honest = HOSTILE / "honest"
    answers = _answers(**{name: (honest / f"{name}.ipy").read_text() for name in FULL})
    notebook = student_copy_with_answers(LESSON, answers)
    position = next(
        index for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "most_popular_items"
    )  # fmt: skip
    notebook.cells.insert(position, nbformat.v4.new_code_cell((honest / "added_cell.ipy").read_text()))
    return notebook


def test_honest_answers_in_any_notebook_style_score_full_marks(tmp_path):
    """Magics, shell lines, lambdas, computed constants, parameters, an added cell; and an nbformat 3 copy."""
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    notebook = _honest_styles_notebook()
    _write(submitted, "honest_styles", notebook)
    old_format = nbformat.convert(student_copy_with_answers(LESSON, _answers()), 3)
    path = submitted / "nbformat_3" / LESSON / f"{LESSON}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(nbformat.writes(old_format, version=3))
    grade_folder(submitted, out, progress=False)
    rows = _rows(out)
    assert _scores(rows["honest_styles"]) == FULL, (out / "honest_styles" / LESSON / "feedback.md").read_text()
    assert _scores(rows["nbformat_3"]) == FULL, rows["nbformat_3"]


def _unbreakable_class(submitted: Path) -> dict[str, str]:
    """Notebooks that used to stop the whole batch: student -> words of their named error ('' if they grade)."""
    solved = json.loads(nbformat.writes(student_copy_with_answers(LESSON, _answers())))
    cases: dict[str, str] = {}

    def write(student: str | bytes, data: bytes, words: str) -> Path:
        folder = submitted / os.fsdecode(student) / LESSON
        folder.mkdir(parents=True)
        (folder / f"{LESSON}.ipynb").write_bytes(data)
        cases[os.fsdecode(student)] = words
        return folder / f"{LESSON}.ipynb"

    bare = dict(solved, cells=["print('a cell as a bare string')"])
    write("bare_string_cell", json.dumps(bare).encode(), "is not a cell")
    listed = json.loads(json.dumps(solved))
    listed["cells"][3]["metadata"] = ["not", "an", "object"]
    write("metadata_as_list", json.dumps(listed).encode(), "metadata is not an object")
    write("deeply_nested", b'{"nbformat": 4, "cells": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply")
    for name, code in {
        "huge_expression": "X = " + "+".join(["1"] * 200_000) + "\n",
        "huge_elif_chain": "def f(x):\n    if x == 0:\n        return 0\n"
        + "".join(f"    elif x == {i}:\n        return {i}\n" for i in range(1, 30_000)),
        "lone_surrogate": "MESSAGE = 'half of a pair: \ud800'\nraise ValueError(MESSAGE)\n",
    }.items():
        parsed = json.loads(json.dumps(solved))
        answer = next(
            c for c in parsed["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "top_k_accuracy"
        )
        answer["source"] = code + solution_source(LESSON, "top_k_accuracy")
        write(name, json.dumps(parsed).encode(), "")  # ensure_ascii: the surrogate travels as \ud800
    write(b"caf\xe9_latin1_name", json.dumps(solved).encode(), "")
    write("grades.csv", json.dumps(solved).encode(), "")
    honest = write("honest", json.dumps(solved).encode(), "")
    linked = submitted / "symlinked_notebook" / LESSON
    linked.mkdir(parents=True)
    (linked / f"{LESSON}.ipynb").symlink_to(honest)
    cases["symlinked_notebook"] = "symbolic link"
    (submitted / "symlinked_folder").symlink_to(honest.parent.parent)
    cases["symlinked_folder"] = "symbolic link"
    pipe = submitted / "named_pipe" / LESSON
    pipe.mkdir(parents=True)
    os.mkfifo(pipe / f"{LESSON}.ipynb")  # reading it would block the grader forever
    cases["named_pipe"] = "not a regular file"
    return cases


@pytest.mark.slow
def test_a_batch_always_finishes_and_each_broken_notebook_gets_a_named_zero(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    cases = _unbreakable_class(submitted)
    summary = grade_folder(submitted, out, jobs=2, limits=FAST_LIMITS, progress=False)
    assert (out / "grades.csv").is_file(), summary
    rows = _rows(out)
    printable = {name.encode("utf-8", "backslashreplace").decode(): name for name in cases}
    assert set(rows) == set(printable), summary
    for shown, name in printable.items():
        row, words = rows[shown], cases[name]
        if words:
            assert float(row["total"]) == 0.0 and words in row["error"], (name, row)
            assert LESSON in row["error"], row
        elif name in ("honest", "grades.csv") or name.startswith("caf"):
            assert _scores(row) == FULL, (name, row)
        else:  # student code the parser cannot take costs that exercise at most, never the batch
            assert {e: float(row[e]) for e in FULL if e != "top_k_accuracy"} == {
                e: p for e, p in FULL.items() if e != "top_k_accuracy"
            }, (name, row)


def _copy_of_the_kit(root: Path) -> Path:
    """The kit, its lessons and tests copied under ``root`` with a virtualenv that uses this one's packages."""
    import shutil
    import sysconfig

    from tfrs_course import paths

    kit = root / "kit"
    source = paths.PACKAGE_DIR.parent
    ignore = shutil.ignore_patterns("__pycache__", "_course", ".ipynb_checkpoints")
    for folder in ("tfrs_course", "solutions", "autograder", "lessons"):
        shutil.copytree(source / folder, kit / folder, ignore=ignore)
    shutil.copy(source / "pyproject.toml", kit / "pyproject.toml")
    venv = kit / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: S603
    site = next(venv.glob("lib/python*/site-packages"))
    # What an editable install writes: the copy first, then this environment's packages.
    (site / "_kit.pth").write_text(f"{kit}\n")
    (site / "deps.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")
    return kit


def test_grading_works_from_a_copy_of_the_kit_under_tmp(tmp_path):
    assert str(tmp_path).startswith("/tmp/")
    kit = _copy_of_the_kit(tmp_path)
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "honest", student_copy_with_answers(LESSON, _answers()))
    answer = (HOSTILE / "read_reference.py").read_text()
    _write(submitted, "reads_reference", student_copy_with_answers(LESSON, _answers(top_k_accuracy=answer)))
    python = kit / ".venv" / "bin" / "python"
    script = "import sys; from tfrs_course.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [str(python), "-c", script, "grade", str(submitted), "--out", str(out), "--quiet"]
    completed = subprocess.run(command, env=subprocess_environment(), capture_output=True, text=True, cwd=tmp_path)  # noqa: S603
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = _rows(out)
    assert _scores(rows["honest"]) == FULL, rows["honest"]
    if AS_ROOT:
        assert float(rows["reads_reference"]["top_k_accuracy"]) == 0.0, rows["reads_reference"]


@pytest.mark.slow
def test_code_run_while_cells_are_defined_cannot_replace_a_driver():
    """A decorator in an answer cell reassigns lesson 2's loss driver; the stub must still score nothing."""
    from tfrs_course.grading.isolated import IsolatedStudentCode
    from tfrs_course.grading.program import build_program, read_notebook
    from tfrs_course.grading.runner import run_tests

    lesson = "02_keras_retrieval"
    attack = (
        "from tfrs_course.grading.drivers import load\n"
        "_drivers = load('02_keras_retrieval')\n"
        "def _swap(function):\n"
        "    def loss(lookup, name, queries, candidates):\n"
        "        import tensorflow as tf\n"
        "        q, c = tf.constant(queries, tf.float32), tf.constant(candidates, tf.float32)\n"
        "        scores = tf.linalg.matmul(q, c, transpose_b=True)\n"
        "        labels = tf.eye(tf.shape(scores)[0], tf.shape(scores)[1])\n"
        "        return float(tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=scores)))\n"
        "    _drivers.call_loss = loss\n"
        "    return function\n"
        "@_swap\n"
        "def in_batch_softmax_loss(query_embeddings, candidate_embeddings):\n"
        "    raise NotImplementedError\n"
    )
    notebook = json.loads(nbformat.writes(student_copy_with_answers(lesson, {"in_batch_softmax_loss": attack})))
    master = layout.lesson(lesson).master_notebook
    program = build_program(notebook, read_notebook(master), master, lesson)
    code = IsolatedStudentCode(program, limits=FAST_LIMITS)
    try:
        run = run_tests(lesson, {"attacker": lambda: code}, exercises=["in_batch_softmax_loss"])
    finally:
        code.close()
    assert run.results and not any(result.passed for result in run.results), [r.message for r in run.results]


def _descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, set()).add(int(entry.name))
    found, frontier = set(), {pid}
    while frontier:
        frontier = set().union(*(children.get(p, set()) for p in frontier)) - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, waiting for init to reap it, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_grader_killed_with_sigkill_leaves_no_processes_behind(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _small_class(submitted, 4)
    command = [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(submitted), "--out", str(out),
               "--quiet", "--jobs", "2"]  # fmt: skip
    # A grader killed with SIGKILL cannot remove its temporary folders: they go in the test's.
    environment = {**subprocess_environment(), "TMPDIR": str(tmp_path)}
    batch = subprocess.Popen(command, env=environment, start_new_session=True)  # noqa: S603
    deadline = time.monotonic() + 180
    left: set[int] = set()
    while not (left and list(out.glob("*/*/result.json"))) and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.2)
        left |= _descendants(batch.pid)
    assert batch.poll() is None and left, "the batch should be running jobs"
    os.kill(batch.pid, signal.SIGKILL)  # the grader alone, as an out-of-memory killer would
    batch.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in left):
        time.sleep(0.2)
    lingering = [pid for pid in left if _alive(pid)]
    for pid in lingering:
        os.kill(pid, signal.SIGKILL)
    assert lingering == []
