"""Root in a container that forbids namespaces: grading falls back and says why.

Docker's default drops ``CAP_SYS_ADMIN``, so a grader running there as root cannot
create namespaces or mounts. Before the probe, every worker then died while building
its sandbox and every submission scored zero with a message that blamed the notebook.
``capsh --drop=cap_sys_admin`` makes the same container here, for real.
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfrs_course.environment import subprocess_environment
from tfrs_course.grading.runner import exercise_points
from tfrs_course.grading.sandbox import isolation_problem, sandbox_description
from tfrs_course.grading.validation import solved_copy
from tfrs_course.notebooks import write_notebook

LESSON = "01_baseline_metrics"
CAPSH = shutil.which("capsh")
AS_ROOT = os.geteuid() == 0 and sys.platform.startswith("linux")

needs_root_and_capsh = pytest.mark.skipif(
    not (AS_ROOT and CAPSH), reason="needs root on Linux and capsh (libcap2-bin) to drop CAP_SYS_ADMIN"
)


def _without_sys_admin(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``command`` as root without CAP_SYS_ADMIN, as in a default Docker container."""
    return subprocess.run(  # noqa: S603 - fixed arguments
        [CAPSH, "--drop=cap_sys_admin", "--", "-c", " ".join(f"'{part}'" for part in command)],
        cwd=cwd, capture_output=True, text=True, env=subprocess_environment(), timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.skipif(not AS_ROOT, reason="the namespace sandbox needs root on Linux")
def test_the_probe_finds_the_sandbox_here():
    assert isolation_problem() == ""
    assert "namespace sandbox" in sandbox_description()


@needs_root_and_capsh
def test_the_probe_names_what_the_container_forbids(tmp_path):
    probe = "from tfrs_course.grading.sandbox import isolation_problem as p; print(p())"
    found = _without_sys_admin([sys.executable, "-c", probe], tmp_path)
    assert found.returncode == 0, found.stderr
    assert "unshare" in found.stdout and "Operation not permitted" in found.stdout, found.stdout


@needs_root_and_capsh
def test_grading_without_namespaces_still_grades_and_says_so(tmp_path):
    full = sum(points.total for points in exercise_points(LESSON).values())
    write_notebook(solved_copy(LESSON), tmp_path / "submitted" / "solved" / LESSON / f"{LESSON}.ipynb")
    tool = str(Path(sys.executable).parent / "tfrs-course")
    graded = _without_sys_admin([tool, "grade", "submitted", "--out", "graded", "--jobs", "2", "--quiet"], tmp_path)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    with open(tmp_path / "graded" / "grades.csv", newline="") as stream:
        (row,) = list(csv.DictReader(stream))
    assert (float(row["total"]), row["error"]) == (full, ""), row
    assert "namespace sandbox cannot be built here" in graded.stdout, graded.stdout
    assert "unshare" in graded.stdout, graded.stdout
