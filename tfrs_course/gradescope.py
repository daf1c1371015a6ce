"""Gradescope autograder bundles: ``tfrs-course gradescope LESSON --out autograder.zip``.

Gradescope builds an image from the uploaded zip once (running ``setup.sh`` as
root, with the zip unpacked in ``/autograder/source``), then, for every
submission, runs ``run_autograder`` in a fresh container with the student's
upload in ``/autograder/submission/`` and reads ``/autograder/results/results.json``
(https://gradescope-autograders.readthedocs.io/en/latest/specs/).

The bundle holds:

- ``setup.sh``: installs Python 3.11 if the image lacks it, the kit's pinned
  stack (``requirements.txt``, the ``course`` extra) and the kit's wheel, and
  builds the synthetic data, so grading needs no network;
- ``run_autograder``: grades the one notebook in ``submission/`` with the kit's
  batch grader (student code in the sandboxed worker) and writes ``results.json``:
  visible tests with their messages, hidden tests by name and result only,
  shown after grades are published;
- the kit's wheel, carrying this lesson's tests, drivers and reference notebook
  only (and the drivers of earlier lessons that its drivers build on);
- ``bundle.json``: which lesson, which kit version.

``$TFRS_AUTOGRADER_ROOT`` replaces ``/autograder`` (the test suite unpacks a bundle
into a temporary folder). ``setup.sh`` also reads ``$TFRS_GRADESCOPE_PYTHON`` (use
this interpreter instead of creating a virtualenv) and ``$TFRS_GRADESCOPE_PIP_OPTIONS``
(extra pip options, e.g. ``--no-index --find-links /wheels`` for a local mirror).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

from tfrs_course import __version__, layout

ROOT_VARIABLE = "TFRS_AUTOGRADER_ROOT"
STUDENT = "gradescope_submission"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image.
set -euo pipefail
ROOT="${TFRS_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON="${TFRS_GRADESCOPE_PYTHON:-}"
# Extra pip options, e.g. "--no-index --find-links /wheels" to install from a local mirror.
read -r -a PIP_OPTIONS <<< "${TFRS_GRADESCOPE_PIP_OPTIONS:-}"

if [ -z "$PYTHON" ]; then
    if ! command -v python3.11 >/dev/null; then
        echo "Installing Python 3.11 (the kit's TensorFlow stack is pinned for it)"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11 python3.11-venv
    fi
    python3.11 -m venv "$ROOT/venv"
    PYTHON="$ROOT/venv/bin/python"
fi
echo "Installing the pinned stack and the kit into $PYTHON"
"$PYTHON" -m pip install "${PIP_OPTIONS[@]}" --disable-pip-version-check -r "$SOURCE/requirements.txt"
"$PYTHON" -m pip install "${PIP_OPTIONS[@]}" --disable-pip-version-check --no-deps --force-reinstall \\
    "$SOURCE"/tfrs_course-*.whl
echo "$PYTHON" > "$SOURCE/python"
# Grading has no network: build the synthetic data into the image now.
TFRS_COURSE_DATA_DIR="$ROOT/data" "$PYTHON" -m tfrs_course.cli data synth
echo "Autograder ready: $(cat "$SOURCE/bundle.json")"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade the notebook in submission/ into results/results.json.
set -euo pipefail
ROOT="${TFRS_AUTOGRADER_ROOT:-/autograder}"
export TFRS_COURSE_DATA_DIR="$ROOT/data"
export TFRS_COURSE_DATA_SOURCE=synthetic
exec "$(cat "$ROOT/source/python")" -m tfrs_course.gradescope "$ROOT"
"""


def pinned_requirements() -> list[str]:
    """The ``course`` extra of pyproject.toml: the exact stack the kit is tested on."""
    pyproject = tomllib.loads((layout.course().root / "pyproject.toml").read_text(encoding="utf-8"))
    return list(pyproject["project"]["optional-dependencies"]["course"])


def _stage_project(lesson: str, staging: Path) -> None:
    """A copy of the project whose solutions/ and autograder/ hold this lesson only."""
    from tfrs_course.grading.drivers import required_lessons
    from tfrs_course.lessons import build_master, write_notebook

    course, staged = layout.course(), layout.course(staging)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(course.root / name, staged.root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_course")
    shutil.copytree(course.root / "tfrs_course", staged.root / "tfrs_course", ignore=ignore)
    source, target = course.lesson(lesson), staged.lesson(lesson)
    shutil.copytree(source.solutions_dir, target.solutions_dir, ignore=shutil.ignore_patterns("*.ipynb"))
    # The reference notebook, built fresh from the master script as `make lessons` does.
    write_notebook(build_master(lesson), target.master_notebook)
    staged.autograder_dir.mkdir()
    for path in course.autograder_dir.iterdir():
        if path.is_file():
            shutil.copy(path, staged.autograder_dir / path.name)
    # The lesson's tests and drivers (its wrong answers are for the course's own validation).
    shutil.copytree(
        source.autograder_dir, target.autograder_dir, ignore=shutil.ignore_patterns("__pycache__", "mistakes")
    )
    for other in required_lessons(lesson)[1:]:
        staged.lesson(other).autograder_dir.mkdir()
        shutil.copy(course.lesson(other).drivers, staged.lesson(other).drivers)


def bundle_path(lesson: str, out: str | Path) -> Path:
    """Where the zip goes: ``out`` itself, or ``out/<lesson>-autograder.zip`` for a folder.

    ``out`` is a folder if it exists as one or is written with a trailing slash.
    """
    folder = str(out).endswith(("/", os.sep)) or Path(out).is_dir()
    out = Path(out).resolve()
    return out / f"{lesson}-autograder.zip" if folder else out


def build_bundle(lesson: str, out: str | Path) -> Path:
    """Write the autograder zip for one lesson (to ``out``, or into it if it is a folder: :func:`bundle_path`).

    Raises:
        ValueError: the course has no such lesson.
        RuntimeError: building the kit's wheel failed (pip's output is in the message).
    """
    known = layout.course().lesson_names()
    if lesson not in known:
        raise ValueError(f"unknown lesson {lesson!r}; the course has {known}")
    out = bundle_path(lesson, out)
    with tempfile.TemporaryDirectory(prefix="tfrs-gradescope-") as scratch:
        staging, wheels = Path(scratch) / "project", Path(scratch) / "wheels"
        staging.mkdir()
        _stage_project(lesson, staging)
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(staging)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wheel = next(wheels.glob("tfrs_course-*.whl"), None)
        if built.returncode != 0 or wheel is None:
            raise RuntimeError(f"building the kit's wheel failed:\n{built.stdout[-2000:]}{built.stderr[-2000:]}")
        manifest = {
            "lesson": lesson,
            "kit_version": __version__,
            "wheel": wheel.name,
            "tests": f"tfrs_course/_course/{layout.lesson(lesson).tests.relative_to(layout.course().root).as_posix()}",
            "reference": f"tfrs_course/_course/{layout.lesson(lesson).master_notebook.relative_to(layout.course().root).as_posix()}",
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
            _add_text(bundle, "setup.sh", SETUP_SH, executable=True)
            _add_text(bundle, "run_autograder", RUN_AUTOGRADER, executable=True)
            _add_text(bundle, "requirements.txt", "\n".join(pinned_requirements()) + "\n")
            _add_text(bundle, "bundle.json", json.dumps(manifest, indent=1) + "\n")
            bundle.write(wheel, wheel.name)
    return out


def _add_text(bundle: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    bundle.writestr(info, text)


def grade_upload(root: str | Path) -> dict:
    """Grade the notebook in ``ROOT/submission`` and write ``ROOT/results/results.json``.

    Returns:
        The results document (Gradescope's format). A missing or ambiguous upload
        scores zero with an ``output`` that says what to hand in.
    """
    from tfrs_course.files import write_text_atomically
    from tfrs_course.grading.batch import IGNORED_FOLDERS, grade_folder, is_handed_in_notebook, record_path
    from tfrs_course.grading.isolated import Limits
    from tfrs_course.grading.results import LessonGrade
    from tfrs_course.grading.sandbox import SandboxConfig, isolation_problem, sandbox_description

    started = time.perf_counter()
    root = Path(root).resolve()
    lesson = json.loads((root / "source" / "bundle.json").read_text())["lesson"]
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    # The batch grader's rules: any case of .ipynb; Jupyter's checkpoints and a Mac zip's extras are not uploads.
    uploaded = root / "submission"
    notebooks = sorted(
        path
        for path in uploaded.rglob("*")
        if is_handed_in_notebook(path)
        and (path.is_file() or path.is_symlink())
        and not IGNORED_FOLDERS & set(path.parts)
    )
    named = [path for path in notebooks if path.name.lower() == f"{lesson}.ipynb"]
    chosen = notebooks[0] if len(notebooks) == 1 else (named[0] if len(named) == 1 else None)
    if chosen is not None and (chosen.is_symlink() or not chosen.resolve().is_relative_to(uploaded.resolve())):
        # Read as root before the sandbox exists, a link could hand in any file of the machine, the reference too.
        document = {
            "score": 0.0,
            "output": f"{chosen.name} is a symbolic link (or inside one), not a notebook: upload the notebook file itself.",
            "tests": [],
        }
    elif chosen is None:
        found = ", ".join(path.name for path in notebooks) or "none"
        document = {
            "score": 0.0,
            "output": f"Upload exactly one notebook for {lesson} (for example {lesson}.ipynb); found: {found}.",
            "tests": [],
        }
    else:
        with tempfile.TemporaryDirectory(prefix="tfrs-gradescope-") as scratch:
            submitted, out = Path(scratch) / "submitted", Path(scratch) / "graded"
            copy = submitted / STUDENT / lesson / f"{lesson}.ipynb"
            copy.parent.mkdir(parents=True)
            shutil.copy(chosen, copy)
            # Student code never sees the upload, the results folder or the bundle.
            hidden = [str(root / "submission"), str(results_dir), str(root / "source")]
            if isolation_problem():
                # Printed to run_autograder's stdout, which Gradescope shows to instructors only.
                print(f"WARNING: student code runs in {sandbox_description()}.")
            limits = Limits(sandbox=SandboxConfig(hide=hidden))
            print(grade_folder(submitted, out, lessons=[lesson], limits=limits, progress=False))
            grade = LessonGrade.read(record_path(out, STUDENT, lesson))
        document = grade.to_gradescope()
        # Messages name the grader's scratch copy of the notebook: name the student's upload instead.
        for entry in [document, *document.get("tests", [])]:
            if "output" in entry:
                entry["output"] = entry["output"].replace(str(copy), chosen.name).replace(scratch, "")
        hidden_count = sum(result.hidden for result in grade.results)
        summary = f"{lesson}: {chosen.name} graded by tfrs-course {__version__}."
        if hidden_count:
            summary += f" {hidden_count} hidden test(s) show their results when grades are published."
        document["output"] = "\n\n".join(filter(None, [summary, document.get("output", "")]))
        document["score"] = round(float(document["score"]), 6)
        document.setdefault("extra_data", {})["max_score"] = grade.maximum
    document["execution_time"] = round(time.perf_counter() - started, 1)
    # Messages quote what students wrote: plain text, never rendered as HTML or Markdown.
    document.update(output_format="text", test_output_format="text", test_name_format="text")
    write_text_atomically(results_dir / "results.json", json.dumps(document, indent=2))
    return document


def main(argv: list[str] | None = None) -> int:
    """``python -m tfrs_course.gradescope [ROOT]``: what ``run_autograder`` calls."""
    arguments = sys.argv[1:] if argv is None else argv
    root = arguments[0] if arguments else os.environ.get(ROOT_VARIABLE, "/autograder")
    document = grade_upload(root)
    print(f"score {document['score']:g}; wrote {Path(root) / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
