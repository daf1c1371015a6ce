"""The Makefile's promises: `make help` lists every target; `make lab` suits students, as any user."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDENT_CONFIG = REPO / "jupyter-config" / "student"


def _make(*args: str) -> str:
    completed = subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True, check=True)
    return completed.stdout


def test_make_help_lists_every_target():
    makefile = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)\n", makefile, re.S | re.M).group(1)
    targets = set(phony.replace("\\", " ").split()) - {"help"}
    shown = _make("help")
    # Named as a command ("make lint") or in a list of sub-targets ("(bench-data, bench-grading, ...)").
    missing = sorted(t for t in targets if not re.search(rf"(?:make |\(|, ){re.escape(t)}(?![\w-])", shown))
    assert not missing, f"make help does not mention {missing}:\n{shown}"


def test_make_lab_runs_as_root_only_with_allow_root_and_hides_nbgrader():
    student = _make("-n", "lab")
    assert ("--allow-root" in student) == (os.geteuid() == 0), student
    assert f'JUPYTER_CONFIG_PATH="{STUDENT_CONFIG}' in student, student
    instructor = _make("-n", "lab-instructor")
    assert "JUPYTER_CONFIG_PATH" not in instructor and ("--allow-root" in instructor) == (os.geteuid() == 0)


def test_the_student_config_switches_off_every_nbgrader_extension_installed():
    page = json.loads((STUDENT_CONFIG / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"]["@jupyter/nbgrader"] is True
    server = json.loads((STUDENT_CONFIG / "jupyter_server_config.json").read_text())
    switched_off = {name for name, enabled in server["ServerApp"]["jpserver_extensions"].items() if not enabled}
    installed = json.loads(
        (Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "nbgrader.json").read_text()
    )["ServerApp"]["jpserver_extensions"]
    assert set(installed) <= switched_off, set(installed) - switched_off


def test_make_nbgrader_puts_the_kit_first_on_path_and_rebuilds_the_lessons_it_rewrites():
    # nbgrader runs `alembic` from PATH; without the kit's environment there,
    # generate_assignment deletes the lesson's student copy and then fails.
    venv_bin = str(REPO / ".venv" / "bin")
    generate = _make("-n", "nbgrader", "ARGS=generate_assignment 01_baseline_metrics --force")
    assert f'PATH="{venv_bin}:' in generate and "nbgrader generate_assignment 01_baseline_metrics" in generate
    assert "tfrs-course lessons build" in generate
    autograde = _make("-n", "nbgrader", "ARGS=autograde 01_baseline_metrics")
    assert "tfrs-course lessons build" not in autograde
    assert f'PATH="{venv_bin}:' in _make("-n", "lab-instructor")
