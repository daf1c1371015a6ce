"""A driver's report can be forged in the worker; what a test decides from it cannot be.

Drivers run in the worker, beside student code, which can rewrite whatever a driver
returns before it reaches the grader (tests/fixtures/hostile_models/_forge.py shows how).
So drivers report observations (an input after the call, vectors before and after
training, a tower's outputs), never verdicts, and each test decides in the grader by
comparing them with the reference's. Each fixture here does not do its exercise and
rewrites the reports of the drivers that once sent verdicts: it must earn nothing, and
the forgery must have run (else the test would prove nothing).
"""

import json
from pathlib import Path

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
from tfrs_course.grading.program import build_program, read_notebook
from tfrs_course.grading.runner import run_tests
from tfrs_course.notebooks import student_copy_with_answers

pytestmark = pytest.mark.xdist_group("hardened")

FIXTURES = Path(__file__).parent / "fixtures" / "hostile_models"

# (lesson, exercise, fixture, the drivers whose reports it forges)
CASES = [
    ("04_content_based", "content_vectors", "content_vectors_forged.py", ["content_vectors_side_effects"]),
    ("04_content_based", "frozen_tower", "frozen_tower_forged.py", ["frozen_tower_after_training"]),
    ("03_id_embeddings", "make_id_tower", "id_tower_forged.py", ["tower_lookups", "tower_table"]),
    ("05_hybrid", "ItemTower", "item_tower_forged.py", ["item_tower_behaviour"]),
]


def _answer(fixture: str) -> str:
    return (FIXTURES / "_forge.py").read_text(encoding="utf-8") + "\n\n" + (FIXTURES / fixture).read_text("utf-8")


@pytest.mark.parametrize(("lesson", "exercise", "fixture", "forged"), CASES, ids=[case[2] for case in CASES])
def test_a_forged_report_earns_nothing(lesson, exercise, fixture, forged):
    notebook = json.loads(nbformat.writes(student_copy_with_answers(lesson, {exercise: _answer(fixture)})))
    master = layout.lesson(lesson).master_notebook
    program = build_program(notebook, read_notebook(master), master, lesson)
    code = IsolatedStudentCode(program, limits=Limits())
    try:
        run = run_tests(lesson, {"attacker": lambda: code}, exercises=[exercise])
        rewritten = code.call("forged_drivers")
    finally:
        code.close()
    assert rewritten == forged, f"the forgery did not run: {rewritten}"
    passed = [result.test for result in run.results if result.passed]
    assert run.results and passed == [], [(result.test, result.message) for result in run.results]
