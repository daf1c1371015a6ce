"""Submissions and folders that tried to fool the batch grader in ways the hostile fixtures do not.

Each test builds its class under ``tmp_path`` from lesson 1's solutions (the
cheapest lesson to grade) and grades it with the real grader and sandbox.
"""

import csv
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from tfrs_course.grading.batch import grade_folder
from tfrs_course.grading.runner import exercise_points
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

LESSON = "01_baseline_metrics"
FULL = {exercise: points.total for exercise, points in exercise_points(LESSON).items()}


def _honest():
    return student_copy_with_answers(LESSON, {exercise: solution_source(LESSON, exercise) for exercise in FULL})


def _write(submitted: Path, student: str, notebook) -> Path:
    path = submitted / student / LESSON / f"{LESSON}.ipynb"
    write_notebook(notebook, path)
    return path


def _rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _forged_record(graded: Path, student: str) -> dict:
    """An honest full-marks record, renamed to ``student``: what a student can hand in as a file."""
    record = json.loads(next(graded.glob(f"*/{LESSON}/result.json")).read_text())
    return dict(record, student=student, error="")


@pytest.fixture(scope="module")
def graded_honest(tmp_path_factory):
    """One honest submission graded: its folders and its record (a model for forged ones)."""
    root = tmp_path_factory.mktemp("honest")
    _write(root / "submitted", "honest", _honest())
    grade_folder(root / "submitted", root / "out", progress=False)
    return root


# --- the output folder and the submissions -------------------------------------------------


@pytest.mark.parametrize("where", ["same", "inside_submitted", "holds_submitted"])
def test_an_output_folder_that_overlaps_the_submissions_is_refused(graded_honest, tmp_path, where):
    """With OUT == SUBMITTED, a result.json a student handed in became a row of grades.csv."""
    submitted = tmp_path / "class" / "submitted"
    shutil.copytree(graded_honest / "submitted", submitted)
    planted = submitted / "mallory" / "notes" / "result.json"
    planted.parent.mkdir(parents=True)
    planted.write_text(json.dumps(_forged_record(graded_honest / "out", "friend")))
    out = {"same": submitted, "inside_submitted": submitted / "graded", "holds_submitted": tmp_path / "class"}[where]
    with pytest.raises(ValueError, match="must not overlap") as refused:
        grade_folder(submitted, out, progress=False)
    assert str(submitted) in str(refused.value) and str(out) in str(refused.value)
    assert not (out / "grades.csv").exists()


def test_a_record_in_a_folder_it_does_not_name_is_left_out_of_grades_csv(graded_honest, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded_honest / "out", out)
    planted = out / "honest" / "notes" / "result.json"
    planted.parent.mkdir()
    planted.write_text(json.dumps(_forged_record(out, "friend")))
    summary = grade_folder(graded_honest / "submitted", out, progress=False)
    assert [row["student_id"] for row in _rows(out)] == ["honest"]
    assert f"{planted}: left out" in summary and "names another student or lesson" in summary


# --- notebooks ---------------------------------------------------------------------------------


def _without_metadata(notebook, exercise: str):
    """The notebook with one answer cell retyped into a new cell: same code, a new id, no nbgrader metadata."""
    position, answer = next(
        (index, cell) for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise
    )  # fmt: skip
    notebook.cells[position] = nbformat.v4.new_code_cell(answer.source)
    return notebook


def _below_the_stub(notebook, exercise: str):
    """The notebook with the exercise's stub left as handed out and the answer in a new cell after its tests."""
    from tfrs_course import layout

    lesson_copy = nbformat.read(layout.lesson(LESSON).student_notebook, as_version=4)
    stub = next(cell for cell in lesson_copy.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise)
    position, answer = next(
        (index, cell) for index, cell in enumerate(notebook.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == exercise
    )  # fmt: skip
    notebook.cells.insert(position + 3, nbformat.v4.new_code_cell(answer.source))  # after its two test cells
    answer.source = stub.source
    return notebook


@pytest.mark.parametrize("exercise", ["select_top_users", "top_k_accuracy"])
@pytest.mark.parametrize("how", [_without_metadata, _below_the_stub])
def test_an_answer_retyped_into_a_new_cell_is_graded_whichever_exercise_it_is(tmp_path, exercise, how):
    """The last exercise's answer, retyped into a cell without metadata (in place of its answer cell, or
    below the stub), used to score 0: only cells before the last answer cell with metadata ran.
    Jupyter and nbgrader run it."""
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "retyped", how(_honest(), exercise))
    grade_folder(submitted, out, progress=False)
    row = _rows(out)[0]
    assert {name: float(row[name]) for name in FULL} == FULL, (out / "retyped" / LESSON / "feedback.md").read_text()


def test_a_cell_with_a_nul_byte_gets_a_syntax_error_without_line_none():
    """Python's parser gives no line for a NUL byte; the message said 'syntax error on line None'."""
    from tfrs_course.grading.program import runnable_statements

    statements, problem = runnable_statements("def f():\n    return 1\nX = '\x00'\n")
    assert statements == []
    assert problem == "syntax error: source code string cannot contain null bytes"


def test_a_number_too_long_to_read_is_a_notebook_error_not_a_failure_of_the_grader(tmp_path):
    """Python refuses to read an integer of more than 4,300 digits with a plain ValueError, which
    escaped as 'grading it failed in the grader (ValueError: Exceeds the limit ...)'."""
    from tfrs_course.grading.program import NotebookError, read_notebook

    path = tmp_path / f"{LESSON}.ipynb"
    path.write_text('{"nbformat": 4, "cells": [], "metadata": {"n": ' + "1" * 5000 + "}}")
    with pytest.raises(NotebookError, match="not valid notebook JSON") as error:
        read_notebook(path)
    assert str(path) in str(error.value) and "digits" in str(error.value)


def test_an_old_notebook_full_of_outputs_is_upgraded_without_holding_the_grader(tmp_path):
    """Upgrading an nbformat 3 notebook validated each of its outputs: 600,000 empty outputs (20 MB)
    held the grader's process for over ten minutes, outside every limit. Grading never reads outputs."""
    import subprocess
    import sys

    from tfrs_course.environment import subprocess_environment

    old = json.loads(nbformat.writes(nbformat.convert(_honest(), 3), version=3))
    old["worksheets"][0]["cells"][5]["outputs"] = [{"output_type": "stream", "stream": "stdout", "text": ""}] * 600_000
    path = tmp_path / "submitted" / "old_format" / LESSON / f"{LESSON}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    command = [str(Path(sys.executable).parent / "tfrs-course"), "grade", str(tmp_path / "submitted"),
               "--out", str(tmp_path / "out"), "--quiet"]  # fmt: skip
    # A limit that tells a hang from grading (seconds), not a timing goal.
    finished = subprocess.run(command, env=subprocess_environment(), capture_output=True, text=True, timeout=300)  # noqa: S603
    assert finished.returncode == 0, finished.stderr
    row = _rows(tmp_path / "out")[0]
    assert {name: float(row[name]) for name in FULL} == FULL, row


def test_a_notebook_larger_than_memory_gets_its_named_zero_in_every_run(tmp_path):
    """Its digest read the whole file at once: a 64 GB (sparse) notebook scored 0 with 'grading it
    failed in the grader (MemoryError: )', and every rerun stopped with a MemoryError traceback
    before grading anyone. One of 20 GB would have filled the grader's memory."""
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "honest", _honest())
    huge = submitted / "huge" / LESSON / f"{LESSON}.ipynb"
    huge.parent.mkdir(parents=True)
    with open(huge, "wb") as stream:
        stream.truncate(64 * 1024**3)  # sparse: no disk is used
    for _ in range(2):
        grade_folder(submitted, out, progress=False)
        rows = {row["student_id"]: row for row in _rows(out)}
        assert "bytes is larger than the 52,428,800 bytes allowed" in rows["huge"]["error"], rows["huge"]
        assert {name: float(rows["honest"][name]) for name in FULL} == FULL


def test_a_notebook_of_millions_of_empty_objects_is_refused_before_it_is_parsed(tmp_path):
    """48 MB of `{},{},...` in a notebook's metadata took 1.3 GB of the grader's memory to parse
    (per grading process): the size limit alone does not bound it."""
    from tfrs_course.grading.program import NotebookError, read_notebook

    path = tmp_path / f"{LESSON}.ipynb"
    path.write_text('{"nbformat": 4, "cells": [], "metadata": {"x": [' + ",".join(["{}"] * 16_000_000) + "]}}")
    with pytest.raises(NotebookError, match="16,000,004 JSON objects and lists, more than the 2,000,000") as error:
        read_notebook(path)
    assert str(path) in str(error.value)


# --- the layout of submitted/ ------------------------------------------------------------------


def test_a_notebook_under_another_name_or_in_place_of_its_folder_is_named(tmp_path):
    """A notebook saved as `<lesson>.ipynb.txt` got only 'no such notebook'; one saved as a file named
    after the lesson (its extension lost), in place of the lesson's folder, was skipped without a word."""
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    honest = _write(submitted, "honest", _honest())
    (submitted / "bob" / LESSON).mkdir(parents=True)
    shutil.copy(honest, submitted / "bob" / LESSON / f"{LESSON}.ipynb.txt")
    (submitted / "alice").mkdir()
    shutil.copy(honest, submitted / "alice" / LESSON)
    shutil.copy(honest, submitted / "alice" / f"{LESSON}.zip")
    (submitted / "alice" / ".DS_Store").write_bytes(b"\0")
    summary = grade_folder(submitted, out, progress=False)
    rows = {row["student_id"]: row for row in _rows(out)}
    assert set(rows) == {"honest", "bob"}
    assert f"{LESSON}.ipynb.txt" in rows["bob"]["error"] and "no notebook" in rows["bob"]["error"]
    for name in (LESSON, f"{LESSON}.zip"):
        assert f"{submitted / 'alice' / name}: not a notebook in a lesson folder; skipped" in summary, summary
    assert ".DS_Store" not in summary


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--call-timeout", "--submission-timeout"])
@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_time_limit_that_is_not_above_zero_is_refused_by_name(tmp_path, capsys, flag, value):
    """`--call-timeout 0` (or -5, or nan) graded every notebook of the class 0, with no error anywhere."""
    from tfrs_course.cli import main

    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "honest", _honest())
    with pytest.raises(SystemExit) as stopped:
        main(["grade", str(submitted), "--out", str(out), "--quiet", flag, value])
    assert stopped.value.code == 2
    assert f"argument {flag}: expected a number of seconds above 0, got '{value}'" in capsys.readouterr().err
    assert not out.exists()


def test_a_long_student_id_written_in_hex_costs_nothing(tmp_path):
    """An id starting with '.' or '%' is written as '%' and its bytes in hex: twice as long, so one of
    200 bytes made a folder name the file system refuses, and the whole batch stopped with
    'File name too long' before grading anyone."""
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    long_ids = ["." + "x" * 200, "%" + "y" * 254]
    for student in ["honest", *long_ids]:
        _write(submitted, student, _honest())
    grade_folder(submitted, out, progress=False)
    rows = {row["student_id"]: row for row in _rows(out)}
    assert set(rows) == {"honest", *long_ids}
    for row in rows.values():
        assert {name: float(row[name]) for name in FULL} == FULL, row
    assert "Graded 0 notebook(s), reused 3" in grade_folder(submitted, out, progress=False)


def test_an_archive_handed_in_instead_of_a_folder_is_named(tmp_path):
    """`submitted/alice.zip` or `submitted/bob/work.zip`, never extracted, were skipped without a word:
    the student had no row and the summary did not say why."""
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "honest", _honest())
    (submitted / "alice.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (submitted / "bob").mkdir()
    (submitted / "bob" / "work.tar.gz").write_bytes(b"\x1f\x8b")
    (submitted / "notes.txt").write_text("not a submission")
    summary = grade_folder(submitted, out, progress=False)
    assert [row["student_id"] for row in _rows(out)] == ["honest"]
    for archive in (submitted / "alice.zip", submitted / "bob" / "work.tar.gz"):
        assert f"{archive}: an archive; skipped (extract it so that" in summary, summary
    assert "notes.txt" not in summary


# --- the worker's replies ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_graders_time_to_decode_a_reply_counts_against_the_submission():
    """A reply of many empty arrays is cheap to send and slow to decode (each is a .npy header the
    grader checks and loads): that decoding, in the grader, counted against no limit, so a submission
    could hold its grading process longer than its grading time."""
    import time

    from tfrs_course import layout
    from tfrs_course.grading.isolated import IsolatedStudentCode
    from tfrs_course.grading.program import AnswerCell, build_program, read_notebook

    heavy = "import numpy as np\ndef heavy():\n    return [np.zeros(0)] * 60_000\n"
    master = layout.lesson(LESSON).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master)
    program.answers = [AnswerCell("heavy", heavy)]
    code = IsolatedStudentCode(program)
    try:
        code.call("heavy")  # starts the worker, whose loading is counted on its own
        before = code._spent
        started = time.monotonic()
        assert len(code.call("heavy")) == 60_000
        elapsed = time.monotonic() - started
    finally:
        code.close()
    assert code._spent - before >= 0.9 * elapsed, (code._spent - before, elapsed)


def test_a_grader_started_in_a_deleted_folder_says_so_instead_of_zeroing_the_class(tmp_path):
    """pytest needs the current folder: started from one deleted since (its shell still in it), the
    grader scored every notebook 0 with 'grading it failed in the grader (FileNotFoundError: [Errno 2]
    No such file or directory)'."""
    import subprocess
    import sys

    from tfrs_course.environment import subprocess_environment

    submitted, out, gone = tmp_path / "submitted", tmp_path / "out", tmp_path / "gone"
    _write(submitted, "honest", _honest())
    gone.mkdir()
    tfrs_course = Path(sys.executable).parent / "tfrs-course"
    script = f'cd "{gone}" && rmdir "{gone}" && exec "{tfrs_course}" grade "{submitted}" --out "{out}" --quiet'
    finished = subprocess.run(["sh", "-c", script], env=subprocess_environment(), capture_output=True, text=True)  # noqa: S603, S607
    assert finished.returncode == 2, (finished.stdout, finished.stderr)
    assert "the current folder no longer exists" in finished.stderr
    assert not (out / "grades.csv").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PYTEST_ADDOPTS", "-k small"), ("PYTEST_ADDOPTS", "-x -n 4"), ("PYTEST_PLUGINS", "no_such_plugin")],
)
def test_the_instructors_pytest_settings_have_no_say_in_a_verdict(tmp_path, monkeypatch, variable, value):
    """pytest reads PYTEST_ADDOPTS and PYTEST_PLUGINS from the environment: left set in the instructor's
    shell, `-k small` graded an honest notebook 2 / 8 with no error (and the record was reused by
    the next run, without it), `-n 4` or an unknown plugin failed every notebook."""
    monkeypatch.setenv(variable, value)
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _write(submitted, "honest", _honest())
    grade_folder(submitted, out, progress=False)
    row = _rows(out)[0]
    assert {name: float(row[name]) for name in FULL} == FULL and row["error"] == "", row
    assert os.environ[variable] == value  # put back for the rest of the process
