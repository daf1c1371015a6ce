"""Hardened grading: hostile and broken submissions cost only themselves.

Every fixture in tests/fixtures/hostile/ replaces lesson 1's top_k_accuracy answer
of an otherwise correct submission. The whole class is graded in one batch, with
the real sandbox (when the tests run as root, as CI does: namespaces, an
unprivileged uid, hidden paths) and real limits.
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

from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.batch import grade_folder, merge_outputs
from tfrs_course.grading.isolated import Limits
from tfrs_course.grading.sandbox import SandboxConfig, sandbox_capabilities
from tfrs_course.lessons import solution_source, student_copy_with_answers, write_notebook

# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("hardened")

LESSON = "01_baseline_metrics"
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
FULL = {"select_top_users": 4.0, "most_popular_items": 3.0, "top_k_accuracy": 5.0}
AS_ROOT = sandbox_capabilities()["unprivileged_user"]
# Small limits keep the endless loop and the fork bomb cheap to grade.
FAST_LIMITS = Limits(
    call_seconds=3, exercise_seconds=8, load_seconds=60, submission_seconds=120,
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
}

# What the honest part of an answer earns: these two return 0.0 for every k, which is
# right for the "no rows" test (1 point). Their cheating must add nothing to that.
HONEST_POINTS = {"forge_results": 1.0, "monkeypatch": 1.0}


def _answers(**overrides: str) -> dict[str, str]:
    answers = {exercise: solution_source(LESSON, exercise) for exercise in FULL}
    answers.update(overrides)
    return answers


def _write(submitted: Path, student: str, notebook) -> Path:
    path = submitted / student / LESSON / f"{LESSON}.ipynb"
    write_notebook(notebook, path)
    return path


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    submitted = tmp_path_factory.mktemp("submitted")
    out = tmp_path_factory.mktemp("graded")
    _write(submitted, "honest", student_copy_with_answers(LESSON, _answers()))
    for fixture in sorted(HOSTILE.glob("*.py")):
        if fixture.stem == "fork_bomb" and not AS_ROOT:
            continue  # without the root-run sandbox's process cap it would load the machine
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
NEEDS_ROOT = {"read_reference", "forge_results", "fork_bomb"}
HOSTILE_CASES = [
    pytest.param(name, marks=pytest.mark.skipif(not AS_ROOT, reason="needs the root-run sandbox"))
    if name in NEEDS_ROOT
    else name
    for name in sorted(REASONS)
]


@pytest.mark.parametrize("fixture", HOSTILE_CASES)
def test_hostile_answer_earns_nothing_and_costs_nothing_else(hostile_class, fixture):
    _, out, rows, _ = hostile_class
    honest_part = HONEST_POINTS.get(fixture, 0.0)
    assert _scores(rows[fixture]) == {**FULL, "top_k_accuracy": honest_part}, rows[fixture]
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


def test_nothing_outside_the_worker_was_written(hostile_class):
    _, out, rows, _ = hostile_class
    record = json.loads((out / "forge_results" / LESSON / "result.json").read_text())
    assert record["student"] == "forge_results" and rows["forge_results"]["total"] == "8"
    assert (out / "grades.csv").read_text().startswith("student_id,lesson,select_top_users")


@pytest.mark.skipif(not AS_ROOT, reason="the sandbox hides paths and drops privileges only when run as root")
def test_worker_runs_unprivileged_without_network_and_without_the_secrets(tmp_path):
    probe = (
        "import os, socket\n"
        "def probe(paths):\n"
        "    readable = [p for p in paths if os.access(p, os.R_OK) and os.path.exists(p) and os.listdir(p)]\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "        network = 'reachable'\n"
        "    except OSError as error:\n"
        "        network = type(error).__name__\n"
        "    return {'uid': os.getuid(), 'readable': readable, 'network': network,\n"
        "            'cwd': os.listdir('.'), 'environment': sorted(os.environ)}\n"
    )
    from tfrs_course import paths
    from tfrs_course.grading.isolated import IsolatedStudentCode
    from tfrs_course.grading.notebook import AnswerCell, build_program, read_notebook

    master = paths.solutions_dir() / LESSON / f"{LESSON}.ipynb"
    program = build_program(read_notebook(master), read_notebook(master), master)
    program.answers = [AnswerCell("probe", probe)]
    secrets = [str(paths.solutions_dir()), str(paths.autograder_dir()), str(tmp_path)]
    (tmp_path / "other_student.ipynb").write_text("{}")
    code = IsolatedStudentCode(program, limits=Limits(sandbox=SandboxConfig(hide=secrets)))
    try:
        report = code.call("probe", secrets)
    finally:
        code.close()
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
    write_raw("nbformat_3", json.dumps(v3).encode(), "nbformat 3")
    big = json.loads(nbformat.writes(solved))
    big["metadata"]["padding"] = "x" * (60 * 1024 * 1024)
    write_raw("huge", json.dumps(big).encode(), "larger than")

    duplicated = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    answer = next(cell for cell in duplicated.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "top_k_accuracy")
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
    cases["reordered_cells"] = (FULL, "Score: **12 / 12**")

    no_tests = nbformat.from_dict(json.loads(nbformat.writes(solved)))
    no_tests.cells = [c for c in no_tests.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    _write(submitted, "deleted_test_cells", no_tests)
    cases["deleted_test_cells"] = (FULL, "Score: **12 / 12**")

    renamed = student_copy_with_answers(
        LESSON, _answers(select_top_users=solution_source(LESSON, "select_top_users").replace("def select_top_users", "def top_users"))
    )
    _write(submitted, "renamed_function", renamed)
    cases["renamed_function"] = ({**FULL, "select_top_users": 0.0}, "Did you rename it")
    return cases


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
    wrong = (Path(__file__).parent / "fixtures" / "lesson01" / "top_k_off_by_one.py").read_text()
    for index in range(size):
        answers = _answers() if index % 2 == 0 else _answers(top_k_accuracy=wrong)
        _write(submitted, f"student{index:02d}", student_copy_with_answers(LESSON, answers))


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


def test_a_batch_killed_with_sigkill_resumes_without_regrading_or_duplicating(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _small_class(submitted, 6)
    command = [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(submitted), "--out", str(out), "--quiet"]
    batch = subprocess.Popen(command, env=subprocess_environment(), start_new_session=True)  # noqa: S603
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/*/result.json"))) < 2 and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.1)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    finished = {path: path.stat().st_mtime_ns for path in out.glob("*/*/result.json")}
    assert 2 <= len(finished) < 6, "kill the batch midway"
    assert not (out / "grades.csv").exists()
    completed = subprocess.run(command, env=subprocess_environment(), capture_output=True, text=True, check=False)  # noqa: S603
    assert completed.returncode == 0, completed.stderr
    assert f"reused {len(finished)} already graded" in completed.stdout
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    rows = list(csv.DictReader(open(out / "grades.csv", newline="")))
    assert sorted(row["student_id"] for row in rows) == [f"student{i:02d}" for i in range(6)]
    # Even-numbered students are right; odd ones have lesson 1's off-by-one mistake (4 points lost).
    assert [float(row["total"]) for row in rows] == [12.0, 8.0] * 3
