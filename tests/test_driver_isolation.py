"""What a grading worker holds: its own lesson's drivers, and nothing of the kit's answers.

Student code can find any object alive in its worker through ``gc.get_objects()``
or ``sys.modules``, without importing anything. So importing the kit's answering
modules (:data:`tfrs_course.grading.worker.EXERCISE_HELPERS`) being refused is not
enough: none of their functions, classes or instances may be alive in a worker at all,
whichever lesson it grades. Each test runs real workers (the root-run sandbox when the
tests run as root, as CI does), forked from the worker template where it runs, so what
the template holds is checked too.
"""

import ast
import json

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.grading.drivers import required_lessons
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
from tfrs_course.grading.program import AnswerCell, build_program, read_notebook
from tfrs_course.grading.runner import run_tests
from tfrs_course.grading.worker import DRIVER_PACKAGE, EXERCISE_HELPERS
from tfrs_course.notebooks import student_copy_with_answers

pytestmark = pytest.mark.xdist_group("hardened")

LESSONS = layout.course().lesson_names()
# The answering modules. The drivers' own package is left out: a worker runs its lesson's drivers
# (what it may hold of them is checked separately).
ANSWERS = tuple(name for name in EXERCISE_HELPERS if name != DRIVER_PACKAGE)

# Student code that lists what it can reach of the given modules without importing them.
PROBE = """
import gc
import sys


def _inside(name, modules):
    return isinstance(name, str) and any(name == module or name.startswith(module + '.') for module in modules)


def reachable(answers, drivers):
    found, driver_modules = set(), set()
    for name in list(sys.modules):
        if _inside(name, answers) or _inside(name, [drivers]):
            found.add(f'sys.modules: {name}')
    for value in gc.get_objects():
        if isinstance(value, type(sys)):
            owner, what = value.__name__, 'module'
        elif isinstance(value, type) or callable(value) and hasattr(value, '__code__'):
            owner, what = getattr(value, '__module__', None), getattr(value, '__qualname__', repr(value))
        else:
            owner, what = type(value).__module__, f'a {type(value).__qualname__}'
        if _inside(owner, answers):
            found.add(f'gc: {owner}: {what}')
        elif _inside(owner, [drivers]) and owner != drivers:
            driver_modules.add(owner)
    return {'found': sorted(found), 'drivers': sorted(driver_modules)}
"""

# Lesson 5's ItemTower answered by the kit's own tower, taken from the worker's memory
# since importing it is refused (what an adversary did while every worker loaded lesson 5's drivers).
KIT_TOWER = """
import gc


def _kit_tower():
    return next(
        value for value in gc.get_objects()
        if type(value).__name__ == 'function' and value.__name__ == 'hybrid_item_tower'
    )


class ItemTower(tf.keras.Model):
    def __init__(self, item_ids, genders, brands, groups, id_dim=16, brand_dim=8, group_dim=5):
        super().__init__()
        vocabularies = {'item_no': item_ids, 'gender_description': genders, 'brand': brands, 'product_group': groups}
        self.inner = _kit_tower()(vocabularies, item_id_dim=id_dim, brand_dim=brand_dim, group_dim=group_dim)

    def call(self, features):
        return self.inner(features)
"""


# Exercises answered by a tower a lesson's drivers once built, taken from the worker's memory: lesson 4's
# index driver held frozen_tower's answer, and lesson 3's workers lesson 2's id_tower, most of make_id_tower's.
DRIVER_TOWERS = {
    ("04_content_based", "frozen_tower"): """
import gc


def frozen_tower(vectors):
    build = next(value for value in gc.get_objects() if callable(value) and getattr(value, '__name__', '') == '_fixed_tower')
    return build(list(vectors.index), vectors.to_numpy())
""",
    ("03_id_embeddings", "make_id_tower"): """
import gc


def make_id_tower(values, embedding_dim):
    build = next(value for value in gc.get_objects() if callable(value) and getattr(value, '__name__', '') == 'id_tower')
    vocabulary = sorted(set(values))
    return build(vocabulary, np.random.default_rng(0).normal(size=(len(vocabulary) + 1, embedding_dim)))
""",
}


def _probe_code(lesson: str) -> IsolatedStudentCode:
    master = layout.lesson(lesson).master_notebook
    program = build_program(read_notebook(master), read_notebook(master), master, lesson)
    program.answers = [AnswerCell("probe", PROBE)]
    return IsolatedStudentCode(program, limits=Limits())


@pytest.mark.parametrize("lesson", LESSONS)
def test_a_worker_holds_no_answer_and_only_its_lessons_drivers(lesson):
    code = _probe_code(lesson)
    try:
        reached = code.call("reachable", list(ANSWERS), DRIVER_PACKAGE)
    finally:
        code.close()
    assert reached["found"] == [], f"a {lesson} worker holds the kit's answers: {reached['found']}"
    expected = sorted(f"{DRIVER_PACKAGE}.{needed}" for needed in required_lessons(lesson))
    assert reached["drivers"] == expected


@pytest.mark.parametrize("lesson", [lesson for lesson in LESSONS if layout.lesson(lesson).drivers.is_file()])
def test_drivers_import_none_of_the_kits_answers(lesson):
    """Whatever a driver imports is alive in the worker, where student code can reach it."""
    path = layout.lesson(lesson).drivers
    imported = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    answers = [name for name in imported if any(name == a or name.startswith(a + ".") for a in ANSWERS)]
    assert answers == [], f"{path} imports the kit's answers: {answers}"


def _graded_with(lesson: str, exercise: str, answer: str) -> list:
    notebook = json.loads(nbformat.writes(student_copy_with_answers(lesson, {exercise: answer})))
    master = layout.lesson(lesson).master_notebook
    program = build_program(notebook, read_notebook(master), master, lesson)
    code = IsolatedStudentCode(program, limits=Limits())
    try:
        return run_tests(lesson, {"attacker": lambda: code}, exercises=[exercise]).results
    finally:
        code.close()


def test_the_kits_own_item_tower_found_in_memory_earns_nothing():
    results = _graded_with("05_hybrid", "ItemTower", KIT_TOWER)
    assert results and not any(result.passed for result in results), [r.message for r in results]
    assert all("StopIteration" in result.message for result in results), [r.message for r in results]


@pytest.mark.parametrize(("lesson", "exercise"), sorted(DRIVER_TOWERS))
def test_no_drivers_tower_answers_an_exercise(lesson, exercise):
    """The drivers' own towers read rows or vectors carried in the ids: none is a lookup of ids an exercise asks for."""
    results = _graded_with(lesson, exercise, DRIVER_TOWERS[lesson, exercise])
    assert results and not any(result.passed for result in results), [r.message for r in results]
    assert all("StopIteration" in result.message for result in results), [r.message for r in results]
