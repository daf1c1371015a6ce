"""Colab, simulated: a fresh environment with the runtime's packages but not the kit.

The lesson's setup cell runs with Colab's environment marker set; it installs the
kit from a locally built wheel (as it would from the repository), tries to fetch
the real data from a local server, and must be idempotent: a second run installs
nothing. Then check() works from the installed wheel, which carries the tests.
"""

import csv
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from tfrs_course import colab as colab_setting
from tfrs_course.grading.batch import grade_folder
from tfrs_course.lessons import origin_repository
from tfrs_course.notebooks import solution_source, student_copy_with_answers

# Its tests share one expensive module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("colab")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "babyshop"
LESSON = "01_baseline_metrics"
EXERCISES = ("select_top_users", "most_popular_items", "top_k_accuracy")


def _setup_cell_source() -> str:
    """The folded "Colab only" cell, then the lesson's setup cell, as a student runs them."""
    notebook = nbformat.read(REPO / "lessons" / LESSON / f"{LESSON}.ipynb", as_version=4)
    cells = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source for cell in notebook.cells}
    return f"{cells['colab_setup']}\n{cells['setup']}"


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A 'Colab runtime': a new venv that sees the course stack but not the kit."""
    root = tmp_path_factory.mktemp("colab")
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(wheels.glob("tfrs_course-*.whl"))

    runtime = root / "runtime"
    subprocess.run([sys._base_executable, "-m", "venv", str(runtime)], check=True)
    # The runtime's own packages (TensorFlow and friends): our site-packages minus the kit.
    ours = Path(next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)))
    view = root / "runtime-packages"
    view.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(("tfrs_course", "_tfrs_course", "__editable__")) and entry.suffix != ".pth":
            (view / entry.name).symlink_to(entry)
    site_packages = next(runtime.glob("lib/python3.*/site-packages"))
    (site_packages / "runtime-packages.pth").write_text(f"{view}\n")

    served = root / "served"
    served.mkdir()
    for name in ("item_info.csv", "user_info.csv"):
        if (SHARED / name).is_file():
            (served / name).symlink_to(SHARED / name)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    environment = {
        "PATH": f"{runtime / 'bin'}:/usr/bin:/bin",
        "HOME": str(root / "home"),
        "COLAB_RELEASE_TAG": "simulated",
        "TFRS_COURSE_PACKAGE": str(wheel),
        "TFRS_COURSE_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    yield runtime / "bin" / "python", environment
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _run(python: Path, environment: dict, code: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    completed = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=environment, cwd=environment["HOME"] + "/..",
        check=False, timeout=900,
    )  # fmt: skip
    return completed, time.perf_counter() - started


@pytest.mark.slow
def test_setup_cell_installs_once_and_is_idempotent(colab):
    python, environment = colab
    Path(environment["HOME"]).mkdir(exist_ok=True)
    code = _setup_cell_source() + "\nimport os\nprint('LEGACY KERAS', os.environ['TF_USE_LEGACY_KERAS'])\n"

    first, first_seconds = _run(python, environment, code)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Installing" in first.stdout and "tfrs_course" in first.stdout.split("Installing")[1].split("\n")[0]
    assert "could not download the real data" in first.stdout  # train.csv is not served here
    assert "is ready" in first.stdout and "LEGACY KERAS 1" in first.stdout

    second, second_seconds = _run(python, environment, code)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Installing" not in second.stdout
    assert "is ready" in second.stdout
    print(f"Colab setup cell: first run {first_seconds:.1f} s (installs), second run {second_seconds:.1f} s")

    # Outside Colab the same cell installs nothing and prints only the kit's own line.
    outside = {key: value for key, value in environment.items() if key != "COLAB_RELEASE_TAG"}
    quiet, _ = _run(python, outside, code)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout.splitlines()[0].startswith("tfrs_course") and "Colab" not in quiet.stdout


@pytest.mark.slow
def test_check_works_from_the_installed_wheel(colab):
    python, environment = colab
    Path(environment["HOME"]).mkdir(exist_ok=True)
    answers = "\n\n".join(solution_source(LESSON, exercise) for exercise in EXERCISES)
    code = f"{_setup_cell_source()}\n{answers}\nprint('POINTS', check('top_k_accuracy'))\n"
    completed, _ = _run(python, environment, code)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "top_k_accuracy: 2 of 2 points on the visible tests" in completed.stdout
    assert "POINTS 2.0" in completed.stdout
    assert "/site-packages/tfrs_course/" in subprocess.run(
        [str(python), "-c", "import tfrs_course.paths as p; print(p.course_root())"],
        capture_output=True, text=True, env=environment, cwd=environment["HOME"], check=True,
    ).stdout  # fmt: skip


def test_a_notebook_downloaded_from_colab_is_graded_unchanged(tmp_path):
    """Colab rewrites metadata and ids and may drop nbgrader's; the grader must not care."""
    notebook = student_copy_with_answers(LESSON, {e: solution_source(LESSON, e) for e in EXERCISES})
    downloaded = json.loads(nbformat.writes(notebook))
    downloaded["metadata"] = {
        "colab": {"provenance": []},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
    }
    for number, cell in enumerate(downloaded["cells"]):
        cell["metadata"] = {"id": f"colab{number:04d}"}
        cell["id"] = f"colab{number:04d}"
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran in Colab\n"]}]
            cell["execution_count"] = number
    path = tmp_path / "submitted" / "workshop_guest" / LESSON / f"{LESSON} (1).ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(downloaded))
    grade_folder(tmp_path / "submitted", tmp_path / "out", progress=False)
    with (tmp_path / "out" / "grades.csv").open() as table:
        (row,) = csv.DictReader(table)
    assert row["student_id"] == "workshop_guest" and row["lesson"] == LESSON, row
    assert row["total"] == row["max_score"] and float(row["total"]) > 0 and not row["error"], row


def test_every_lesson_opens_with_its_own_code_and_a_folded_colab_cell():
    for path in sorted((REPO / "lessons").glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        assert notebook.cells[0].id == "colab-badge", path
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        colab_cell, setup_cell = code_cells[:2]
        assert colab_cell.source.startswith("#@title Colab only"), path
        assert colab_cell.metadata["jupyter"]["source_hidden"] and colab_cell.metadata["cellView"] == "form", path
        assert colab_cell.metadata["nbgrader"]["locked"], path
        assert setup_cell.metadata["nbgrader"]["grade_id"] == "setup", path
        # The first code a student reads is the lesson's: no pip or subprocess in the setup cell.
        assert "pip" not in setup_cell.source and "subprocess" not in setup_cell.source, path
        assert "import tfrs_course" in setup_cell.source, path
        assert os.path.basename(path).startswith(path.parent.name)


def test_the_colab_cell_does_nothing_outside_colab():
    source = colab_setting.colab_cell_source(colab_setting.Repository("https://github.com/someone/course", "main"))
    completed = subprocess.run(
        [sys._base_executable, "-I", "-c", source], capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert completed.returncode == 0 and completed.stdout == "" and completed.stderr == "", completed


def test_repository_addresses_in_https_and_ssh_form():
    for address in (
        "https://github.com/someone/course",
        "https://github.com/someone/course.git",
        "git@github.com:someone/course.git",
        "ssh://git@github.com/someone/course.git",
    ):
        assert colab_setting.github_https_url(address) == "https://github.com/someone/course", address
    for address in ("https://gitlab.com/someone/course", "course", "https://github.com/someone"):
        with pytest.raises(ValueError, match="not a GitHub repository"):
            colab_setting.github_https_url(address)


def test_badge_and_colab_cell_follow_the_repository_setting(tmp_path):
    setting = tmp_path / "repository.toml"
    colab_setting.save_repository(colab_setting.Repository("https://github.com/someone/course", "spring-2027"), setting)
    repository = colab_setting.load_repository(setting)
    assert repository == colab_setting.Repository("https://github.com/someone/course", "spring-2027")
    badge = colab_setting.badge_markdown(LESSON, repository)
    assert f"colab.research.google.com/github/someone/course/blob/spring-2027/lessons/{LESSON}/{LESSON}.ipynb" in badge
    assert "git+https://github.com/someone/course@spring-2027" in colab_setting.colab_cell_source(repository)


def test_a_placeholder_setting_says_so_instead_of_linking_nowhere(tmp_path):
    placeholder = colab_setting.Repository("", "main")
    badge = colab_setting.badge_markdown(LESSON, placeholder)
    assert "colab.research.google.com" not in badge and "has not been set yet" in badge
    source = colab_setting.colab_cell_source(placeholder)
    assert "git+" not in source
    # In "Colab" (the marker set) without the kit, the cell stops with a plain message, not a pip error.
    completed = subprocess.run(
        [sys._base_executable, "-I", "-c", source], capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "COLAB_RELEASE_TAG": "simulated", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert completed.returncode != 0
    assert "This copy of the course has no GitHub address set" in completed.stderr, completed.stderr


def test_set_repository_defaults_to_the_origin_remote(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(ValueError, match="no git remote named origin"):
        origin_repository(tmp_path)
    subprocess.run(
        ["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:someone/course.git"], check=True
    )
    assert origin_repository(tmp_path) == "https://github.com/someone/course"
    subprocess.run(
        ["git", "-C", str(tmp_path), "remote", "set-url", "origin", "https://example.org/course.git"], check=True
    )
    with pytest.raises(ValueError, match="origin remote 'https://example.org/course.git' is not a GitHub repository"):
        origin_repository(tmp_path)
