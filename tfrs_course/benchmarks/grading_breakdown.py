"""Where one submission's grading time goes: ``python -m tfrs_course.benchmarks grading-breakdown``.

For each lesson (default: 1, 3 and 5) a fresh process grades the solved
submission twice with :func:`tfrs_course.grading.batch.grade_submission` under
``cProfile``: the first time as the first submission a grading process sees
(cold), the second as every later one (warm). The profile is cut into:

- worker start and load: starting the sandboxed worker, which starts Python,
  imports the kit and runs the lesson's setup cell (TensorFlow's import) and the
  student's answer cells;
- student calls: waiting for the worker to answer the tests' calls;
- reference: the master notebook loaded in the grader and the reference
  solution's calls (the drivers run there too, on the same inputs);
- serialisation: plain-data encoding and decoding of arguments and results;
- listing tests, reading notebooks, and pytest with the rest.

Then it times what a fresh interpreter pays for each import a worker needs,
and starting a worker (and loading a solved submission) both ways: forked from
the grading process's template (:mod:`tfrs_course.grading.template`), and
started by the plain launcher as before; with the template's own start time and
memory.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfrs_course.environment import subprocess_environment

LESSONS = ("01_baseline_metrics", "03_id_embeddings", "05_hybrid")
# The lesson whose worker start is timed both ways (forked from the template, and launched fresh).
START_LESSON = "03_id_embeddings"
# (module file, function) -> the profile's cumulative seconds for it.
PARTS = {
    "load": ("grading/isolated.py", "_ensure_loaded"),
    "requests": ("grading/isolated.py", "_request"),
    "reference_load": ("grading/runner.py", "reference_code"),
    "reference_run": ("grading/student_code.py", "run"),
    "reference_call": ("grading/student_code.py", "call"),
    "encode": ("grading/boundary.py", "encode"),
    "decode": ("grading/boundary.py", "decode"),
    "list_tests": ("grading/batch.py", "_lesson_points"),
    "read_notebook": ("grading/program.py", "read_notebook"),
    "build_program": ("grading/program.py", "build_program"),
    "run_tests": ("grading/runner.py", "run_tests"),
}
# What a worker imports before the student's code runs, timed in fresh interpreters.
IMPORTS = {
    "Python alone": "pass",
    "import tfrs_course": "import tfrs_course",
    "+ pandas": "import tfrs_course, pandas",
    "+ TensorFlow and TFRS": "import tfrs_course, pandas, tensorflow, tensorflow_recommenders",
}


def _cumulative(stats: pstats.Stats, file_end: str, function: str) -> float:
    return sum(
        row[3]
        for (file_name, _, name), row in stats.stats.items()  # type: ignore[attr-defined]
        if name == function and file_name.endswith(file_end)
    )


def profile_lesson(lesson: str) -> list[dict[str, float]]:
    """Grade the lesson's solved submission twice in this process; the parts of each, in seconds."""
    import tfrs_course  # noqa: F401 - legacy Keras before the reference imports TensorFlow
    from tfrs_course.grading.batch import SubmittedFile, grade_submission
    from tfrs_course.grading.isolated import Limits
    from tfrs_course.grading.validation import solved_copy
    from tfrs_course.lessons import write_notebook

    with tempfile.TemporaryDirectory(prefix="tfrs-course-breakdown-") as scratch:
        notebook = Path(scratch) / "submitted" / "solved" / lesson / f"{lesson}.ipynb"
        write_notebook(solved_copy(lesson), notebook)
        figures = []
        for _ in range(2):
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            grade = grade_submission(SubmittedFile("solved", lesson, notebook), Limits())
            profile.disable()
            total = time.perf_counter() - started
            stats = pstats.Stats(profile)
            parts = {name: _cumulative(stats, *where) for name, where in PARTS.items()}
            parts["total"] = total
            parts["score"] = grade.total
            figures.append(parts)
    return figures


def _row(parts: dict[str, float]) -> dict[str, float]:
    """The profile's parts as disjoint shares of the total."""
    reference = parts["reference_load"] + parts["reference_run"] + parts["reference_call"]
    calls = parts["requests"] - parts["load"]
    serialisation = parts["encode"] + parts["decode"]
    reading = parts["read_notebook"] + parts["build_program"]
    pytest_rest = parts["total"] - parts["load"] - calls - reference - parts["list_tests"] - reading
    return {
        "total": parts["total"],
        "worker start+load": parts["load"],
        "student calls": calls,
        "reference": reference,
        "list tests": parts["list_tests"],
        "read notebooks": reading,
        "pytest+rest": pytest_rest,
        "(serialisation)": serialisation,
    }


def _fresh_import_seconds(statement: str, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", statement], env=subprocess_environment(), check=True)  # noqa: S603
        times.append(time.perf_counter() - started)
    return min(times)


def worker_start(lesson: str, repeats: int = 3) -> dict[str, float]:
    """Seconds to start a worker and load the lesson's solved submission: forked, and launched fresh.

    Returns:
        ``template``: the template's own start (its imports), paid once per grading
        process; ``forked``: the best of ``repeats`` workers forked from it; ``plain``:
        one worker started by the plain launcher; ``template_rss`` and
        ``template_size``: the template's resident memory and address space, in bytes.
    """
    import tfrs_course  # noqa: F401 - legacy Keras before the reference imports TensorFlow
    from tfrs_course.grading import template
    from tfrs_course.grading.isolated import IsolatedStudentCode, Limits
    from tfrs_course.grading.program import build_program, read_notebook
    from tfrs_course.grading.validation import solved_copy
    from tfrs_course.layout import lesson as lesson_layout
    from tfrs_course.lessons import write_notebook

    master = lesson_layout(lesson).master_notebook
    with tempfile.TemporaryDirectory(prefix="tfrs-course-breakdown-") as scratch:
        notebook = Path(scratch) / f"{lesson}.ipynb"
        write_notebook(solved_copy(lesson), notebook)
        program = build_program(read_notebook(notebook), read_notebook(master), master, lesson)

    def load() -> float:
        code = IsolatedStudentCode(program, limits=Limits())
        started = time.perf_counter()
        try:
            code._ensure_loaded()
            return time.perf_counter() - started
        finally:
            code.close()

    figures = {"template": load()}
    figures["forked"] = min(load() for _ in range(repeats))
    status = Path(f"/proc/{template._template.process.pid}/status").read_text()
    sizes = dict(line.split(":", 1) for line in status.splitlines() if line.startswith(("VmRSS", "VmSize")))
    figures["template_rss"] = int(sizes["VmRSS"].split()[0]) * 1024
    figures["template_size"] = int(sizes["VmSize"].split()[0]) * 1024
    template.unavailable = "measuring the plain launcher"
    figures["plain"] = load()
    return figures


def _run_self(*args: str) -> subprocess.CompletedProcess:
    """This module in a fresh interpreter (``--child`` or ``--worker-start`` mode); its output captured."""
    return subprocess.run(  # noqa: S603 - the running interpreter, fixed arguments
        [sys.executable, "-m", "tfrs_course.benchmarks.grading_breakdown", *args],
        env=subprocess_environment(), capture_output=True, text=True, check=False,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[2:] if argv is None else argv
    lessons = argv or list(LESSONS)
    print(f"One solved submission, graded in a fresh grading process; load average {os.getloadavg()[0]:.1f}")
    columns = ["total", "worker start+load", "student calls", "reference", "list tests", "read notebooks", "pytest+rest", "(serialisation)"]  # fmt: skip
    print(f"{'lesson':<22}{'':<6}" + "".join(f"{name:>19}" for name in columns))
    for lesson in lessons:
        completed = _run_self("--child", lesson)
        if completed.returncode != 0:
            print(f"{lesson}: the profile failed:\n{completed.stderr[-2000:]}")
            continue
        for label, parts in zip(("cold", "warm"), json.loads(completed.stdout.strip().splitlines()[-1]), strict=True):
            row = _row(parts)
            print(f"{lesson:<22}{label:<6}" + "".join(f"{row[name]:>19.2f}" for name in columns), flush=True)
    print(f"What a worker imports, each in a fresh interpreter (load average {os.getloadavg()[0]:.1f}):")
    for label, statement in IMPORTS.items():
        print(f"  {label:<28}{_fresh_import_seconds(statement):6.2f} s", flush=True)
    completed = _run_self("--worker-start", START_LESSON)
    if completed.returncode != 0:
        print(f"Timing worker starts failed:\n{completed.stderr[-2000:]}")
        return
    start = json.loads(completed.stdout.strip().splitlines()[-1])
    print(
        f"Starting a worker and loading a solved {START_LESSON} submission (load average "
        f"{os.getloadavg()[0]:.1f}): forked from the template {start['forked']:.2f} s, plain launcher "
        f"{start['plain']:.2f} s. The template starts in {start['template']:.2f} s (once per grading "
        f"process) and holds {start['template_rss'] / 1e6:.0f} MB resident, "
        f"{start['template_size'] / 1e9:.1f} GB of address space."
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(profile_lesson(sys.argv[2])))
    elif sys.argv[1:2] == ["--worker-start"]:
        print(json.dumps(worker_start(sys.argv[2])))
    else:
        main(sys.argv[1:])
