"""The Gradescope bundle, in a simulated Gradescope: build the zip, unpack it into a
temporary root standing in for /autograder, run setup.sh offline, then run_autograder
on a correct, a wrong and a hostile upload; results.json must follow Gradescope's
format and give the scores the kit's batch grader gives.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.grading.batch import grade_folder, record_path
from tfrs_course.grading.results import LessonGrade
from tfrs_course.grading.runner import exercise_points
from tfrs_course.grading.sandbox import sandbox_capabilities
from tfrs_course.notebooks import solution_source, student_copy_with_answers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gradescope")]

REPO = Path(__file__).resolve().parents[1]
LESSON = "01_baseline_metrics"
EXERCISES = ("select_top_users", "most_popular_items", "top_k_accuracy")
# The namespace sandbox is in force (root): only then may a hostile upload run.
AS_ROOT = sandbox_capabilities()["unprivileged_user"]
WRONG_TOP_USERS = (layout.lesson(LESSON).fixtures / "top_users_no_tie_break.py").read_text()
# Tries to give itself full marks: overwrite every results.json it can find, claim perfect accuracy.
HOSTILE_TOP_K = """
import glob
import json


def top_k_accuracy(true_ids, retrieved_ids, ks):
    for path in glob.glob("/tmp/**/results.json", recursive=True) + glob.glob("/autograder/**/results.json"):
        with open(path, "w") as stream:
            json.dump({"score": 1000, "tests": []}, stream)
    return {k: 1.0 for k in ks}
"""

# https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format
TOP_LEVEL_FIELDS = {
    "score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
    "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard",
}  # fmt: skip
TEST_FIELDS = {
    "score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
    "visibility", "extra_data",
}  # fmt: skip
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def validate_results(document: dict) -> None:
    """Gradescope's documented fields and values for results.json."""
    assert set(document) <= TOP_LEVEL_FIELDS, set(document) - TOP_LEVEL_FIELDS
    assert isinstance(document["score"], int | float)
    assert isinstance(document.get("execution_time", 0), int | float)
    assert isinstance(document.get("output", ""), str)
    assert document.get("visibility", "visible") in VISIBILITIES
    # Messages hold what students wrote (ids, code, text): Gradescope must show them as plain text,
    # never render them as HTML or Markdown (its default formats).
    assert [document.get(key) for key in ("output_format", "test_output_format", "test_name_format")] == ["text"] * 3
    assert isinstance(document["tests"], list)
    for test in document["tests"]:
        assert set(test) <= TEST_FIELDS, set(test) - TEST_FIELDS
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], int | float) and isinstance(test["max_score"], int | float)
        assert 0 <= test["score"] <= test["max_score"], test
        assert test["status"] in {"passed", "failed"}, test
        assert test["visibility"] in VISIBILITIES, test
        assert isinstance(test.get("output", ""), str)
    assert abs(document["score"] - sum(test["score"] for test in document["tests"])) < 1e-6


def _runtime_without_the_kit(root: Path) -> Path:
    """An 'image' Python that has the pinned stack (ours, by a .pth file) but not the kit.

    The stack is a hard-linked copy, not symlinks: the grading sandbox shows the worker
    the folders on its sys.path, and links out of them would lead nowhere inside it.
    """
    runtime = root / "runtime"
    subprocess.run([sys._base_executable, "-m", "venv", str(runtime)], check=True)
    ours = Path(next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)))
    view = root / "stack"
    view.mkdir()
    entries = [
        str(entry)
        for entry in ours.iterdir()
        if not entry.name.startswith(("tfrs_course", "_tfrs_course", "__editable__")) and entry.suffix != ".pth"
    ]
    subprocess.run(["cp", "-al", *entries, str(view)], check=True)
    (next(runtime.glob("lib/python3.*/site-packages")) / "stack.pth").write_text(f"{view}\n")
    return runtime / "bin" / "python"


def _submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    correct = {exercise: solution_source(LESSON, exercise) for exercise in EXERCISES}
    return student_copy_with_answers(LESSON, {**correct, **answers})


def test_gradescope_bundle_grades_uploads_in_a_simulated_gradescope(tmp_path):
    bundle = tmp_path / "autograder.zip"
    built = subprocess.run(
        [sys.executable, "-m", "tfrs_course.cli", "gradescope", LESSON, "--out", str(bundle)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "requirements.txt", "bundle.json"} <= names, names
        wheel = next(name for name in names if name.endswith(".whl"))
        archive.extractall(tmp_path / "autograder" / "source")
    with zipfile.ZipFile(tmp_path / "autograder" / "source" / wheel) as kit:
        course_files = sorted(name for name in kit.namelist() if "/_course/" in name)
    assert f"tfrs_course/_course/autograder/{LESSON}/test_{LESSON}.py" in course_files
    assert f"tfrs_course/_course/solutions/{LESSON}/{LESSON}.ipynb" in course_files
    assert not [name for name in course_files if "02_" in name], "the bundle carries other lessons"

    # Gradescope's image build: the zip in source/, setup.sh run as root, run_autograder copied up.
    root = tmp_path / "autograder"
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "TFRS_AUTOGRADER_ROOT": str(root),
        "TFRS_GRADESCOPE_PYTHON": str(_runtime_without_the_kit(tmp_path)),
        "TFRS_GRADESCOPE_PIP_OPTIONS": "--no-index",  # no network: everything is already here
    }
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")], env=environment, capture_output=True, text=True, check=False,
        timeout=900,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    assert "Autograder ready" in setup.stdout
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    grading_environment = {key: value for key, value in environment.items() if not key.startswith("TFRS_GRADESCOPE")}

    uploads = {
        "correct": _submission({}),
        "wrong": _submission({"select_top_users": WRONG_TOP_USERS}),
    }
    if AS_ROOT:
        # Outside the root-run sandbox it would overwrite every results.json this user can write.
        uploads["hostile"] = _submission({"top_k_accuracy": HOSTILE_TOP_K})
    # The oracle: the kit's batch grader on the same notebooks, in the checkout.
    for name, notebook in uploads.items():
        path = tmp_path / "submitted" / name / LESSON / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
    grade_folder(tmp_path / "submitted", tmp_path / "oracle", progress=False)
    with (tmp_path / "oracle" / "grades.csv").open() as table:
        expected = {row["student_id"]: row for row in csv.DictReader(table)}

    scores = {}
    for name, notebook in uploads.items():
        for folder in ("submission", "results"):
            shutil.rmtree(root / folder, ignore_errors=True)
        (root / "submission").mkdir()
        nbformat.write(notebook, root / "submission" / f"{LESSON} (1).ipynb")  # as a browser names a re-download
        graded = subprocess.run(
            [str(root / "run_autograder")], cwd=root, env=grading_environment, capture_output=True, text=True,
            check=False, timeout=900,
        )  # fmt: skip
        assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
        # As root here, as on Gradescope: the namespace sandbox must be in force, not the fallback.
        assert os.geteuid() != 0 or "WARNING" not in graded.stdout, graded.stdout
        document = json.loads((root / "results" / "results.json").read_text())
        validate_results(document)
        visibility = {test["visibility"] for test in document["tests"]}
        assert visibility == {"visible", "after_published"}, visibility
        for test in document["tests"]:
            if test["visibility"] == "after_published":
                assert test["output"] in {"passed", "failed"}, test  # never a hidden test's message
        # The same rendering as the batch grader's, with the upload's summary added.
        assert (
            document["tests"]
            == LessonGrade.read(record_path(tmp_path / "oracle", name, LESSON)).to_gradescope()["tests"]
        )
        scores[name] = document["score"]
        assert f"{float(expected[name]['total']):g}" == f"{document['score']:g}", (name, document)
        assert document["extra_data"]["max_score"] == float(expected[name]["max_score"])

    maximum = float(expected["correct"]["max_score"])
    assert scores["correct"] == maximum
    assert 0 < scores["wrong"] < maximum and 0 < scores.get("hostile", 1) < maximum, scores
    print(f"Gradescope simulation: scores {scores} of {maximum:g}")


def test_an_upload_without_one_notebook_scores_zero_and_says_why(tmp_path):
    from tfrs_course.gradescope import grade_upload

    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / "bundle.json").write_text(json.dumps({"lesson": LESSON}))
    (root / "submission").mkdir()
    (root / "submission" / "notes.txt").write_text("I forgot the notebook")
    document = grade_upload(root)
    validate_results(document)
    assert document["score"] == 0 and "Upload exactly one notebook" in document["output"]
    assert json.loads((root / "results" / "results.json").read_text()) == document
    os.remove(root / "results" / "results.json")


@pytest.mark.parametrize("linked", ["notebook", "folder"])
def test_an_upload_that_links_to_another_file_scores_zero_and_says_why(tmp_path, linked):
    from tfrs_course.gradescope import grade_upload

    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / "bundle.json").write_text(json.dumps({"lesson": LESSON}))
    (root / "submission").mkdir()
    reference = layout.lesson(LESSON).master_notebook  # full marks, if it were graded
    if linked == "notebook":
        (root / "submission" / "my_work.ipynb").symlink_to(reference)
    else:
        (root / "submission" / "work").symlink_to(reference.parent, target_is_directory=True)
    document = grade_upload(root)
    validate_results(document)
    assert document["score"] == 0 and document["tests"] == [], document
    # A linked folder is not searched at all; a linked notebook is named.
    expected = "is a symbolic link (or inside one), not a notebook" if linked == "notebook" else "found: none"
    assert expected in document["output"]


def test_an_upload_that_cannot_be_graded_scores_zero_of_the_lessons_points(tmp_path):
    from tfrs_course.gradescope import grade_upload

    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "source" / "bundle.json").write_text(json.dumps({"lesson": LESSON}))
    (root / "submission").mkdir()
    (root / "submission" / f"{LESSON}.ipynb").write_text("{not a notebook")
    document = grade_upload(root)
    validate_results(document)
    assert document["score"] == 0 and document["tests"] == []
    assert "could not be graded" in document["output"] and "not valid notebook JSON" in document["output"]
    # The message names the upload, never the grader's scratch folder.
    assert f"{LESSON}.ipynb" in document["output"] and "tfrs-gradescope-" not in document["output"]
    maximum = sum(points.total for points in exercise_points(LESSON).values())
    assert document["extra_data"]["max_score"] == maximum > 0
