"""What an instructor runs into with the batch grader: reruns, Ctrl-C, several runs into one folder,
merging overlapping parts, and submissions laid out in other ways.

Every grade here is real (lesson 1, the real sandbox and worker); the Ctrl-C tests run
``tfrs-course grade`` as a subprocess and send it a real SIGINT.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.grading import batch
from tfrs_course.grading.batch import find_submissions, grade_folder, merge_outputs, record_path
from tfrs_course.grading.isolated import Limits
from tfrs_course.grading.results import LessonGrade, grades_csv
from tfrs_course.grading.sandbox import SandboxConfig
from tfrs_course.notebooks import solution_source, student_copy_with_answers, write_notebook

LESSON = "01_baseline_metrics"
EXERCISES = ("select_top_users", "most_popular_items", "top_k_accuracy")
REPO = Path(__file__).resolve().parents[1]
TFRS_COURSE = str(Path(sys.executable).parent / "tfrs-course")
# A correct answer that takes a minute on its first call: Ctrl-C arrives while it is graded.
SLOW = """
_correct_select_top_users = select_top_users


def select_top_users(*args, **kwargs):
    import time

    time.sleep(60)
    return _correct_select_top_users(*args, **kwargs)
"""


def _answers(slow: bool = False) -> dict[str, str]:
    answers = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    if slow:
        answers["select_top_users"] += SLOW
    return answers


def _hand_in(submitted: Path, student: str, name: str = f"{LESSON}.ipynb", slow: bool = False) -> Path:
    path = submitted / student / LESSON / name
    write_notebook(student_copy_with_answers(LESSON, _answers(slow)), path)
    return path


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory) -> Path:
    """One correct submission, graded: an OUT folder the tests copy."""
    root = tmp_path_factory.mktemp("graded-once")
    _hand_in(root / "submitted", "ada")
    grade_folder(root / "submitted", root / "out", progress=False)
    return root


# --- 1. a rerun regrades what other tests, code or limits graded --------------------------


def test_a_rerun_with_other_limits_grades_again(graded_once, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded_once / "out", out)
    submitted = graded_once / "submitted"
    assert "Graded 0 notebook(s), reused 1" in grade_folder(submitted, out, progress=False)
    # Only the hidden paths differ: no verdict can change, nothing is graded again.
    hiding = Limits(sandbox=SandboxConfig(hide=[str(tmp_path)]))
    assert "Graded 0 notebook(s), reused 1" in grade_folder(submitted, out, limits=hiding, progress=False)
    for limits in (Limits(call_seconds=100.0), Limits(sandbox=SandboxConfig(memory_bytes=5 * 1024**3))):
        assert "Graded 1 notebook(s), reused 0" in grade_folder(submitted, out, limits=limits, progress=False)
        assert "Graded 0 notebook(s), reused 1" in grade_folder(submitted, out, limits=limits, progress=False)
        assert LessonGrade.read(record_path(out, "ada", LESSON)).tests_fingerprint == batch.tests_fingerprint(
            LESSON, limits
        )


def _fingerprints(kit: Path) -> dict[str, str]:
    """Each lesson's fingerprint, computed by the copy of the kit in ``kit``."""
    script = (
        "import json; from tfrs_course import layout; from tfrs_course.grading.batch import tests_fingerprint; "
        "print(json.dumps({name: tests_fingerprint(name) for name in layout.course().lesson_names()}))"
    )
    environment = {**os.environ, "PYTHONPATH": str(kit)}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=kit, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def test_the_fingerprint_covers_drivers_and_the_kits_code_but_not_wrong_answers(tmp_path):
    kit = tmp_path / "kit"
    ignore = shutil.ignore_patterns("__pycache__", "_course")
    for folder in ("tfrs_course", "autograder", "solutions"):
        shutil.copytree(REPO / folder, kit / folder, ignore=ignore)
    assert "tfrs_course" not in {path.name for path in kit.iterdir() if path.is_file()}
    before = _fingerprints(kit)
    assert before == {name: batch.tests_fingerprint(name) for name in layout.course().lesson_names()}

    lesson_2 = "02_keras_retrieval"
    with (kit / "autograder" / lesson_2 / "drivers.py").open("a") as drivers:
        drivers.write("\n# a changed driver\n")
    after_drivers = _fingerprints(kit)
    assert after_drivers[lesson_2] != before[lesson_2]
    assert after_drivers[LESSON] == before[LESSON]

    for wrong_answer in (kit / "autograder" / LESSON / "mistakes").glob("*.py"):
        wrong_answer.write_text(wrong_answer.read_text() + "\n# edited\n")
    assert _fingerprints(kit) == after_drivers

    for kit_module in ("grading/assertions.py", "evaluation.py"):
        with (kit / "tfrs_course" / kit_module).open("a") as module:
            module.write("\n# changed\n")
        changed = _fingerprints(kit)
        assert changed[LESSON] != after_drivers[LESSON], kit_module
        after_drivers = changed


# --- 2. Ctrl-C stops the batch and records nothing for the interrupted submission -----------


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: its id and start time (which tells a reused id apart)."""
    parents, started = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            parents[int(entry.name)], started[int(entry.name)] = int(fields[1]), fields[19]
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = started[child]
                frontier.append(child)
    return found


def _still_running(processes: dict[int, str]) -> list[int]:
    alive = []
    for pid, start in processes.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_stops_the_batch_records_nothing_half_done_and_leaves_no_process(tmp_path, jobs):
    submitted, out = tmp_path / "submitted", tmp_path / "graded"
    _hand_in(submitted, "ada")
    _hand_in(submitted, "bob", slow=True)
    _hand_in(submitted, "cy", slow=True)
    command = [TFRS_COURSE, "grade", str(submitted), "--out", str(out), "--jobs", str(jobs), "--quiet"]
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    # A session of its own: the SIGINT goes to its whole process group, as a terminal's Ctrl-C does.
    grader = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(temporary)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not record_path(out, "ada", LESSON).is_file():
            assert grader.poll() is None, grader.communicate()
            assert time.monotonic() < deadline, "ada was never graded"
            time.sleep(0.2)
        time.sleep(2)  # bob's slow answer is running
        processes = _descendants(grader.pid)
        assert processes, "the grader started no process"
        interrupted = time.monotonic()
        os.killpg(grader.pid, signal.SIGINT)
        stdout, stderr = grader.communicate(timeout=60)
    finally:
        if grader.poll() is None:
            os.killpg(grader.pid, signal.SIGKILL)
    print(f"--jobs {jobs}: exited {time.monotonic() - interrupted:.1f} s after SIGINT")
    stderr_lines = stderr.decode().strip().splitlines()
    assert grader.returncode == 130, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert stderr_lines[-1].startswith("tfrs-course: interrupted: 1 notebook(s) graded and saved"), stderr_lines
    assert [line for line in stderr_lines if line.startswith("tfrs-course")] == stderr_lines[-1:]
    time.sleep(2)  # SIGKILLed stragglers (die with the grader) take a moment to go
    assert _still_running(processes) == []
    assert not record_path(out, "bob", LESSON).exists()
    assert not record_path(out, "cy", LESSON).exists()
    assert LessonGrade.read(record_path(out, "ada", LESSON)).total == 8
    assert [(row["student_id"], row["total"]) for row in _rows(out)] == [("ada", "8")], "grades.csv after Ctrl-C"
    assert sorted(path.name for path in temporary.iterdir()) == [], "Ctrl-C left temporary files"

    # A rerun grades the rest (quick answers this time) and keeps ada's record.
    _hand_in(submitted, "bob")
    _hand_in(submitted, "cy")
    summary = grade_folder(submitted, out, progress=False)
    assert "Graded 2 notebook(s), reused 1" in summary
    assert [(row["student_id"], row["total"], row["error"]) for row in _rows(out)] == [
        ("ada", "8", ""),
        ("bob", "8", ""),
        ("cy", "8", ""),
    ]


def test_a_long_temporary_folder_path_does_not_stop_a_parallel_batch(tmp_path):
    """The job processes' fork server listens on a socket under TMPDIR; a path longer than an AF_UNIX
    address allows (107 bytes) stopped the batch with 'AF_UNIX path too long' before grading anyone."""
    temporary = tmp_path / ("long-temporary-folder-" * 5)
    temporary.mkdir()
    assert len(str(temporary)) > 107 - len("/pymp-XXXXXXXX/listener-XXXXXXXX")
    submitted, out = tmp_path / "submitted", tmp_path / "graded"
    _hand_in(submitted, "ada")
    _hand_in(submitted, "bob")
    finished = subprocess.run(
        [TFRS_COURSE, "grade", str(submitted), "--out", str(out), "--jobs", "2", "--quiet"],
        env={**os.environ, "TMPDIR": str(temporary)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert [(row["student_id"], row["total"], row["error"]) for row in _rows(out)] == [
        ("ada", "8", ""),
        ("bob", "8", ""),
    ]
    assert sorted(path.name for path in temporary.iterdir()) == [], "the batch left files in TMPDIR"


def _pool_threads() -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if isinstance(thread, concurrent.futures.process._ExecutorManagerThread) and thread.is_alive()
    ]


def test_a_stopped_batch_leaves_no_pool_thread_for_the_interpreters_exit_to_race(tmp_path, monkeypatch):
    """Python 3.11's exit hook writes to each live pool thread's pipe while that thread may be
    closing it ("OSError: Bad file descriptor" after Ctrl-C: it failed one CI run, and a bare
    ProcessPoolExecutor script shows it in 3 runs of 40).
    So a stopped batch must return only once its pool threads have ended.

    On a busy machine a pool thread takes a while to wind down after its process dies; the
    delay below makes every run as slow as that, so the test does not depend on luck.
    """
    winding_down = concurrent.futures.process._ExecutorManagerThread.join_executor_internals

    def slowly(self) -> None:
        time.sleep(1)
        winding_down(self)

    monkeypatch.setattr(concurrent.futures.process._ExecutorManagerThread, "join_executor_internals", slowly)
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "ada")
    _hand_in(submitted, "bob", slow=True)
    _hand_in(submitted, "cy", slow=True)
    pending, problems = find_submissions(submitted)
    assert not problems
    assert _pool_threads() == []
    grades = batch._graded(pending, Limits(), jobs=2)
    first = next(grades)
    assert first.student == "ada", first
    grades.close()  # what Ctrl-C (or any error) in the caller's loop does to the batch
    assert _pool_threads() == [], "a pool thread outlived the batch"
    assert multiprocessing.active_children() == []


def test_a_job_process_that_dies_costs_only_the_notebook_it_was_grading(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "graded"
    students = [f"s{number}" for number in range(6)]
    for student in students:
        path = submitted / student / LESSON / f"{LESSON}.ipynb"
        answers = _answers()
        answers["select_top_users"] += SLOW.replace("time.sleep(60)", "time.sleep(1)")
        write_notebook(student_copy_with_answers(LESSON, answers), path)
    killed = []

    def kill_a_job_once_one_notebook_is_graded() -> None:
        deadline = time.monotonic() + 240
        while not list(out.glob(f"*/{LESSON}/*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the job processes are in their next notebooks' slow calls
        job = multiprocessing.active_children()[0]
        os.kill(job.pid, signal.SIGKILL)
        killed.append(job.pid)

    killer = threading.Thread(target=kill_a_job_once_one_notebook_is_graded)
    killer.start()
    grade_folder(submitted, out, jobs=2, progress=False)
    killer.join()
    assert killed, "no job process was killed"
    rows = {row["student_id"]: row for row in _rows(out)}
    assert sorted(rows) == students, "every notebook gets its row"
    stopped = [student for student, row in rows.items() if "the grading process stopped" in row["error"]]
    assert len(stopped) == 1, rows
    assert all(rows[student]["total"] == "8" for student in students if student not in stopped), rows


def test_a_pytest_plugin_installed_beside_the_kit_has_no_say_in_a_verdict(tmp_path):
    """An instructor's environment may hold any pytest plugin (pytest-randomly, pytest-timeout, or worse).
    pytest loads every installed one by default; the grader must run its tests without them."""
    site = tmp_path / "site"
    (site / "passes_everything-1.0.dist-info").mkdir(parents=True)
    (site / "passes_everything-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: passes-everything\nVersion: 1.0\n"
    )
    (site / "passes_everything-1.0.dist-info" / "entry_points.txt").write_text(
        "[pytest11]\npasses_everything = passes_everything\n"
    )
    (site / "passes_everything.py").write_text(
        "import pytest\n\n\n"
        "@pytest.hookimpl(wrapper=True)\n"
        "def pytest_pyfunc_call(pyfuncitem):\n"
        "    try:\n"
        "        return (yield)\n"
        "    except Exception:\n"
        "        return True\n"
    )
    submitted, out = tmp_path / "submitted", tmp_path / "graded"
    answers = _answers()
    answers["top_k_accuracy"] = "def top_k_accuracy(recommended, actual, k):\n    return 0.5\n"
    write_notebook(student_copy_with_answers(LESSON, answers), submitted / "ada" / LESSON / f"{LESSON}.ipynb")
    environment = {**os.environ, "PYTHONPATH": str(site)}
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('passes-everything'))"],
        env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert found.stdout.strip() == "1.0", "the plugin is not installed where pytest would find it"
    graded = subprocess.run(
        [TFRS_COURSE, "grade", str(submitted), "--out", str(out), "--quiet"], env=environment, capture_output=True
    )
    assert graded.returncode == 0, graded.stderr.decode()
    grade = LessonGrade.read(record_path(out, "ada", LESSON))
    failed = {result.test for result in grade.results if not result.passed}
    assert failed, "a wrong top_k_accuracy passed every test: the installed plugin decided the verdict"
    assert all(test.startswith("test_top_k_accuracy") for test in failed), failed


# --- 3. grades.csv holds every record in OUT; a grade that cannot be saved still gets its row --


@pytest.mark.slow
def test_a_batch_of_model_lessons_leaves_nothing_in_the_temporary_folder_and_no_tensorflow_warnings(tmp_path):
    """Job processes end without exit handlers, so AutoGraph's module files (one per function the
    reference converts) stayed in /tmp: thousands for a class. TensorFlow's retracing warnings from
    the reference reached the instructor's terminal."""
    lesson = "03_id_embeddings"
    master = nbformat.read(layout.lesson(lesson).master_notebook, as_version=4)
    exercises = [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in master.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    ]
    answers = {exercise: solution_source(lesson, exercise) for exercise in exercises}
    submitted, temporary = tmp_path / "submitted", tmp_path / "tmp"
    temporary.mkdir()
    for student in ("ada", "bob"):
        write_notebook(student_copy_with_answers(lesson, answers), submitted / student / lesson / f"{lesson}.ipynb")
    finished = subprocess.run(
        [TFRS_COURSE, "grade", str(submitted), "--out", str(tmp_path / "graded"), "--jobs", "2", "--quiet"],
        env={**os.environ, "TMPDIR": str(temporary)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    rows = _rows(tmp_path / "graded")
    assert [row["error"] for row in rows] == ["", ""] and rows[0]["total"] == rows[0]["max_score"], rows
    assert sorted(path.name for path in temporary.iterdir()) == [], "the batch left files in TMPDIR"
    assert "WARNING:tensorflow" not in finished.stderr, finished.stderr


def test_runs_of_different_students_into_one_folder_keep_every_row(graded_once, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded_once / "out", out)
    later = tmp_path / "later"
    _hand_in(later, "bob")
    summary = grade_folder(later, out, lessons=[LESSON], progress=False)
    assert "Graded 1 notebook(s), reused 0" in summary
    assert [(row["student_id"], row["total"]) for row in _rows(out)] == [("ada", "8"), ("bob", "8")]


def test_a_grade_whose_files_cannot_be_written_gets_a_row_that_says_why(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    _hand_in(submitted, "ada")
    broken = submitted / "bob" / LESSON / f"{LESSON}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")  # graded without running code: a quick zero
    # bob's feedback cannot replace a folder that holds something: writing it fails with OSError.
    (out / "bob" / LESSON / "feedback.md").mkdir(parents=True)
    (out / "bob" / LESSON / "feedback.md" / "keep").write_text("")
    summary = grade_folder(submitted, out, progress=False)
    rows = {row["student_id"]: row for row in _rows(out)}
    assert (rows["ada"]["total"], rows["ada"]["error"]) == ("8", "")
    assert "its grade could not be saved" in rows["bob"]["error"], rows["bob"]
    assert "Error" in rows["bob"]["error"]
    assert "bob/01_baseline_metrics: " in summary
    # Its short record is not a grade of this notebook: the next run tries again.
    assert "Graded 1 notebook(s), reused 1" in grade_folder(submitted, out, progress=False)


# --- 4. merging overlapping parts ------------------------------------------------------------


def test_merge_accepts_overlapping_parts_that_differ_only_in_timings(graded_once, tmp_path):
    first, second = tmp_path / "part1", tmp_path / "part2"
    shutil.copytree(graded_once / "out", first)
    shutil.copytree(graded_once / "out", second)
    path = record_path(second, "ada", LESSON)
    record = json.loads(path.read_text())
    for result in record["results"]:
        result["seconds"] += 1.5
    path.write_text(json.dumps(record))
    merge_outputs([first, second], tmp_path / "merged")
    assert [(row["student_id"], row["total"]) for row in _rows(tmp_path / "merged")] == [("ada", "8")]

    # A record that differs (a call timed out in one part only, say) never stops the merge for the class.
    record["results"][0]["passed"] = False
    path.write_text(json.dumps(record))
    lost = record["results"][0]["points"]
    summary = merge_outputs([first, second], tmp_path / "merged-again")
    assert (
        f"ada/01_baseline_metrics: graded differently in two parts (8 and {8 - lost:g} of 8); kept the first" in summary
    )
    assert [(row["student_id"], row["total"]) for row in _rows(tmp_path / "merged-again")] == [("ada", "8")]


def test_merge_uses_a_record_only_from_the_folder_it_names(graded_once, tmp_path):
    part = tmp_path / "part1"
    shutil.copytree(graded_once / "out", part)
    record = json.loads(record_path(part, "ada", LESSON).read_text())
    forged = part / "mallory" / LESSON / "result.json"
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps({**record, "student": "a/../../../escaped"}))
    summary = merge_outputs([part], tmp_path / "merged" / "out")
    assert "it names another student or lesson" in summary
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "merged" / "escaped").exists()
    assert [row["student_id"] for row in _rows(tmp_path / "merged" / "out")] == ["ada"]


# --- 5. layouts ----------------------------------------------------------------------------


def test_notebooks_outside_a_lesson_folder_are_reported_with_the_expected_layout(tmp_path):
    submitted = tmp_path / "submitted"
    notebook = student_copy_with_answers(LESSON, _answers())
    write_notebook(notebook, submitted / "alice" / f"{LESSON}.ipynb")
    write_notebook(notebook, submitted / "flat.ipynb")
    found, problems = find_submissions(submitted)
    assert found == []
    text = "\n".join(problems)
    assert f"alice/{LESSON}.ipynb: not in a lesson folder" in text
    assert f"alice/{LESSON}/{LESSON}.ipynb" in text
    assert "flat.ipynb: a notebook outside any student's folder" in text
    assert text.count("<student_id>/<lesson>/<lesson>.ipynb") == 2


def test_mac_and_jupyter_extras_are_ignored_and_any_case_of_ipynb_is_graded(tmp_path):
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "mac", name=f"Copy of {LESSON}.ipynb")
    (submitted / "mac" / LESSON / f"._Copy of {LESSON}.ipynb").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    _hand_in(submitted / "mac" / LESSON, ".ipynb_checkpoints", name=f"{LESSON}-checkpoint.ipynb")
    _hand_in(submitted / "__MACOSX", "mac")
    _hand_in(submitted, "upper", name=f"{LESSON}.IPYNB")
    found, problems = find_submissions(submitted)
    assert [(s.student, s.notebook.name, s.problem) for s in found] == [
        ("mac", f"Copy of {LESSON}.ipynb", ""),
        ("upper", f"{LESSON}.IPYNB", ""),
    ]
    assert problems == []
    grade_folder(submitted, tmp_path / "out", progress=False)
    assert [(row["student_id"], row["total"]) for row in _rows(tmp_path / "out")] == [("mac", "8"), ("upper", "8")]


def test_several_notebooks_are_named_in_the_error_or_the_summary(tmp_path):
    submitted = tmp_path / "submitted"
    _hand_in(submitted, "two", name=f"Copy of {LESSON}.ipynb")
    _hand_in(submitted, "two", name=f"{LESSON} (1).ipynb")
    _hand_in(submitted, "extra")
    _hand_in(submitted, "extra", name="scratch.ipynb")
    found, problems = find_submissions(submitted)
    by_student = {submission.student: submission for submission in found}
    assert by_student["extra"].notebook.name == f"{LESSON}.ipynb" and not by_student["extra"].problem
    assert f"{LESSON} (1).ipynb, Copy of {LESSON}.ipynb" in by_student["two"].problem
    assert f"none named {LESSON}.ipynb" in by_student["two"].problem
    assert problems == [
        f"{submitted / 'extra' / LESSON}: graded {LESSON}.ipynb; also handed in (not graded): scratch.ipynb"
    ]
    nested = submitted / "unzipped" / LESSON
    write_notebook(student_copy_with_answers(LESSON, {}), nested / LESSON / f"{LESSON}.ipynb")
    unzipped = [submission for submission in find_submissions(submitted)[0] if submission.student == "unzipped"]
    assert f"only in a folder inside it ({LESSON}/{LESSON}.ipynb)" in unzipped[0].problem


def test_gradescope_ignores_mac_and_jupyter_extras(tmp_path):
    from tfrs_course.gradescope import grade_upload

    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "bundle.json").write_text(json.dumps({"lesson": LESSON}))
    upload = tmp_path / "submission"
    write_notebook(student_copy_with_answers(LESSON, _answers()), upload / f"{LESSON}.IPYNB")
    (upload / f"._{LESSON}.IPYNB").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    write_notebook(student_copy_with_answers(LESSON, {}), upload / "__MACOSX" / f"{LESSON}.ipynb")
    write_notebook(student_copy_with_answers(LESSON, {}), upload / ".ipynb_checkpoints" / f"{LESSON}-checkpoint.ipynb")
    document = grade_upload(tmp_path)
    assert document["score"] == 8, document.get("output")


# --- 6. small things -----------------------------------------------------------------------


def test_grades_csv_keeps_a_formula_like_student_id_inert(tmp_path):
    submitted = tmp_path / "submitted"
    for student in ("=1+1", "@SUM(A1)", "plain"):
        (submitted / student / LESSON).mkdir(parents=True)  # no notebook: a quick zero with a row
    grade_folder(submitted, tmp_path / "out", progress=False)
    rows = _rows(tmp_path / "out")
    assert [row["student_id"] for row in rows] == ["'=1+1", "'@SUM(A1)", "plain"]
    assert all(row["lesson"] == LESSON and row["total"] == "0" for row in rows)
    grade = LessonGrade('-2+3,"x"', LESSON, "nb.ipynb", {})
    assert next(csv.DictReader(io.StringIO(grades_csv([grade]))))["student_id"] == '\'-2+3,"x"'


def test_gradescope_out_as_a_folder_writes_the_lessons_zip_into_it(tmp_path):
    from tfrs_course.gradescope import bundle_path

    (tmp_path / "existing").mkdir()
    assert bundle_path(LESSON, f"{tmp_path}/new/") == tmp_path / "new" / f"{LESSON}-autograder.zip"
    assert bundle_path(LESSON, tmp_path / "existing") == tmp_path / "existing" / f"{LESSON}-autograder.zip"
    assert bundle_path(LESSON, tmp_path / "autograder-01.zip") == tmp_path / "autograder-01.zip"
    from tfrs_course.cli import main

    assert main(["gradescope", LESSON, "--out", f"{tmp_path}/zips/"]) == 0
    with zipfile.ZipFile(tmp_path / "zips" / f"{LESSON}-autograder.zip") as bundle:
        assert json.loads(bundle.read("bundle.json"))["lesson"] == LESSON


def test_the_docs_output_folders_are_ignored_by_git():
    paths = ["graded/grades.csv", "grades.csv", "gradebook.db", "autograder-01.zip"]
    completed = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    assert completed.stdout.split() == paths


def test_a_record_whose_notebook_was_withdrawn_is_named_in_the_summary(graded_once, tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    shutil.copytree(graded_once / "out", out)  # ada's record; her notebook is not handed in here
    _hand_in(submitted, "bea")
    summary = grade_folder(submitted, out, progress=False)
    assert f"1 row(s) of grades.csv come from records with no notebook in {submitted}" in summary
    assert "ada/01_baseline_metrics" in summary and "bea/" not in summary
    assert {row["student_id"] for row in _rows(out)} == {"ada", "bea"}  # warned about, never deleted
    # A run for another lesson says nothing about lesson 1's records.
    assert "no notebook in" not in grade_folder(submitted, out, lessons=["02_keras_retrieval"], progress=False)


def test_feedback_names_the_notebook_without_the_instructors_folders(tmp_path):
    submitted, out = tmp_path / "class-of-2026" / "submitted", tmp_path / "out"
    broken = submitted / "cy" / LESSON / f"{LESSON}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [', encoding="utf-8")
    grade_folder(submitted, out, progress=False)
    folder = out / "cy" / LESSON
    feedback = (folder / "feedback.md").read_text(encoding="utf-8")
    gradescope = json.loads((folder / "results.json").read_text(encoding="utf-8"))["output"]
    for shown in (feedback, gradescope):
        assert f"{LESSON}.ipynb: not valid notebook JSON" in shown
        assert "class-of-2026" not in shown and str(tmp_path) not in shown
    # The instructor's own files keep the full path: it says where to look.
    assert str(broken) in _rows(out)[0]["error"]


def test_terminal_escapes_in_names_reach_neither_the_terminal_nor_grades_csv(tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    # A student names the folder and the notebook: erase the line, set the clipboard (OSC 52), fake a verdict.
    student = "eve\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07"
    notebook = submitted / student / LESSON / "x\x1b[2K\r\x1b[32mAll notebooks graded, no errors\x1b[0m.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text('{"cells": [', encoding="utf-8")
    summary = grade_folder(submitted, out, progress=False)
    table = (out / "grades.csv").read_bytes().decode("utf-8")
    for shown in (summary, table.replace("\r\n", "\n")):
        assert not any(ord(char) < 32 and char not in "\n\t" or 127 <= ord(char) < 160 for char in shown), shown
    assert "\\x1b[2K" in summary and "eve\\x1b]52" in summary  # escaped, still readable
    assert table.count("\r\n") == 2  # the header and one row: CSV's own line ends are kept
