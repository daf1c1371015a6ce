"""Every lesson, validated both ways by the batch grader.

For each lesson with wrong answers described in autograder/<lesson>/mistakes/mistakes.toml:
the solutions earn full marks, the untouched stubs earn nothing on every exercise,
and each realistic mistake fails exactly the tests that should catch it, loses only
its exercise's points, and gets feedback that names its symptom. A mistake flagged
``visible = true`` must be caught by a visible test (what a student's check() runs),
one flagged ``visible = false`` by hidden tests only. Every exercise has at least two
honest alternatives to the reference (entries with no failing tests), which must
earn full marks.
"""

import ast

import pytest

from tfrs_course.grading.runner import exercise_points
from tfrs_course.grading.validation import (
    SOLVED,
    UNTOUCHED,
    failed_tests,
    failed_visible_tests,
    grade_class,
    load_mistakes,
    validation_class,
)
from tfrs_course.layout import course

LESSONS = [lesson for lesson in course().lesson_names() if course().lesson(lesson).mistakes.is_file()]
MISTAKES = {lesson: load_mistakes(course().lesson(lesson).fixtures) for lesson in LESSONS}


def _marks(lesson: str) -> list[pytest.MarkDecorator]:
    """A lesson's tests share its graded class: keep them on one xdist worker. Grading
    a model lesson's class takes minutes: those are slow."""
    return [pytest.mark.xdist_group(lesson), *([] if lesson.startswith("01_") else [pytest.mark.slow])]


BY_LESSON = [pytest.param(lesson, marks=_marks(lesson)) for lesson in LESSONS]
CASES = [pytest.param(lesson, name, marks=_marks(lesson)) for lesson in LESSONS for name in sorted(MISTAKES[lesson])]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grades each lesson's validation class once, on first use."""
    done = {}

    def graded_lesson(lesson):
        if lesson not in done:
            notebooks = validation_class(lesson, MISTAKES[lesson])
            done[lesson] = grade_class(lesson, notebooks, tmp_path_factory.mktemp(lesson))
        return done[lesson]

    return graded_lesson


def _maximum(lesson: str) -> dict[str, float]:
    return {exercise: points.total for exercise, points in exercise_points(lesson).items()}


def test_every_lesson_is_validated():
    assert LESSONS == course().lesson_names()


@pytest.mark.parametrize("lesson", BY_LESSON)
def test_solutions_score_full_marks(graded, lesson):
    result = graded(lesson)
    maximum = _maximum(lesson)
    assert {exercise: result.score(SOLVED, exercise) for exercise in maximum} == maximum
    assert float(result.rows[SOLVED]["total"]) == float(result.rows[SOLVED]["max_score"]) == sum(maximum.values())


@pytest.mark.parametrize("lesson", BY_LESSON)
def test_untouched_stubs_score_zero_on_every_exercise(graded, lesson):
    result = graded(lesson)
    assert {exercise: result.score(UNTOUCHED, exercise) for exercise in _maximum(lesson)} == dict.fromkeys(
        _maximum(lesson), 0.0
    )
    assert "NotImplementedError" in result.feedback(UNTOUCHED)


@pytest.mark.parametrize("lesson", LESSONS)
def test_points_follow_difficulty(lesson):
    # docs/instructor.md, "Points": 2 points per level, split over the exercise's tests.
    # Read without importing the module: its @graded marks belong to the grader's own pytest run.
    tree = ast.parse(course().lesson(lesson).tests.read_text())
    (levels,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(target, "id", "") == "DIFFICULTY" for target in node.targets)
    ]
    assert _maximum(lesson) == {exercise: 2.0 * level for exercise, level in levels.items()}


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_has_two_honest_alternatives(lesson):
    alternatives = {}
    for mistake in MISTAKES[lesson].values():
        if mistake.is_alternative:
            alternatives[mistake.exercise] = alternatives.get(mistake.exercise, 0) + 1
    assert {exercise: alternatives.get(exercise, 0) >= 2 for exercise in _maximum(lesson)} == dict.fromkeys(
        _maximum(lesson), True
    )


@pytest.mark.parametrize(("lesson", "name"), CASES)
def test_mistake_costs_exactly_its_exercises_points(graded, lesson, name):
    result = graded(lesson)
    mistake = MISTAKES[lesson][name]
    failed, lost = failed_tests(result, mistake.submission, mistake.exercise)
    assert failed == mistake.failing_tests
    maximum = _maximum(lesson)
    assert result.score(mistake.submission, mistake.exercise) == maximum[mistake.exercise] - lost
    assert mistake.symptom in result.feedback(mistake.submission)
    if mistake.is_alternative:
        return
    caught_visibly = failed_visible_tests(result, mistake.submission, mistake.exercise)
    if mistake.visible:
        assert caught_visibly, f"{name}: flagged visible, but only hidden tests catch it"
    else:
        assert not caught_visibly, f"{name}: visible tests catch it ({sorted(caught_visibly)}); flag it visible"


@pytest.mark.parametrize("lesson", BY_LESSON)
def test_each_submission_loses_points_only_in_exercises_it_gets_wrong(graded, lesson):
    result = graded(lesson)
    maximum = _maximum(lesson)
    for submission in {mistake.submission for mistake in MISTAKES[lesson].values()}:
        wrong = {m.exercise for m in MISTAKES[lesson].values() if m.submission == submission and m.failing_tests}
        short = {exercise for exercise in maximum if result.score(submission, exercise) < maximum[exercise]}
        assert short == wrong, submission
