"""A graded submission as a type: its record round-trips, its totals are right, and it renders
itself as a grades.csv row, as feedback and as Gradescope's results.json.

The grades here are built by hand (no grading runs), so each expected figure is computed in
the test from the points written in it.
"""

import csv
import io
import json

import pytest

from tfrs_course.grading import results
from tfrs_course.grading.results import ExercisePoints, LessonGrade, grades_csv

LESSON = "01_baseline_metrics"


def _test(name, exercise, points, *, hidden=False, passed=True, message="", student="ada"):
    return results.TestResult(student, name, exercise, points, hidden, passed, message, 0.25)


def _grade(**changes) -> LessonGrade:
    """Two exercises: ``ranking`` earns 1.5 of 2.5; every test of ``accuracy`` failed (0 of 3)."""
    fields = {
        "student": "ada",
        "lesson": LESSON,
        "notebook": "/class/ada/lesson.ipynb",
        "exercises": {"ranking": ExercisePoints(1.5, 1.0), "accuracy": ExercisePoints(2.0, 1.0)},
        "results": [
            _test("test_small", "ranking", 1.0),
            _test(
                "test_ties",
                "ranking",
                0.5,
                passed=False,
                message="expected: ['7', '-3']\n  got: ['7', '9']",
            ),
            _test(
                "test_accuracy_small",
                "accuracy",
                2.0,
                passed=False,
                message="ZeroDivisionError: division by zero",
            ),
            _test("test_random", "ranking", 0.5, hidden=True),
            _test(
                "test_hidden_rows",
                "ranking",
                0.5,
                hidden=True,
                passed=False,
                message="secret input 42",
            ),
            _test(
                "test_accuracy_random",
                "accuracy",
                1.0,
                hidden=True,
                passed=False,
                message="secret input 7",
            ),
        ],
        "notebook_sha256": "ab" * 32,
        "tests_fingerprint": "cd" * 32,
    }
    return LessonGrade(**{**fields, **changes})


def test_scores_and_maxima_match_a_hand_computation():
    grade = _grade()
    ranking, accuracy = grade.exercise("ranking"), grade.exercise("accuracy")
    assert (ranking.score, ranking.maximum) == (1.0 + 0.5, 1.5 + 1.0)
    assert (accuracy.score, accuracy.maximum) == (0.0, 2.0 + 1.0)
    assert {test.test for test in accuracy.failed} == {
        "test_accuracy_small",
        "test_accuracy_random",
    }
    assert (grade.total, grade.maximum) == (1.5, 5.5)
    assert [exercise.name for exercise in grade.exercise_results] == ["ranking", "accuracy"]
    assert ExercisePoints(1.5, 1.0).total == 2.5


def test_an_unknown_exercise_is_named_with_the_lessons_exercises():
    with pytest.raises(KeyError, match=r"no exercise 'rank'.*\['ranking', 'accuracy'\]"):
        _grade().exercise("rank")


def test_the_record_round_trips_through_json_and_a_file(tmp_path):
    grade = _grade(problems={"accuracy": "line 2: NameError: name 'np' is not defined"})
    assert LessonGrade.from_json(json.loads(json.dumps(grade.to_json()))) == grade
    path = tmp_path / "result.json"
    path.write_text(json.dumps(grade.to_json(), indent=1))
    assert LessonGrade.read(path) == grade


# A record as the batch grader has written it since before the type existed; resume and
# grade-merge read saved records, so this format changes only deliberately.
SAVED_RECORD = {
    "student": "ben",
    "lesson": LESSON,
    "notebook": "/class/submitted/ben/01_baseline_metrics/01_baseline_metrics.ipynb",
    "exercises": {"select_top_users": {"visible": 1.0, "hidden": 1.0}, "top_k_accuracy": {"visible": 2.0, "hidden": 2.0}},
    "results": [
        {"student": "ben", "test": "test_select_top_users_small_table", "exercise": "select_top_users",
         "points": 0.5, "hidden": False, "passed": True, "message": "", "seconds": 0.41},
        {"student": "ben", "test": "test_top_k_accuracy_small_example", "exercise": "top_k_accuracy",
         "points": 1.0, "hidden": False, "passed": False, "message": "expected: {1: 0.25}\n  got: {1: 0}",
         "seconds": 0.01},
        {"student": "ben", "test": "test_top_k_accuracy_no_rows", "exercise": "top_k_accuracy",
         "points": 0.5, "hidden": True, "passed": True, "message": "", "seconds": 0.02},
    ],
    "error": "",
    "notebook_sha256": "0f" * 32,
    "tests_fingerprint": "1e" * 32,
    "problems": {},
}  # fmt: skip


def test_a_saved_record_reads_into_the_type_and_writes_back_unchanged():
    grade = LessonGrade.from_json(SAVED_RECORD)
    assert grade.exercises["top_k_accuracy"] == ExercisePoints(visible=2.0, hidden=2.0)
    assert (grade.exercise("select_top_users").score, grade.exercise("top_k_accuracy").score) == (
        0.5,
        0.5,
    )
    assert json.dumps(grade.to_json()) == json.dumps(SAVED_RECORD)


@pytest.mark.parametrize(
    ("text", "words"),
    [("{not json", "JSONDecodeError"), ("[1, 2]", "TypeError"), ('{"student": "x"}', "KeyError")],
)
def test_an_unreadable_record_is_an_error_naming_the_file(tmp_path, text, words):
    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=words) as raised:
        LessonGrade.read(path)
    assert str(path) in str(raised.value) and "not a grading record" in str(raised.value)


def test_a_csv_row_holds_exercise_scores_total_maximum_and_the_errors_first_line():
    row = _grade().to_csv_row(["ranking", "accuracy", "other_lessons_exercise"])
    assert row == {
        "student_id": "ada", "lesson": LESSON, "ranking": "1.5", "accuracy": "0",
        "other_lessons_exercise": "", "total": "1.5", "max_score": "5.5", "error": "",
    }  # fmt: skip
    failed = _grade(results=[], error="/class/ada/lesson.ipynb: not valid notebook JSON\nline 1")
    assert failed.to_csv_row(["ranking"])["error"] == "/class/ada/lesson.ipynb: not valid notebook JSON"
    assert (failed.to_csv_row([])["total"], failed.to_csv_row([])["max_score"]) == ("0", "5.5")


def test_grades_csv_has_every_lessons_columns_and_rows_sorted_by_student_then_lesson():
    other = LessonGrade("ada", "02_keras_retrieval", "nb", {"tower": ExercisePoints(2.0, 0.0)},
                        [_test("test_tower", "tower", 2.0)])  # fmt: skip
    table = grades_csv([_grade(student="cy"), other, _grade()])
    rows = list(csv.reader(io.StringIO(table)))
    assert rows == [
        ["student_id", "lesson", "ranking", "accuracy", "tower", "total", "max_score", "error"],
        ["ada", LESSON, "1.5", "0", "", "1.5", "5.5", ""],
        ["ada", "02_keras_retrieval", "", "", "2", "2", "2", ""],
        ["cy", LESSON, "1.5", "0", "", "1.5", "5.5", ""],
    ]


def test_feedback_shows_visible_messages_and_only_the_names_of_hidden_tests():
    feedback = _grade().to_feedback_markdown()
    assert "Score: **1.5 / 5.5**" in feedback
    assert "## ranking: 1.5 / 2.5" in feedback and "## accuracy: 0 / 3" in feedback
    assert "- failed: test `test_ties` (0 / 0.5)" in feedback and "got: ['7', '9']" in feedback
    assert "ZeroDivisionError: division by zero" in feedback
    assert "- failed: hidden test `test_hidden_rows` (0 / 0.5)" in feedback
    assert "- passed: hidden test `test_random` (0.5 / 0.5)" in feedback
    assert "secret input" not in feedback


def test_feedback_shows_what_the_student_controls_as_code():
    grade = _grade(student="x` <b>y</b>", error="bad ```notebook```", results=[])
    feedback = grade.to_feedback_markdown()
    assert "Student: ``x` <b>y</b>``" in feedback
    assert (
        "Your notebook could not be graded, so every exercise scores 0:\n\n````\nbad ```notebook```\n````" in feedback
    )
    assert "Score: **0 / 5.5**" in feedback and "## accuracy: 0 / 3" in feedback


def test_gradescope_results_show_hidden_tests_by_result_only_and_sum_to_the_score():
    document = _grade(problems={"accuracy": "line 1: SyntaxError"}).to_gradescope()
    assert document["score"] == 1.5 == sum(test["score"] for test in document["tests"])
    tests = {test["name"]: test for test in document["tests"]}
    assert tests["ranking: test_ties"] == {
        "name": "ranking: test_ties", "score": 0.0, "max_score": 0.5, "status": "failed",
        "visibility": "visible", "output": "expected: ['7', '-3']\n  got: ['7', '9']",
    }  # fmt: skip
    assert tests["ranking: test_hidden_rows"]["visibility"] == "after_published"
    assert tests["ranking: test_hidden_rows"]["output"] == "failed"
    assert tests["ranking: test_small"]["output"] == "passed"
    assert (
        document["output"] == "While your cells were being defined, this went wrong: cell accuracy: line 1: SyntaxError"
    )
    ungraded = _grade(results=[], error="nb: no such notebook").to_gradescope()
    assert ungraded == {
        "score": 0,
        "tests": [],
        "output": "Your notebook could not be graded: nb: no such notebook",
    }


def test_validation_reads_failed_tests_from_the_saved_record(tmp_path):
    from tfrs_course.grading.batch import record_path
    from tfrs_course.grading.validation import GradedClass, failed_tests, failed_visible_tests

    path = record_path(tmp_path, "ada", LESSON)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_grade().to_json()))
    graded = GradedClass(LESSON, tmp_path, rows={})
    assert failed_tests(graded, "ada", "ranking") == ({"test_ties", "test_hidden_rows"}, 0.5 + 0.5)
    assert failed_visible_tests(graded, "ada", "ranking") == {"test_ties"}
    assert failed_visible_tests(graded, "ada", "accuracy") == {"test_accuracy_small"}
    assert (graded.score("ada", "ranking"), graded.score("ada", "accuracy")) == (1.5, 0.0)


def test_a_saved_record_that_cannot_be_read_is_graded_again(tmp_path):
    """Resume trusts a record only if it reads into a grade; otherwise the submission would lose its row."""
    from tfrs_course.grading.batch import grade_folder, record_path

    (tmp_path / "submitted" / "ada" / LESSON).mkdir(parents=True)  # handed in no notebook: no student code runs
    out = tmp_path / "graded"
    assert "Graded 1 notebook(s), reused 0" in grade_folder(tmp_path / "submitted", out, progress=False)
    assert "Graded 0 notebook(s), reused 1" in grade_folder(tmp_path / "submitted", out, progress=False)
    path = record_path(out, "ada", LESSON)
    record = json.loads(path.read_text())
    del record["exercises"]  # still the same notebook and tests, but no longer a grade
    path.write_text(json.dumps(record))
    assert "Graded 1 notebook(s), reused 0" in grade_folder(tmp_path / "submitted", out, progress=False)
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))
    assert [(row["student_id"], row["total"], row["max_score"]) for row in rows] == [("ada", "0", "8")]
    assert LessonGrade.read(path).error.endswith("no such notebook")
