"""Where a lesson's pieces are: the one place that knows the course's layout.

A lesson is three folders with the same name (see docs/contributing.md)::

    solutions/<lesson>/<lesson>.py       the master script (instructor's copy, with solutions)
    lessons/<lesson>/<lesson>.ipynb      the student copy, generated from the master
    autograder/<lesson>/                 everything trusted that grades the lesson:
        test_<lesson>.py                 its graded pytest tests
        drivers.py                       trusted code that exercises the student's classes (optional)
        mistakes/mistakes.toml           realistic wrong answers and honest alternatives,
        mistakes/*.py, *.ipy             with the answer files it names

In the spirit of nbgrader's ``CourseDirectory``: code asks
``course().lesson(name).tests`` and never joins these paths by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tfrs_course import paths

LESSON_NAME = re.compile(r"\d\d_[a-z0-9_]+")


@dataclass(frozen=True)
class LessonLayout:
    """The files of one lesson, named by its folder name (e.g. ``03_id_embeddings``)."""

    name: str
    root: Path

    @property
    def solutions_dir(self) -> Path:
        return self.root / "solutions" / self.name

    @property
    def master_script(self) -> Path:
        return self.solutions_dir / f"{self.name}.py"

    @property
    def master_notebook(self) -> Path:
        return self.solutions_dir / f"{self.name}.ipynb"

    @property
    def lessons_dir(self) -> Path:
        return self.root / "lessons" / self.name

    @property
    def student_notebook(self) -> Path:
        return self.lessons_dir / f"{self.name}.ipynb"

    @property
    def autograder_dir(self) -> Path:
        return self.root / "autograder" / self.name

    @property
    def tests(self) -> Path:
        return self.autograder_dir / f"test_{self.name}.py"

    @property
    def drivers(self) -> Path:
        return self.autograder_dir / "drivers.py"

    @property
    def fixtures(self) -> Path:
        return self.autograder_dir / "mistakes"

    @property
    def mistakes(self) -> Path:
        return self.fixtures / "mistakes.toml"

    def missing(self) -> list[str]:
        """What a lesson needs and lacks, one line each (empty when it is complete)."""
        needed = [
            (self.master_script, "the master script"),
            (self.student_notebook, "the student copy (generated: run `make lessons`)"),
            (self.tests, "the autograder's tests"),
            (self.mistakes, "the validation's wrong answers and honest alternatives"),
        ]
        return [
            f"{self.name}: {what} is missing: create {path.relative_to(self.root).as_posix()}"
            for path, what in needed
            if not path.is_file()
        ]


@dataclass(frozen=True)
class CourseLayout:
    """The course's folders: ``solutions/``, ``lessons/`` and ``autograder/`` under one root."""

    root: Path

    @property
    def solutions_dir(self) -> Path:
        return self.root / "solutions"

    @property
    def lessons_dir(self) -> Path:
        return self.root / "lessons"

    @property
    def autograder_dir(self) -> Path:
        return self.root / "autograder"

    def lesson(self, name: str) -> LessonLayout:
        return LessonLayout(name, self.root)

    def lesson_names(self) -> list[str]:
        """Every lesson with a master script, in course order."""
        return sorted(
            path.name
            for path in self.solutions_dir.iterdir()
            if path.is_dir() and LESSON_NAME.fullmatch(path.name) and (path / f"{path.name}.py").is_file()
        )

    def lesson_folders(self) -> dict[str, list[str]]:
        """Every lesson-named folder under solutions/, lessons/ and autograder/: name -> where it is."""
        found: dict[str, list[str]] = {}
        for top in (self.solutions_dir, self.lessons_dir, self.autograder_dir):
            if top.is_dir():
                for path in sorted(top.iterdir()):
                    if path.is_dir() and LESSON_NAME.fullmatch(path.name):
                        found.setdefault(path.name, []).append(top.name)
        return found


def course(root: Path | None = None) -> CourseLayout:
    """The course in ``root``, by default the checkout's (or the copy a wheel carries)."""
    return CourseLayout(Path(root) if root is not None else paths.course_root())


def lesson(name: str) -> LessonLayout:
    """One lesson of the default course."""
    return course().lesson(name)
