"""The course's layout: every lesson is three folders with the same name, and grading code never reaches up.

A contributor who adds a lesson and forgets a piece gets a failure that names it
(the recipe is in docs/contributing.md).
"""

import ast
import shutil
from pathlib import Path

from tfrs_course import layout

KIT = Path(layout.__file__).resolve().parent


def _problems(course: layout.CourseLayout) -> list[str]:
    return [problem for name in course.lesson_folders() for problem in course.lesson(name).missing()]


def test_every_lesson_has_its_three_folders():
    course = layout.course()
    assert course.lesson_names(), "no lessons found"
    assert _problems(course) == []


def test_a_missing_piece_is_named(tmp_path):
    course = layout.course(tmp_path)
    for folder in ("solutions", "lessons", "autograder"):
        shutil.copytree(
            layout.course().root / folder / "01_baseline_metrics", tmp_path / folder / "01_baseline_metrics"
        )
    assert _problems(course) == []
    (tmp_path / "solutions" / "07_new_lesson").mkdir()
    (tmp_path / "solutions" / "07_new_lesson" / "07_new_lesson.py").write_text("# %% [markdown]\n# New\n")
    course.lesson("01_baseline_metrics").mistakes.unlink()
    problems = _problems(course)
    assert any("create autograder/07_new_lesson/test_07_new_lesson.py" in line for line in problems), problems
    assert any("create autograder/07_new_lesson/mistakes/mistakes.toml" in line for line in problems), problems
    assert any("create lessons/07_new_lesson/07_new_lesson.ipynb" in line for line in problems), problems
    assert any("create autograder/01_baseline_metrics/mistakes/mistakes.toml" in line for line in problems), problems


def _kit_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("tfrs_course")}


def test_grading_never_imports_the_lesson_builder_or_the_tools_above_it():
    upward = ("tfrs_course.lessons", "tfrs_course.notebooks.execute_notebook", "tfrs_course.cli",
              "tfrs_course.demo", "tfrs_course.benchmarks", "tfrs_course.gradescope")  # fmt: skip
    found = {
        f"{path.relative_to(KIT.parent)} imports {name}"
        for path in sorted((KIT / "grading").glob("*.py"))
        for name in _kit_imports(path)
        if name.startswith(upward)
    }
    assert found == set()


def test_only_the_layout_module_spells_a_lesson_s_files():
    """Paths like solutions/<lesson>/<lesson>.ipynb are built in layout.py alone."""
    spelled = {
        str(path.relative_to(KIT.parent))
        for path in KIT.rglob("*.py")
        if path.name != "layout.py" and ('f"test_{' in path.read_text() or '"fixtures" / f"lesson' in path.read_text())
    }
    assert spelled == set()
